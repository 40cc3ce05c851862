"""The after-sales use cases (services/usecases/tickets.py) on a real temp SQLite shop:
what each returns, the ticket events and messages it writes, the notices it queues in the
same transaction (with today's dedupe keys), and its main refusal, which writes nothing."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.tables import (
    OutboxMessage,
    Refund,
    ShopOrder,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
)
from services import catalog, orders, staff
from services.actors import Caller
from services.addresses import AddressSnapshot
from services.context import ShopContext
from services.errors import (
    InvalidTicketTransition,
    InvalidValue,
    MediaUnavailable,
    OrderNotFound,
    TicketNotAllowed,
    TicketNotFound,
)
from services.orders import Actor
from services.staff import Role
from services.usecases import tickets
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
PRICE = 5900
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
CUSTOMER_IN_GROUP = Caller(CUSTOMER_ID, GROUP_ID, Role.CUSTOMER)
OTHER_CUSTOMER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
_names = itertools.count(1)


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    """The shop with one staff member besides the owner."""
    async with shop_context.database.write() as session:
        await staff.add_staff(
            session, shop_context.shop_id, STAFF_ID, OWNER_ID, shop_context.owners
        )
    return shop_context


# --- helpers -------------------------------------------------------------------------------


async def _order(
    shop: ShopContext, *, customer: int = CUSTOMER_ID, group: int | None = None, paid: bool = True
) -> str:
    async with shop.database.write() as session:
        _, variant = await catalog.create_item(
            session, shop.shop_id, f"商品{next(_names)}", PRICE, 10
        )
        assert variant.id is not None
        order = await orders.place_order(
            session,
            shop.shop_id,
            customer,
            group,
            [(variant.id, 1)],
            HOME,
            "",
            NOW - timedelta(hours=2),
            timedelta(minutes=30),
        )
        if paid:
            await orders.record_payment(
                session,
                order,
                "manual",
                f"manual:{order.code}",
                order.total_fen,
                Actor("owner", OWNER_ID),
                NOW - timedelta(hours=1),
            )
        return order.code


async def _ticket(
    shop: ShopContext, kind: TicketKind, caller: Caller = CUSTOMER, reason: str = "杯子有裂纹"
) -> str:
    """A ticket opened an hour ago on a new paid order of the caller; the outbox is
    emptied so each test sees only what its own use case queued."""
    order_code = await _order(shop, customer=caller.user_id, group=caller.group_id)
    opened = await tickets.open_ticket(
        shop, caller, order_code, kind, reason, now=NOW - timedelta(hours=1)
    )
    await _clear_outbox(shop)
    return opened.ticket.code


async def _clear_outbox(shop: ShopContext) -> None:
    async with shop.database.write() as session:
        for row in (await session.execute(select(OutboxMessage))).scalars():
            await session.delete(row)


async def _outbox(shop: ShopContext) -> list[tuple[str, int, str, str]]:
    """(target type, target id, dedupe key, text) of every queued notice, sorted."""
    async with shop.database.read() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars()
        return sorted(
            (row.target_type, row.target_id, row.dedupe_key, _text(row.segments)) for row in rows
        )


def _text(segments: str) -> str:
    return "".join(s["data"]["text"] for s in json.loads(segments) if s["type"] == "text")


async def _row(shop: ShopContext, code: str) -> Ticket:
    async with shop.database.read() as session:
        return (await session.execute(select(Ticket).where(Ticket.code == code))).scalar_one()


async def _events(shop: ShopContext, code: str) -> list[tuple[str, str | None, str, str, str]]:
    """(action, from, to, actor, reason) of the ticket's events, in order."""
    async with shop.database.read() as session:
        rows = await session.execute(
            select(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(Ticket.code == code)
            .order_by(TicketEvent.id)  # type: ignore[arg-type]
        )
        return [(e.action, e.from_status, e.to_status, e.actor, e.reason) for e in rows.scalars()]


async def _messages(shop: ShopContext, code: str) -> list[TicketMessage]:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(TicketMessage)
            .join(Ticket, Ticket.id == TicketMessage.ticket_id)
            .where(Ticket.code == code)
            .order_by(TicketMessage.id)  # type: ignore[arg-type]
        )
        return list(rows.scalars())


async def _rows(shop: ShopContext, model: Any) -> list[Any]:
    async with shop.database.read() as session:
        return list((await session.execute(select(model))).scalars())


def _to_staff(key: str, text: str) -> list[tuple[str, int, str, str]]:
    return [
        ("private", OWNER_ID, f"{key}:staff:{OWNER_ID}", text),
        ("private", STAFF_ID, f"{key}:staff:{STAFF_ID}", text),
    ]


# --- customers -----------------------------------------------------------------------------


async def test_open_ticket_writes_it_and_tells_owners_and_staff(shop: ShopContext) -> None:
    order_code = await _order(shop, group=GROUP_ID)
    await _clear_outbox(shop)
    opened = await tickets.open_ticket(
        shop, CUSTOMER_IN_GROUP, order_code, TicketKind.RETURN, "杯子有裂纹", now=NOW
    )
    code = opened.ticket.code
    assert (opened.order_code, opened.image_count) == (order_code, 0)
    row = await _row(shop, code)
    assert (row.kind, row.status, row.user_id, row.group_id, row.reason, row.created_at) == (
        "return",
        "open",
        CUSTOMER_ID,
        GROUP_ID,
        "杯子有裂纹",
        NOW,
    )
    assert await _events(shop, code) == [("opened", None, "open", "customer", "杯子有裂纹")]
    [message] = await _messages(shop, code)
    assert (message.author, message.author_id, message.text, message.images) == (
        "customer",
        CUSTOMER_ID,
        "杯子有裂纹",
        "[]",
    )
    notice = f"新售后 工单号：{code}（退货，订单号：{order_code}，顾客 {CUSTOMER_ID}）：杯子有裂纹"
    assert await _outbox(shop) == _to_staff(f"ticket:{code}:opened", notice)


async def test_open_ticket_refusals_write_nothing(shop: ShopContext) -> None:
    unpaid = await _order(shop, paid=False)
    others = await _order(shop, customer=OTHER_CUSTOMER_ID)
    mine = await _order(shop)
    await _clear_outbox(shop)
    with pytest.raises(TicketNotAllowed) as not_paid:
        await tickets.open_ticket(shop, CUSTOMER, unpaid, TicketKind.REFUND, "不想要了", now=NOW)
    assert not_paid.value == TicketNotAllowed("order_status", "refund")
    # Someone else's order is one that does not exist, staff asking included.
    for caller in (CUSTOMER, STAFF):
        with pytest.raises(OrderNotFound):
            await tickets.open_ticket(shop, caller, others, TicketKind.REFUND, "不想要了", now=NOW)
    # Too many images are refused before any download; a URL that cannot be fetched
    # opens no ticket.
    with pytest.raises(InvalidValue) as too_many:
        await tickets.open_ticket(
            shop, CUSTOMER, mine, TicketKind.RETURN, "裂纹", ["ftp://x"] * 6, now=NOW
        )
    assert too_many.value == InvalidValue("ticket_images", "too_large", 5)
    with pytest.raises(MediaUnavailable):
        await tickets.open_ticket(
            shop, CUSTOMER, mine, TicketKind.RETURN, "裂纹", ["ftp://img.example/a.png"], now=NOW
        )
    assert await _rows(shop, Ticket) == []
    assert await _rows(shop, TicketEvent) == []
    assert await _outbox(shop) == []


async def test_my_tickets_are_only_mine_newest_first(shop: ShopContext) -> None:
    first = await _ticket(shop, TicketKind.REFUND)
    await _ticket(shop, TicketKind.COMPLAINT, OTHER_CUSTOMER)
    second_order = await _order(shop)
    second = await tickets.open_ticket(
        shop, CUSTOMER, second_order, TicketKind.EXCHANGE, "尺寸不对", now=NOW
    )
    rows = await tickets.my_tickets(shop, CUSTOMER)
    assert [(ticket.code, order_code) for ticket, order_code in rows] == [
        (second.ticket.code, second_order),
        (first, (await _order_code_of(shop, first))),
    ]
    assert await tickets.my_tickets(shop, Caller(30999, None, Role.CUSTOMER)) == []


async def _order_code_of(shop: ShopContext, ticket_code: str) -> str:
    async with shop.database.read() as session:
        found = await session.execute(
            select(ShopOrder.code)
            .join(Ticket, Ticket.order_id == ShopOrder.id)
            .where(Ticket.code == ticket_code)
        )
        return str(found.scalar_one())


async def test_view_ticket_for_its_customer_and_staff_only(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.RETURN)
    for caller in (CUSTOMER, STAFF):
        view = await tickets.view_ticket(shop, caller, code.lower())
        assert view.ticket.code == code
        assert view.order_code == await _order_code_of(shop, code)
        assert [m.text for m in view.messages] == ["杯子有裂纹"]
        assert [e.action for e in view.events] == ["opened"]
    with pytest.raises(TicketNotFound) as other:
        await tickets.view_ticket(shop, OTHER_CUSTOMER, code)
    assert other.value == TicketNotFound(code)


async def test_leave_message_tells_owners_and_staff(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.RETURN)
    ticket = await tickets.leave_message(shop, CUSTOMER, code, "补充：底部也有", now=NOW)
    assert ticket.code == code
    opening, added = await _messages(shop, code)
    assert opening.text == "杯子有裂纹"
    assert (added.author, added.author_id, added.text, added.at) == (
        "customer",
        CUSTOMER_ID,
        "补充：底部也有",
        NOW,
    )
    assert await _outbox(shop) == _to_staff(
        f"ticket:{code}:message:{added.id}", f"工单号：{code} 顾客留言：补充：底部也有"
    )
    assert len(await _events(shop, code)) == 1  # a message changes no status


async def test_leave_message_with_five_slow_images_takes_one_download_time(
    shop: ShopContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five images from a host that takes a second each: downloaded together, /留言
    answers after about one second, not five (nor five deadlines)."""
    import time

    from tests.services.slow_images import PROXY_VARIABLES, SlowImages

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    code = await _ticket(shop, TicketKind.RETURN)
    with SlowImages(delay=1.0).running() as server:
        started = time.monotonic()
        await tickets.leave_message(
            shop, CUSTOMER, code, "五张照片", [server.image_url(n) for n in range(5)], now=NOW
        )
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    [_, added] = await _messages(shop, code)
    assert len(json.loads(added.images)) == 5
    # The staff notice carries the five stored images after its text.
    async with shop.database.read() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    for row in rows:
        segments = json.loads(row.segments)
        assert [s["type"] for s in segments] == ["text"] + ["image"] * 5
        assert [s["data"]["data_path"] for s in segments[1:]] == json.loads(added.images)


async def test_view_ticket_brings_the_images_in_private_only(
    shop: ShopContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services.slow_images import PNG, PROXY_VARIABLES, SlowImages

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    order_code = await _order(shop, group=GROUP_ID)
    with SlowImages(delay=0).running() as server:
        urls = [server.image_url(n) for n in range(2)]
        opened = await tickets.open_ticket(
            shop, CUSTOMER_IN_GROUP, order_code, TicketKind.RETURN, "裂了", urls, now=NOW
        )
    code = opened.ticket.code
    expected = [PNG + b"/image-0.png", PNG + b"/image-1.png"]
    for caller in (CUSTOMER, STAFF):
        assert (await tickets.view_ticket(shop, caller, code)).images == expected
    for caller in (CUSTOMER_IN_GROUP, Caller(STAFF_ID, GROUP_ID, Role.STAFF)):
        view = await tickets.view_ticket(shop, caller, code)
        assert (view.images, [m.text for m in view.messages]) == ([], ["裂了"])


async def test_leave_message_refusals_write_nothing(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.RETURN)
    with pytest.raises(TicketNotFound):
        await tickets.leave_message(shop, OTHER_CUSTOMER, code, "我也来说两句", now=NOW)
    await tickets.withdraw_ticket(shop, CUSTOMER, code, now=NOW)
    with pytest.raises(InvalidTicketTransition) as ended:
        await tickets.leave_message(shop, CUSTOMER, code, "还在吗", now=NOW)
    assert ended.value == InvalidTicketTransition("withdrawn", "message")
    assert len(await _messages(shop, code)) == 1
    assert await _outbox(shop) == []


async def test_record_return_parcel_tells_owners_and_staff(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.RETURN)
    with pytest.raises(InvalidTicketTransition) as not_approved:
        await tickets.record_return_parcel(shop, CUSTOMER, code, "中通", "ZT123456789", now=NOW)
    assert not_approved.value == InvalidTicketTransition("open", "return_shipped")
    assert await _outbox(shop) == []
    await tickets.approve_ticket(shop, STAFF, code, now=NOW)
    await _clear_outbox(shop)
    with pytest.raises(TicketNotFound):
        await tickets.record_return_parcel(
            shop, OTHER_CUSTOMER, code, "中通", "ZT123456789", now=NOW
        )
    ticket = await tickets.record_return_parcel(
        shop, CUSTOMER, code, "中通", "ZT123456789", now=NOW
    )
    assert (ticket.status, ticket.return_carrier, ticket.return_number) == (
        "return_shipped",
        "中通",
        "ZT123456789",
    )
    assert (await _events(shop, code))[-1] == (
        "return_shipped",
        "awaiting_return",
        "return_shipped",
        "customer",
        "中通 ZT123456789",
    )
    assert await _outbox(shop) == _to_staff(
        f"ticket:{code}:return_shipped", f"工单号：{code} 顾客已寄回：中通 ZT123456789"
    )


async def test_withdraw_ticket_tells_nobody(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.REFUND)
    with pytest.raises(TicketNotFound):
        await tickets.withdraw_ticket(shop, OTHER_CUSTOMER, code, now=NOW)
    ticket = await tickets.withdraw_ticket(shop, CUSTOMER, code, now=NOW)
    assert (ticket.status, ticket.closed_at) == ("withdrawn", NOW)
    assert (await _events(shop, code))[-1] == ("withdrawn", "open", "withdrawn", "customer", "")
    assert await _outbox(shop) == []
    with pytest.raises(InvalidTicketTransition) as again:
        await tickets.withdraw_ticket(shop, CUSTOMER, code, now=NOW)
    assert again.value == InvalidTicketTransition("withdrawn", "withdrawn")


# --- staff ---------------------------------------------------------------------------------


async def test_list_tickets_is_the_staff_queue(shop: ShopContext) -> None:
    mine = await _ticket(shop, TicketKind.REFUND)
    others = await _ticket(shop, TicketKind.COMPLAINT, OTHER_CUSTOMER)
    withdrawn = await _ticket(shop, TicketKind.EXCHANGE)
    await tickets.withdraw_ticket(shop, CUSTOMER, withdrawn, now=NOW)
    everything = await tickets.list_tickets(shop, STAFF)
    assert [ticket.code for ticket, _ in everything] == [mine, others, withdrawn]
    only_open = await tickets.list_tickets(shop, STAFF, TicketStatus.OPEN)
    assert [ticket.code for ticket, _ in only_open] == [mine, others]


async def test_answer_ticket_reaches_the_customer_in_the_group(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.COMPLAINT, CUSTOMER_IN_GROUP)
    ticket = await tickets.answer_ticket(shop, STAFF, code, "已安排补发", now=NOW)
    assert ticket.code == code
    added = (await _messages(shop, code))[-1]
    assert (added.author, added.author_id, added.text) == ("staff", STAFF_ID, "已安排补发")
    async with shop.database.read() as session:
        [row] = (await session.execute(select(OutboxMessage))).scalars()
    assert (row.target_type, row.target_id, row.dedupe_key) == (
        "group",
        GROUP_ID,
        f"ticket:{code}:message:{added.id}",
    )
    assert json.loads(row.segments) == [
        {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
        {"type": "text", "data": {"text": f" 工单号：{code} 店家回复：已安排补发"}},
    ]
    with pytest.raises(TicketNotFound):
        await tickets.answer_ticket(shop, STAFF, "23456789AB", "在吗", now=NOW)


async def test_approve_refund_ticket_refunds_now_and_tells_the_customer(
    shop: ShopContext,
) -> None:
    code = await _ticket(shop, TicketKind.REFUND)
    decision = await tickets.approve_ticket(shop, STAFF, code, 1000, now=NOW)
    assert (decision.ticket.code, decision.amount_fen, decision.refunded) == (code, 1000, True)
    assert [(e[0], e[2], e[3]) for e in await _events(shop, code)][1:] == [
        ("approved", "approved", "staff"),
        ("refunded", "refunded", "staff"),
    ]
    [refund] = await _rows(shop, Refund)
    assert (refund.amount_fen, refund.reason) == (1000, f"售后退款 {code}")
    assert await _outbox(shop) == [
        (
            "private",
            CUSTOMER_ID,
            f"ticket:{code}:approved",
            f"工单号：{code}（退款）已同意并退款 ¥10.00。",
        )
    ]


async def test_approve_return_ticket_waits_for_the_parcel(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.RETURN)
    decision = await tickets.approve_ticket(shop, STAFF, code, now=NOW)
    assert (decision.ticket.status, decision.amount_fen, decision.refunded) == (
        "awaiting_return",
        PRICE,
        False,
    )
    assert await _rows(shop, Refund) == []
    assert await _outbox(shop) == [
        (
            "private",
            CUSTOMER_ID,
            f"ticket:{code}:approved",
            f"工单号：{code}（退货）已同意，请按店家说明寄回，并发 /退货单号 <工单号> <快递公司> <运单号>。",
        )
    ]


async def test_approve_refusals_write_nothing(shop: ShopContext) -> None:
    complaint = await _ticket(shop, TicketKind.COMPLAINT)
    with pytest.raises(InvalidTicketTransition) as with_amount:
        await tickets.approve_ticket(shop, STAFF, complaint, 1000, now=NOW)
    assert with_amount.value == InvalidTicketTransition("open", "approve_with_amount")
    assert (await _row(shop, complaint)).status == "open"
    await tickets.approve_ticket(shop, STAFF, complaint, now=NOW)
    await _clear_outbox(shop)
    with pytest.raises(InvalidTicketTransition) as twice:
        await tickets.approve_ticket(shop, STAFF, complaint, now=NOW)
    assert twice.value == InvalidTicketTransition("approved", "approved")
    assert await _outbox(shop) == []


async def test_reject_ticket_tells_the_customer_why(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.REFUND)
    with pytest.raises(InvalidValue):
        await tickets.reject_ticket(shop, STAFF, code, "  ", now=NOW)
    assert await _outbox(shop) == []
    ticket = await tickets.reject_ticket(shop, STAFF, code, "已超过无理由期限", now=NOW)
    assert (ticket.status, ticket.closed_at) == ("rejected", NOW)
    assert (await _events(shop, code))[-1] == (
        "rejected",
        "open",
        "rejected",
        "staff",
        "已超过无理由期限",
    )
    assert await _outbox(shop) == [
        (
            "private",
            CUSTOMER_ID,
            f"ticket:{code}:rejected",
            f"工单号：{code}（退款）未通过。说明：已超过无理由期限",
        )
    ]


async def test_complete_return_ticket_refunds_and_tells_the_customer(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.RETURN)
    with pytest.raises(InvalidTicketTransition) as too_early:
        await tickets.complete_ticket(shop, STAFF, code, now=NOW)
    assert too_early.value == InvalidTicketTransition("open", "complete")
    assert await _outbox(shop) == []
    await tickets.approve_ticket(shop, STAFF, code, 2000, now=NOW)
    await _clear_outbox(shop)
    decision = await tickets.complete_ticket(shop, STAFF, code, now=NOW)
    assert (decision.ticket.status, decision.amount_fen, decision.refunded) == (
        "refunded",
        2000,
        True,
    )
    assert (await _events(shop, code))[-1] == (
        "refunded",
        "awaiting_return",
        "refunded",
        "staff",
        "",
    )
    [refund] = await _rows(shop, Refund)
    assert (refund.amount_fen, refund.reason) == (2000, f"退货退款 {code}")
    assert await _outbox(shop) == [
        (
            "private",
            CUSTOMER_ID,
            f"ticket:{code}:completed",
            f"工单号：{code}（退货）已完成，退款 ¥20.00。",
        )
    ]


async def test_complete_exchange_ticket_closes_it(shop: ShopContext) -> None:
    code = await _ticket(shop, TicketKind.EXCHANGE)
    await tickets.approve_ticket(shop, STAFF, code, now=NOW)
    await _clear_outbox(shop)
    decision = await tickets.complete_ticket(shop, STAFF, code, now=NOW)
    assert (decision.ticket.status, decision.amount_fen, decision.refunded) == ("closed", 0, False)
    assert await _outbox(shop) == [
        ("private", CUSTOMER_ID, f"ticket:{code}:completed", f"工单号：{code}（换货）已完成。")
    ]
