"""Hostile input and a newcomer's view (issue 14), over nonebug in private chats and
groups: echoed input is quoted short and answers are capped; a text segment without data
does not break the router's rule; ticket evidence images reach staff and their customer
(never a group); docs/commands.md lists every registered command."""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.fake import SELF_ID, Says, group, private
from tests.plugins.helpers import (
    PROXY_VARIABLES,
    add_staff,
    coloured_png,
    converse,
    enable_group,
    outbox_rows,
    pay_order,
    seed_demo,
    seed_order,
    serve_images,
)

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime

ROOT = Path(__file__).resolve().parent.parent.parent
HUGE = "很" * 50_000 + "x" * 50_000  # a 100,000-character argument
MISSING = "23456789AB"  # a well-formed order code nobody has
CHATS = ("private", "group")
_message_ids = itertools.count(900_000)


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)
    await add_staff(shop, STAFF_ID)
    await enable_group(shop)


def say(chat: str, text: str, user_id: int = CUSTOMER_ID) -> Any:
    return private(text, user_id) if chat == "private" else group(text, user_id, GROUP_ID)


class Reply(Says):
    """A `Says` that keeps the reply's text and its images' bytes."""

    text: str = ""
    images: tuple[bytes, ...] = ()

    def __eq__(self, message: object) -> bool:
        matched = super().__eq__(message)
        if matched:
            segments = list(message)  # type: ignore[call-overload]
            self.text = next(s.data["text"] for s in segments if s.type == "text")
            self.images = tuple(
                base64.b64decode(s.data["file"].removeprefix("base64://"))
                for s in segments
                if s.type == "image"
            )
        return matched

    __hash__ = object.__hash__


async def answer(app: App, event: Any, *fragments: str, **kwargs: Any) -> Reply:
    reply = Reply(event, *fragments, **kwargs)
    await converse(app, (event, reply))
    return reply


# --- echoed input is quoted short ----------------------------------------------------------


def test_quote_and_clip() -> None:
    from services.limits import QUOTE_LIMIT, clip, quote

    assert QUOTE_LIMIT == 20
    assert quote("12x") == "“12x”"
    assert quote("x" * 20) == "“" + "x" * 20 + "”"
    assert quote("x" * 21) == "“" + "x" * 20 + "…”"
    assert quote(HUGE) == "“" + "很" * 20 + "…”"
    assert quote("第一行\n第二行\t 第三行") == "“第一行 第二行 第三行”"  # one line, always
    assert clip("abc", 2) == "ab…"


async def test_unknown_command_in_private_quotes_twenty_characters(app: App) -> None:
    event = private("/" + HUGE, CUSTOMER_ID)
    await answer(app, event, exact="没有“" + "很" * 20 + "…”这个命令。发 /帮助 查看可用的命令。")


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (f"/详情 {HUGE}", "商品编号应是 1 到 9 位数字（如 12），而不是“" + "很" * 20 + "…”。"),
        (f"/帮助 {HUGE}", "没有“" + "很" * 20 + "…”这个命令。发 /帮助 查看全部命令。"),
        (f"/订单 {HUGE}", "“" + "很" * 20 + "…”不是订单号"),
        (f"/下单 {HUGE}", "而不是“" + "很" * 20 + "…”。"),
        (f"/详情 1 {HUGE}", "多余的内容：" + "很" * 20 + "…"),
        (f"/搜索 {HUGE}", "搜索关键词最多 30 个字。"),
    ],
    ids=["detail", "help", "orders", "buy", "extra", "search"],
)
async def test_a_huge_argument_comes_back_twenty_characters_long(
    app: App, chat: str, command: str, expected: str
) -> None:
    reply = await answer(app, say(chat, command), expected)
    assert "很" * 21 not in reply.text
    assert len(reply.text) < 300


@pytest.mark.parametrize("chat", CHATS)
async def test_staff_errors_quote_carrier_tracking_number_and_category_short(
    app: App, chat: str
) -> None:
    long_word = "快" * 5_000
    carrier = await answer(app, say(chat, f"/发货 {MISSING} {long_word} SF1234567890", STAFF_ID))
    number = await answer(app, say(chat, f"/发货 {MISSING} 顺丰 {'9' * 5_000}", STAFF_ID))
    category = await answer(app, say(chat, f"/商品 {long_word}", STAFF_ID))
    assert carrier.text.startswith("不认识快递公司“" + "快" * 20 + "…”。可用：")
    assert number.text.startswith("运单号应是 6 到 30 位字母或数字，而不是“" + "9" * 20 + "…”。")
    for reply in (carrier, number, category):
        assert len(reply.text) < 300, reply.text


def test_every_answer_is_capped_in_one_place() -> None:
    from plugins._common.context import Reply as ShopReply
    from plugins._common.dispatch import MAX_REPLY_CHARS, TRUNCATED, to_message

    event = private("/商品", CUSTOMER_ID)
    long = to_message(ShopReply("字" * 10_000), event)
    [segment] = list(long)
    assert len(segment.data["text"]) == MAX_REPLY_CHARS
    assert segment.data["text"].endswith(TRUNCATED) and TRUNCATED == "…（内容过长，已截断）"
    exact = "字" * MAX_REPLY_CHARS
    assert [s.data["text"] for s in to_message(ShopReply(exact), event)] == [exact]
    in_group = to_message(ShopReply("字" * 10_000), group("/商品", CUSTOMER_ID, GROUP_ID))
    assert [s.type for s in in_group] == ["reply", "text"]
    assert len(list(in_group)[1].data["text"]) == MAX_REPLY_CHARS


async def test_the_owners_help_fits_under_the_cap(app: App) -> None:
    from plugins._common.dispatch import MAX_REPLY_CHARS, TRUNCATED

    reply = await answer(app, private("/帮助", OWNER_ID), "【店铺管理】", absent=(TRUNCATED,))
    assert len(reply.text) < MAX_REPLY_CHARS


# --- a text segment without data ---------------------------------------------------------


def _raw_event(chat: str, segments: list[dict[str, Any]]) -> Any:
    """An event as the adapter builds it from a OneBot implementation's JSON."""
    from nonebot.adapters.onebot.v11 import GroupMessageEvent, PrivateMessageEvent
    from nonebot.compat import type_validate_python

    payload: dict[str, Any] = {
        "time": int(time.time()),
        "self_id": SELF_ID,
        "post_type": "message",
        "user_id": CUSTOMER_ID,
        "message_id": next(_message_ids),
        "message": segments,
        "original_message": segments,
        "raw_message": "",
        "font": 0,
        "sender": {"user_id": CUSTOMER_ID, "nickname": "顾客"},
        "to_me": chat == "private",
    }
    if chat == "private":
        payload |= {"message_type": "private", "sub_type": "friend"}
        return type_validate_python(PrivateMessageEvent, payload)
    payload |= {"message_type": "group", "sub_type": "normal", "group_id": GROUP_ID}
    return type_validate_python(GroupMessageEvent, payload)


@pytest.fixture
def logged_errors() -> Any:
    from nonebot import logger

    errors: list[str] = []
    handler = logger.add(lambda message: errors.append(str(message)), level="ERROR")
    yield errors
    logger.remove(handler)


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize(
    "broken",
    # ("data": null breaks NoneBot's own logging of the event, before any rule runs.)
    [{"type": "text"}, {"type": "text", "data": {}}, {"type": "text", "data": {"x": 1}}],
    ids=["no-data", "empty-data", "no-text"],
)
async def test_a_text_segment_without_data_is_read_as_empty(
    app: App, chat: str, broken: dict[str, Any], logged_errors: list[str]
) -> None:
    command = _raw_event(
        chat,
        [
            broken,
            {"type": "face", "data": {"id": "14"}},
            {"type": "text", "data": {"text": "/帮助 下单"}},
        ],
    )
    alone = _raw_event(chat, [broken])
    await converse(
        app,
        (command, Says(command, "/下单：", "用法：/下单 <规格编号>")),
        (alone, None),  # nothing to recognise: ignored, as an empty message is
    )
    assert logged_errors == []


async def test_an_at_segment_without_data_does_not_break_mentions(
    app: App, logged_errors: list[str]
) -> None:
    event = _raw_event("group", [{"type": "text", "data": {"text": "/帮助 "}}, {"type": "at"}])
    await converse(app, (event, Says(event, "可用命令")))
    assert logged_errors == []


# --- evidence images ------------------------------------------------------------------------


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


BODIES = {"crack.png": coloured_png(255, 0, 0), "box.png": coloured_png(0, 0, 255)}


async def _ticket_with_images(shop: ShopRuntime, group_id: int | None = None) -> str:
    """A ticket its customer opened with two evidence images (downloaded and stored)."""
    from models.tables import TicketKind
    from services.actors import Caller
    from services.staff import Role
    from services.usecases import tickets

    code = await seed_order(shop, CUSTOMER_ID, group_id=group_id)
    await pay_order(shop, code)
    with serve_images(BODIES) as urls:
        opened = await tickets.open_ticket(
            shop.shop,
            Caller(CUSTOMER_ID, group_id, Role.CUSTOMER),
            code,
            TicketKind.RETURN,
            "杯子有裂纹",
            [urls["crack.png"], urls["box.png"]],
        )
    return opened.ticket.code


@pytest.mark.usefixtures("no_proxy")
async def test_new_ticket_notice_to_staff_carries_the_images(shop: ShopRuntime) -> None:
    code = await _ticket_with_images(shop)
    notices = [r for r in await outbox_rows(shop) if r.dedupe_key.startswith(f"ticket:{code}:")]
    assert sorted(r.target_id for r in notices) == [OWNER_ID, STAFF_ID]
    for row in notices:
        text, *images = json.loads(row.segments)
        assert text["type"] == "text" and text["data"]["text"].startswith(f"新售后 工单号：{code}")
        assert [segment["type"] for segment in images] == ["image", "image"]
        paths = [segment["data"]["data_path"] for segment in images]
        stored = [(shop.shop.data_dir / path).read_bytes() for path in paths]
        assert stored == [BODIES["crack.png"], BODIES["box.png"]]


@pytest.mark.usefixtures("no_proxy")
async def test_new_ticket_notice_images_are_sent_as_the_stored_bytes(shop: ShopRuntime) -> None:
    from services.usecases.delivery import materialise

    code = await _ticket_with_images(shop)
    [row, *_] = [r for r in await outbox_rows(shop) if r.dedupe_key.startswith(f"ticket:{code}:")]
    sent = materialise(json.loads(row.segments), shop.shop)
    files = [s["data"]["file"] for s in sent if s["type"] == "image"]
    assert [base64.b64decode(f.removeprefix("base64://")) for f in files] == list(BODIES.values())


@pytest.mark.usefixtures("no_proxy")
@pytest.mark.parametrize(
    "viewer", [STAFF_ID, OWNER_ID, CUSTOMER_ID], ids=["staff", "owner", "customer"]
)
async def test_ticket_view_in_private_shows_the_images(
    app: App, shop: ShopRuntime, viewer: int
) -> None:
    code = await _ticket_with_images(shop)
    reply = await answer(app, private(f"/工单 {code}", viewer), "[图片 2 张]", image=True)
    assert reply.images == (BODIES["crack.png"], BODIES["box.png"])
    assert "图片不在群里显示" not in reply.text


@pytest.mark.usefixtures("no_proxy")
@pytest.mark.parametrize("viewer", [STAFF_ID, CUSTOMER_ID], ids=["staff", "customer"])
async def test_ticket_view_in_a_group_shows_no_image(
    app: App, shop: ShopRuntime, viewer: int
) -> None:
    code = await _ticket_with_images(shop, GROUP_ID)
    await answer(
        app,
        group(f"/工单 {code}", viewer, GROUP_ID),
        "[图片 2 张]",
        f"图片不在群里显示，请私聊我发 /工单 {code} 查看。",
        image=False,
    )


@pytest.mark.usefixtures("no_proxy")
async def test_another_customer_sees_neither_the_ticket_nor_its_images(
    app: App, shop: ShopRuntime
) -> None:
    code = await _ticket_with_images(shop)
    event = private(f"/工单 {code}", OTHER_CUSTOMER_ID)
    await answer(app, event, exact=f"没有找到工单 {code}。发 /售后 查看你的工单。")


@pytest.mark.usefixtures("no_proxy")
async def test_customer_message_notice_to_staff_carries_its_image(
    app: App, shop: ShopRuntime
) -> None:
    code = await _ticket_with_images(shop)
    with serve_images({"more.png": coloured_png(0, 255, 0)}) as urls:
        event = private(f"/留言 {code} 再补一张", CUSTOMER_ID, images=(urls["more.png"],))
        await answer(app, event, f"已发送给店家。工单号：{code}")
    [row, *_] = [r for r in await outbox_rows(shop) if ":message:" in r.dedupe_key]
    segments = json.loads(row.segments)
    assert [s["type"] for s in segments] == ["text", "image"]
    assert (shop.shop.data_dir / segments[1]["data"]["data_path"]).read_bytes() == coloured_png(
        0, 255, 0
    )


# --- docs/commands.md ------------------------------------------------------------------------


def test_every_registered_command_is_in_docs_commands_md() -> None:
    from plugins._common.registry import registry

    doc = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    missing = [
        command.name
        for command in registry.commands
        if f"### /{command.name}\n" not in doc
        or f"`/{command.usage}`" not in doc
        or f"`/{command.example}`" not in doc
    ]
    assert missing == [], f"run: .venv/bin/python -m tools.commands_doc (missing {missing})"
    for command in registry.dialogues.values():
        assert f"`{command.usage}`" in doc


def test_docs_commands_md_is_what_the_registry_generates() -> None:
    from plugins._common.registry import registry
    from tools.commands_doc import render_commands_doc

    doc = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    assert doc == render_commands_doc(registry.commands, registry.dialogues), (
        "docs/commands.md is out of date: run .venv/bin/python -m tools.commands_doc"
    )


def test_readme_links_stay_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert targets
    for target in targets:
        if target.startswith(("http://", "https://", "#")):
            continue
        assert not target.startswith(".."), target
        assert (ROOT / target.split("#")[0]).exists(), target
    assert "docs/commands.md" in targets
