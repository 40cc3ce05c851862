"""Virtual goods (卡密): /虚拟 and /卡密 (stock, import, clear).

Keys are imported in a private chat only and never shown back: replies carry counts and
masked samples. NoneBot logs every incoming message in full before any plugin sees it,
so this module also keeps /卡密 messages (an import carries the keys) out of that log."""

from __future__ import annotations

import re
from collections.abc import Callable

from nonebot import get_driver, logger
from nonebot.adapters.onebot.v11 import event as v11_event

from config import load_settings
from plugins._common.args import UsageError, normalise_word
from plugins._common.context import CommandContext, Reply
from plugins._common.dispatch import message_text
from plugins._common.registry import command
from services.card_keys import MAX_IMPORT_KEYS
from services.staff import Role
from services.usecases import card_keys

from . import render

AREA = "店铺管理"
_ON_OFF = {"开": True, "关": False, "on": True, "off": False}
_ACTIONS = {"导入": "import", "清空": "clear", "import": "import", "clear": "clear"}
# The aliases of /卡密 name its three uses (docs: keys-stock, keys-import, keys-clear).
_ALIAS_ACTIONS = {"keys-import": "import", "keys-clear": "clear", "keys-stock": "stock"}


@command(
    "虚拟",
    aliases=("virtual",),
    role=Role.STAFF,
    usage="虚拟 <商品编号> <开|关>",
    example="虚拟 4 开",
    summary="按卡密销售：无需地址和发货，付款后自动私聊发卡密，库存 = 未售出的卡密",
    area=AREA,
    details=(
        "开：商品要先没有实物库存（/库存 <规格编号> 0）；关：要先清空未售出的卡密",
        "有待付款或待发货的订单时不能切换",
    ),
)
async def set_virtual(ctx: CommandContext) -> Reply:
    item_id = ctx.args.item_id()
    virtual = ctx.args.choice("开关", _ON_OFF)
    ctx.args.end()
    result = await card_keys.set_virtual(ctx.shop, ctx.caller, item_id, virtual)
    return Reply(render.virtual_set(result))


@command(
    "卡密",
    aliases=("keys-stock", "keys-import", "keys-clear"),
    role=Role.STAFF,
    usage="卡密 [导入|清空] <规格编号>",
    example="卡密 导入 4-1",
    summary="虚拟商品的卡密：查看（打码）、导入（仅私聊，换行后每行一个）、清空未售出的",
    area=AREA,
    details=(
        f"导入：私聊发送“/卡密 导入 12-1”，换行后每行一个卡密，一次最多 {MAX_IMPORT_KEYS} 个；"
        "空行忽略，重复的跳过",
        "清空只删除未售出的卡密；已售出的、被未付款订单占用的保留",
    ),
)
async def manage_keys(ctx: CommandContext) -> Reply:
    action = _ALIAS_ACTIONS.get(ctx.word.lower())
    if action is None:
        word = ctx.args.peek()
        known = word is not None and normalise_word(word).lower() in _ACTIONS
        action = ctx.args.choice("操作", _ACTIONS) if known else "stock"
    if action == "import":
        if ctx.in_group:
            # Nothing of the message is read or echoed: every line after the first is a key.
            return Reply(render.keys_import_private_only())
        ref = ctx.args.variant_ref()
        text = ctx.args.rest("卡密", required=False)
        imported = await card_keys.import_keys(ctx.shop, ctx.caller, ref, text)
        return Reply(render.keys_imported(imported))
    ref = ctx.args.variant_ref()
    if ctx.args.has_more():
        # Not echoed ("多余的内容：…"): it may be a key pasted without 导入.
        raise UsageError(
            "规格编号后面不要有别的内容。导入卡密请用“卡密 导入 <规格编号>”，换行后每行一个。"
        )
    if action == "clear":
        cleared = await card_keys.clear_keys(ctx.shop, ctx.caller, ref)
        return Reply(render.keys_cleared(cleared))
    return Reply(render.key_stock(await card_keys.key_stock(ctx.shop, ctx.caller, ref)))


# --- keeping keys out of the log -------------------------------------------------------

# A /卡密 message, with any command prefix (or none, in a private chat).
_CARD_KEY_COMMAND = re.compile(
    r"^\s*[^\w\s]{0,3}\s*(?:卡密|keys-(?:import|stock|clear))(?:\s|$)", re.I
)
_REDACTED_MARK = "_card_keys_redacted"


def is_card_key_command(text: str) -> bool:
    return bool(_CARD_KEY_COMMAND.match(text))


def _redacting(describe: Callable[[v11_event.MessageEvent], str]) -> Callable[..., str]:
    def described(self: v11_event.MessageEvent) -> str:
        if is_card_key_command(message_text(self.original_message)):
            where = (
                f"@[群:{self.group_id}]" if isinstance(self, v11_event.GroupMessageEvent) else ""
            )
            return (
                f"Message {self.message_id} from {self.user_id}{where} [卡密命令，内容不记入日志]"
            )
        return describe(self)

    setattr(described, _REDACTED_MARK, True)
    return described


def redact_card_key_messages() -> None:
    """NoneBot logs every incoming message (`event.get_log_string()`, at SUCCESS) before
    any plugin or preprocessor runs: the only place to keep an import's keys out of the
    log is the event's own description, which this wraps for /卡密 messages."""
    for cls in (
        v11_event.MessageEvent,
        v11_event.PrivateMessageEvent,
        v11_event.GroupMessageEvent,
    ):
        own = cls.__dict__.get("get_event_description")
        if own is not None and not getattr(own, _REDACTED_MARK, False):
            cls.get_event_description = _redacting(own)  # type: ignore[method-assign]


redact_card_key_messages()


@get_driver().on_startup
async def _warn_plain_keys() -> None:
    if load_settings().card_key_secret is None:
        logger.warning(
            "CARD_KEY_SECRET is not set: card keys (卡密) are stored as plain text, and a "
            "copy of the database hands them out. Set it (a long random string) before "
            "importing keys."
        )
