"""Issue 14's service side: the demo shop can be paid (instructions and a QR code), a
friend request is approved through the outbox (once, paced like a message, or not at all
with FRIEND_REQUESTS=ignore), and the clock lease never judges a live process of another
user dead."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from config import FriendRequests, ShopSettings
from models.db import Database
from models.tables import OutboxMessage, Shop
from services import leases
from services.context import ShopContext, close_shop, open_shop
from services.demo import DEMO_PAYMENT_TEXT, DEMO_QR_TEXT, demo_qr_png, seed_demo_payment
from services.media import load_image
from services.outbox import TargetKind, request_flag
from services.usecases import friends
from tests.conftest import OWNER_ID

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
REQUESTER = 30005


async def outbox(shop: ShopContext) -> list[OutboxMessage]:
    async with shop.database.read() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        )  # type: ignore[arg-type]


# --- the demo can be paid -----------------------------------------------------------------------


async def test_the_demo_shop_has_payment_instructions_and_a_qr_code(
    settings: ShopSettings,
) -> None:
    from services.actors import Caller
    from services.staff import Role
    from services.usecases.buying import payment_instructions
    from tests.plugins.helpers import seed_order

    demo = settings.model_copy(update={"shop_demo": True})
    shop = await open_shop(demo, frozenset({OWNER_ID}))
    try:
        async with shop.database.read() as session:
            row = await session.get(Shop, shop.shop_id)
        assert row is not None and row.payment_text == DEMO_PAYMENT_TEXT
        assert row.payment_qr_path is not None
        image = load_image(row.payment_qr_path, shop.data_dir)
        assert image == demo_qr_png() and image.startswith(b"\x89PNG")
        # What /付款 shows for a demo order (the use case behind it).
        code = await seed_order(shop, 30003)
        shown = await payment_instructions(shop, Caller(30003, None, Role.CUSTOMER), code)
        assert (shown.text, shown.qr_image) == (DEMO_PAYMENT_TEXT, image)
        # A restart seeds nothing again; a shop that set its own instructions keeps them.
        async with shop.database.write() as session:
            assert not await seed_demo_payment(session, shop.shop_id, shop.data_dir)
            mine = await session.get(Shop, shop.shop_id)
            assert mine is not None
            mine.payment_text, mine.payment_qr_path = "微信转账 wxid_mine", None
        async with shop.database.write() as session:
            assert not await seed_demo_payment(session, shop.shop_id, shop.data_dir)
            assert (await session.get(Shop, shop.shop_id)).payment_text == "微信转账 wxid_mine"  # type: ignore[union-attr]
    finally:
        await close_shop(shop)


def test_the_demo_qr_code_pays_nobody() -> None:
    """It holds a sentence, not a payment link."""
    assert "://" not in DEMO_QR_TEXT and "演示" in DEMO_QR_TEXT


async def test_a_shop_without_demo_gets_no_payment_text(shop_context: ShopContext) -> None:
    async with shop_context.database.read() as session:
        row = await session.get(Shop, shop_context.shop_id)
    assert row is not None and (row.payment_text, row.payment_qr_path) == ("", None)


# --- friend requests --------------------------------------------------------------------------------


async def test_a_friend_request_queues_its_approval_then_a_welcome(
    shop_context: ShopContext,
) -> None:
    answer = await friends.friend_request(shop_context, REQUESTER, "flag-1", NOW)
    assert (answer.approved, answer.queued) == (True, True)
    approval, welcome = await outbox(shop_context)
    assert (approval.target_type, approval.target_id) == (TargetKind.FRIEND_REQUEST, REQUESTER)
    assert request_flag(json.loads(approval.segments)) == "flag-1"
    assert approval.next_attempt_at == NOW and approval.sent_at is None
    assert (welcome.target_type, welcome.target_id) == (TargetKind.PRIVATE, REQUESTER)
    assert "发 帮助 查看全部命令" in json.loads(welcome.segments)[0]["data"]["text"]
    # The same request delivered again queues nothing; another request is its own.
    again = await friends.friend_request(shop_context, REQUESTER, "flag-1", NOW)
    assert (again.approved, again.queued) == (True, False)
    assert len(await outbox(shop_context)) == 2
    await friends.friend_request(shop_context, REQUESTER, "flag-2", NOW)
    assert len(await outbox(shop_context)) == 4


async def test_friend_requests_are_left_alone_when_ignored(shop_context: ShopContext) -> None:
    shop_context.settings = shop_context.settings.model_copy(
        update={"friend_requests": FriendRequests.IGNORE}
    )
    answer = await friends.friend_request(shop_context, REQUESTER, "flag-1", NOW)
    assert (answer.approved, answer.queued) == (False, False)
    assert await outbox(shop_context) == []


def test_the_friend_request_kind_fits_the_outbox_column() -> None:
    column = OutboxMessage.__table__.c.target_type  # type: ignore[attr-defined]
    assert all(len(kind.value) <= column.type.length for kind in TargetKind)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("accept", FriendRequests.ACCEPT), (" Ignore ", FriendRequests.IGNORE)],
)
def test_friend_requests_setting(value: str, expected: FriendRequests) -> None:
    assert ShopSettings().friend_requests is FriendRequests.ACCEPT
    assert ShopSettings.model_validate({"friend_requests": value}).friend_requests is expected
    with pytest.raises(ValueError, match="FRIEND_REQUESTS must be 'accept' or 'ignore'"):
        ShopSettings.model_validate({"friend_requests": "maybe"})


# --- the clock lease and another user's live process --------------------------------------------


def test_a_live_holder_of_another_user_is_not_judged_dead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`os.kill(pid, 0)` raises PermissionError for a live process of another user (a
    second bot under another account, on this host and in this pid namespace): it runs,
    so its lease must run out rather than be taken over."""
    me = leases.holder_name()
    host, namespace, _, _ = me.rsplit(":", 3)
    other_user = f"{host}:{namespace}:4242:otheruser"
    asked: list[tuple[int, int]] = []

    def kill(pid: int, signal: int) -> None:
        asked.append((pid, signal))
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    assert leases.holder_is_gone(other_user, me) is False
    assert asked == [(4242, 0)]

    def gone(pid: int, signal: int) -> None:
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "kill", gone)
    assert leases.holder_is_gone(other_user, me) is True  # the same name, its process gone


async def test_a_lease_held_by_another_users_live_process_is_not_taken_over(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = leases.holder_name()
    host, namespace, _, _ = me.rsplit(":", 3)
    other_user = f"{host}:{namespace}:4242:otheruser"

    def kill(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    length = leases.lease_length(leases.MIN_LEASE)
    async with db.write() as session:
        assert await leases.acquire(session, leases.CLOCKS, other_user, NOW, length)
    async with db.write() as session:
        assert not await leases.acquire(session, leases.CLOCKS, me, NOW, length)
    async with db.read() as session:
        assert await leases.current_holder(session, leases.CLOCKS, NOW) == other_user


@pytest.mark.skipif(os.geteuid() == 0, reason="root may signal every process")
def test_pid_1_of_this_namespace_is_alive_for_an_unprivileged_user() -> None:
    """The real thing, where the test runs unprivileged: init (another user's process)
    answers os.kill with PermissionError and is not judged dead."""
    me = leases.holder_name()
    host, namespace, _, _ = me.rsplit(":", 3)
    assert not leases.holder_is_gone(f"{host}:{namespace}:1:init0001", me)
