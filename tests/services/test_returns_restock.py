"""A completed 退货 puts its goods back on the shelf only when staff say 入库
(services/usecases/tickets.complete_ticket, services/aftersales.restock_return), on a real
temp database: the stock and sales counts, the order and ticket events, the low-stock
alert re-arming, the hint when 入库 was not asked, and every refusal, which changes
nothing (not even the completion asked for with it)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from models.tables import (
    Item,
    OrderEvent,
    OutboxMessage,
    Refund,
    ShopOrder,
    Ticket,
    TicketEvent,
    TicketKind,
    Variant,
    VariantGuard,
)
from services import aftersales, catalog, orders, safeguards, staff
from services.actors import Actor, Caller
from services.addresses import AddressSnapshot
from services.catalog import VariantRef
from services.context import ShopContext
from services.errors import (
    InvalidTicketTransition,
    RestockRefusal,
    RestockRefused,
    TicketNotAllowed,
    TicketRefusal,
)
from services.staff import Role
from services.tracking import normalise_carrier
from services.usecases import buying, card_keys, fulfilment, tickets
from services.usecases.payments import manual_reference, record_payment
from tests.conftest import CUSTOMER_ID, OWNER_ID, STAFF_ID

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
PRICE = 3000
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
SF = normalise_carrier("顺丰")
_names = itertools.count(1)


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    async with shop_context.database.write() as session:
        await staff.add_staff(
            session, shop_context.shop_id, STAFF_ID, OWNER_ID, shop_context.owners
        )
    return shop_context


# --- helpers -------------------------------------------------------------------------------


async def _items(shop: ShopContext, *stocks: int) -> list[int]:
    """New single-variant items with these stocks; their variant ids."""
    ids = []
    async with shop.database.write() as session:
        for stock in stocks:
            _, variant = await catalog.create_item(
                session, shop.shop_id, f"杯子{next(_names)}", PRICE, stock
            )
            ids.append(variant.id or 0)
    return ids


async def _paid(shop: ShopContext, lines: list[tuple[int, int]]) -> str:
    """A paid order of (variant id, quantity), placed two hours ago."""
    async with shop.database.write() as session:
        order = await orders.place_order(
            session,
            shop.shop_id,
            CUSTOMER_ID,
            None,
            lines,
            HOME,
            "",
            NOW - timedelta(hours=2),
            timedelta(minutes=30),
        )
        await orders.record_payment(
            session,
            order,
            "manual",
            manual_reference(order.code),
            order.total_fen,
            Actor("owner", OWNER_ID),
            NOW - timedelta(hours=2),
        )
        return order.code


async def _shipped(shop: ShopContext, lines: list[tuple[int, int]]) -> str:
    code = await _paid(shop, lines)
    await fulfilment.ship_order(shop, STAFF, code, SF, "SF1234567890", NOW - timedelta(hours=1))
    return code


async def _return_back(
    shop: ShopContext, order_code: str, amount_fen: int | None = None, *, sent: bool = True
) -> str:
    """A 退货 opened on the order, approved (for `amount_fen`, default everything) and,
    with `sent`, its parcel on the way back; the outbox emptied."""
    opened = await tickets.open_ticket(
        shop, CUSTOMER, order_code, TicketKind.RETURN, "不合适", now=NOW - timedelta(minutes=50)
    )
    code = opened.ticket.code
    await tickets.approve_ticket(shop, STAFF, code, amount_fen, now=NOW - timedelta(minutes=40))
    if sent:
        await tickets.record_return_parcel(
            shop, CUSTOMER, code, "中通", "ZT123456789", now=NOW - timedelta(minutes=30)
        )
    await _clear_outbox(shop)
    return code


async def _clear_outbox(shop: ShopContext) -> None:
    async with shop.database.write() as session:
        for row in (await session.execute(select(OutboxMessage))).scalars():
            await session.delete(row)


async def _rows(shop: ShopContext, model: Any, *where: Any) -> list[Any]:
    async with shop.database.read() as session:
        order = model.variant_id if model is VariantGuard else model.id
        return list((await session.execute(select(model).where(*where).order_by(order))).scalars())


async def _variants(shop: ShopContext, *ids: int) -> list[tuple[int, int]]:
    """(stock, sold) of each variant."""
    found = {v.id: (v.stock, v.sold) for v in await _rows(shop, Variant)}
    return [found[variant_id] for variant_id in ids]


async def _ticket_events(shop: ShopContext, code: str) -> list[tuple[str, str, str, str]]:
    """(action, from, to, reason) of the ticket's events after its opening."""
    [ticket] = await _rows(shop, Ticket, Ticket.code == code)
    return [
        (e.action, e.from_status or "", e.to_status, e.reason)
        for e in await _rows(shop, TicketEvent, TicketEvent.ticket_id == ticket.id)
    ][1:]


async def _order_events(shop: ShopContext, code: str, action: str) -> list[OrderEvent]:
    [order] = await _rows(shop, ShopOrder, ShopOrder.code == code)
    return await _rows(
        shop, OrderEvent, OrderEvent.order_id == order.id, OrderEvent.action == action
    )


async def _outbox_texts(shop: ShopContext) -> list[tuple[str, str]]:
    rows = await _rows(shop, OutboxMessage)
    return [
        (
            row.dedupe_key,
            "".join(s["data"]["text"] for s in json.loads(row.segments) if s["type"] == "text"),
        )
        for row in rows
    ]


async def _state(shop: ShopContext) -> dict[str, list[dict[str, Any]]]:
    """Every row a completion or a restock can touch."""
    tables = (Ticket, TicketEvent, ShopOrder, OrderEvent, Refund, Variant, OutboxMessage)
    state = {}
    async with shop.database.read() as session:
        for model in tables:
            rows = (await session.execute(select(model).order_by(model.id))).scalars()
            state[model.__name__] = [row.model_dump() for row in rows]
    return state


async def _item_names(shop: ShopContext) -> dict[int, str]:
    async with shop.database.read() as session:
        rows = await session.execute(select(Variant.id, Item.name).join(Item))
        return {variant_id: name for variant_id, name in rows}


# --- 入库 together with the completion -------------------------------------------------------


async def test_complete_with_restock_puts_every_line_back_in_one_transaction(
    shop: ShopContext,
) -> None:
    cup, mug = await _items(shop, 10, 5)
    order_code = await _shipped(shop, [(cup, 2), (mug, 1)])
    assert await _variants(shop, cup, mug) == [(8, 2), (4, 1)]
    code = await _return_back(shop, order_code)

    decision = await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)

    names = await _item_names(shop)
    assert (decision.completed, decision.refunded, decision.amount_fen) == (True, True, 3 * PRICE)
    assert decision.restock == aftersales.Restock(
        [
            aftersales.RestockedLine(names[cup], 2, 10),
            aftersales.RestockedLine(names[mug], 1, 5),
        ],
        [],
    )
    assert decision.restock_offered is False
    # Back on the shelf, and no longer counted as sold.
    assert await _variants(shop, cup, mug) == [(10, 0), (5, 0)]
    what = f"{names[cup]} ×2、{names[mug]} ×1"
    assert await _ticket_events(shop, code) == [
        ("approved", "open", "approved", ""),
        ("awaiting_return", "approved", "awaiting_return", ""),
        ("return_shipped", "awaiting_return", "return_shipped", "中通 ZT123456789"),
        ("refunded", "return_shipped", "refunded", ""),
        ("restocked", "refunded", "refunded", what),
    ]
    [event] = await _order_events(shop, order_code, "restocked")
    assert (event.actor, event.actor_id, event.at, event.detail, event.reason) == (
        "staff",
        STAFF_ID,
        NOW,
        f"退货入库：{what}",
        f"退货 {code}",
    )
    assert (event.from_status, event.to_status) == ("refunded", "refunded")
    # The customer hears of the completion only; the shelf is the shop's business.
    assert await _outbox_texts(shop) == [
        (f"ticket:{code}:completed", f"工单号：{code}（退货）已完成，退款 ¥90.00。")
    ]


async def test_restock_adds_to_the_stock_as_it_is_now(shop: ShopContext) -> None:
    """A relative UPDATE: units sold or added meanwhile are kept, not overwritten."""
    [cup] = await _items(shop, 10)
    order_code = await _shipped(shop, [(cup, 3)])
    code = await _return_back(shop, order_code)
    async with shop.database.write() as session:
        variant = await session.get(Variant, cup)
        assert variant is not None
        ref = VariantRef(variant.item_id)
        await catalog.change_stock(session, shop.shop_id, ref, catalog.StockChange("add", 4))
    await _paid(shop, [(cup, 2)])  # another customer's order meanwhile
    assert await _variants(shop, cup) == [(9, 5)]
    await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert await _variants(shop, cup) == [(12, 2)]


async def test_restock_re_arms_the_low_stock_alert(shop: ShopContext) -> None:
    [cup] = await _items(shop, 3)
    async with shop.database.write() as session:
        variant = await session.get(Variant, cup)
        assert variant is not None
        await safeguards.set_low_stock_threshold(session, variant, 2, NOW - timedelta(hours=3))
    order_code = await _shipped(shop, [(cup, 2)])
    [guard] = await _rows(shop, VariantGuard, VariantGuard.variant_id == cup)
    assert (guard.low_stock_alerted, guard.low_stock_alerts) == (True, 1)
    code = await _return_back(shop, order_code)
    await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    [guard] = await _rows(shop, VariantGuard, VariantGuard.variant_id == cup)
    assert (guard.low_stock_alerted, guard.low_stock_alerts) == (False, 1)
    # Re-armed: the next fall to the threshold is news again.
    await _paid(shop, [(cup, 1)])
    [guard] = await _rows(shop, VariantGuard, VariantGuard.variant_id == cup)
    assert (guard.low_stock_alerted, guard.low_stock_alerts) == (True, 2)


# --- without 入库: the old behaviour, and 入库 afterwards ----------------------------------


async def test_complete_without_restock_leaves_the_stock_and_offers_it(shop: ShopContext) -> None:
    [cup] = await _items(shop, 10)
    order_code = await _shipped(shop, [(cup, 2)])
    code = await _return_back(shop, order_code, 2500)

    decision = await tickets.complete_ticket(shop, STAFF, code, now=NOW)

    assert (decision.completed, decision.amount_fen, decision.restock) == (True, 2500, None)
    assert decision.restock_offered is True
    assert await _variants(shop, cup) == [(8, 2)]
    assert await _order_events(shop, order_code, "restocked") == []
    assert [e[0] for e in await _ticket_events(shop, code)][-1] == "refunded"


async def test_restock_after_completion_once(shop: ShopContext) -> None:
    [cup] = await _items(shop, 10)
    order_code = await _shipped(shop, [(cup, 2)])
    code = await _return_back(shop, order_code)
    await tickets.complete_ticket(shop, STAFF, code, now=NOW)
    await _clear_outbox(shop)
    later = NOW + timedelta(hours=1)

    decision = await tickets.complete_ticket(shop, OWNER, code, restock=True, now=later)

    assert (decision.completed, decision.refunded, decision.amount_fen) == (False, False, 0)
    assert decision.restock is not None
    assert [(line.quantity, line.stock) for line in decision.restock.lines] == [(2, 10)]
    assert await _variants(shop, cup) == [(10, 0)]
    assert [e[:3] for e in await _ticket_events(shop, code)][-2:] == [
        ("refunded", "return_shipped", "refunded"),
        ("restocked", "refunded", "refunded"),
    ]
    [event] = await _order_events(shop, order_code, "restocked")
    assert (event.actor, event.actor_id, event.at) == ("owner", OWNER_ID, later)
    assert await _outbox_texts(shop) == []  # nothing for the customer: nothing changed for them
    [refund] = await _rows(shop, Refund)  # no second refund
    assert refund.amount_fen == 2 * PRICE

    before = await _state(shop)
    with pytest.raises(RestockRefused) as twice:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=later)
    assert twice.value == RestockRefused(RestockRefusal.ALREADY, code)
    assert await _state(shop) == before


async def test_a_second_return_of_the_order_cannot_restock_again(shop: ShopContext) -> None:
    """Once per order, whichever ticket: a partial 退货 restocked everything; a later 退货
    of the same order is refused 入库 and not completed either."""
    [cup] = await _items(shop, 10)
    order_code = await _shipped(shop, [(cup, 2)])
    first = await _return_back(shop, order_code, 1000)
    await tickets.complete_ticket(shop, STAFF, first, restock=True, now=NOW)
    second = await _return_back(shop, order_code, 1000)
    before = await _state(shop)
    with pytest.raises(RestockRefused) as refused:
        await tickets.complete_ticket(shop, STAFF, second, restock=True, now=NOW)
    assert refused.value == RestockRefused(RestockRefusal.ALREADY, second)
    assert await _state(shop) == before
    # Completing it without 入库 works, and offers nothing.
    decision = await tickets.complete_ticket(shop, STAFF, second, now=NOW)
    assert (decision.amount_fen, decision.restock_offered) == (1000, False)
    assert await _variants(shop, cup) == [(10, 0)]


# --- refusals ----------------------------------------------------------------------------


async def test_restock_refused_for_other_kinds_changes_nothing(shop: ShopContext) -> None:
    [cup] = await _items(shop, 10)
    order_code = await _shipped(shop, [(cup, 1)])
    opened = await tickets.open_ticket(
        shop, CUSTOMER, order_code, TicketKind.EXCHANGE, "尺寸不对", now=NOW
    )
    code = opened.ticket.code
    await tickets.approve_ticket(shop, STAFF, code, now=NOW)
    before = await _state(shop)
    with pytest.raises(RestockRefused) as refused:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert refused.value == RestockRefused(RestockRefusal.NOT_RETURN, code)
    assert await _state(shop) == before
    decision = await tickets.complete_ticket(shop, STAFF, code, now=NOW)
    assert (decision.ticket.status, decision.restock_offered) == ("closed", False)


async def test_restock_refused_when_the_order_never_shipped(shop: ShopContext) -> None:
    """Goods that never left: the full refund puts them back by itself (paid → refunded),
    so 入库 would count them twice."""
    [cup] = await _items(shop, 10)
    order_code = await _paid(shop, [(cup, 2)])
    code = await _return_back(shop, order_code, sent=False)
    before = await _state(shop)
    with pytest.raises(RestockRefused) as refused:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert refused.value == RestockRefused(RestockRefusal.NOT_SHIPPED, code)
    assert await _state(shop) == before
    decision = await tickets.complete_ticket(shop, STAFF, code, now=NOW)
    assert (decision.amount_fen, decision.restock_offered) == (2 * PRICE, False)
    assert await _variants(shop, cup) == [(10, 0)]  # the refund released it
    with pytest.raises(RestockRefused) as afterwards:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert afterwards.value.why is RestockRefusal.NOT_SHIPPED


async def test_restock_follows_the_ticket_states(shop: ShopContext) -> None:
    [cup] = await _items(shop, 10)
    order_code = await _shipped(shop, [(cup, 1)])
    opened = await tickets.open_ticket(
        shop, CUSTOMER, order_code, TicketKind.RETURN, "不合适", now=NOW
    )
    code = opened.ticket.code
    before = await _state(shop)
    with pytest.raises(InvalidTicketTransition) as too_early:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert too_early.value == InvalidTicketTransition("open", "complete")
    assert await _state(shop) == before
    # Approved and never sent back: the clock closes it; nothing came back to restock.
    await tickets.approve_ticket(shop, STAFF, code, now=NOW)
    async with shop.database.write() as session:
        await session.execute(
            update(Ticket).where(Ticket.code == code).values(status="closed", closed_at=NOW)
        )
    with pytest.raises(InvalidTicketTransition) as closed:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert closed.value == InvalidTicketTransition("closed", "complete")


async def test_card_keys_are_never_restocked(shop: ShopContext) -> None:
    """A card-key order never reaches a restock: its 退货 is refused when it is opened
    (delivered keys cannot be sent back), and nothing changes."""
    async with shop.database.write() as session:
        item, _ = await catalog.create_item(session, shop.shop_id, "会员卡", PRICE, 0)
    ref = VariantRef(item.id or 0)
    await card_keys.set_virtual(shop, STAFF, ref.item_id, True)
    await card_keys.import_keys(shop, OWNER, ref, "KEY-AAAA-0001\nKEY-AAAA-0002", NOW)
    await buying.buy_now(shop, CUSTOMER, ref, 1, now=NOW - timedelta(hours=2))
    placed = await buying.confirm_summary(shop, CUSTOMER, now=NOW - timedelta(hours=2))
    assert isinstance(placed, buying.OrderPlaced)
    order_code = placed.order.code
    await record_payment(
        shop,
        Actor("owner", OWNER_ID),
        order_code,
        provider="manual",
        reference=manual_reference(order_code),
        amount_fen=None,
        now=NOW - timedelta(hours=2),
    )
    before = await _state(shop)
    with pytest.raises(TicketNotAllowed) as refused:
        await _return_back(shop, order_code, sent=False)
    assert refused.value.why == TicketRefusal.VIRTUAL
    assert await _state(shop) == before


async def test_lines_whose_item_became_card_keys_are_skipped(shop: ShopContext) -> None:
    cup, card = await _items(shop, 10, 1)
    order_code = await _shipped(shop, [(cup, 1), (card, 1)])
    code = await _return_back(shop, order_code)
    # Sold out and switched to card keys since (its stock is its unused keys now).
    async with shop.database.write() as session:
        variant = await session.get(Variant, card)
        assert variant is not None
        await session.execute(update(Item).where(Item.id == variant.item_id).values(virtual=True))
    decision = await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    names = await _item_names(shop)
    assert decision.restock == aftersales.Restock(
        [aftersales.RestockedLine(names[cup], 1, 10)], [names[card]]
    )
    assert await _variants(shop, cup, card) == [(10, 0), (0, 1)]


async def test_only_card_key_lines_left_is_refused(shop: ShopContext) -> None:
    [card] = await _items(shop, 1)
    order_code = await _shipped(shop, [(card, 1)])
    code = await _return_back(shop, order_code)
    async with shop.database.write() as session:
        variant = await session.get(Variant, card)
        assert variant is not None
        await session.execute(update(Item).where(Item.id == variant.item_id).values(virtual=True))
    before = await _state(shop)
    with pytest.raises(RestockRefused) as refused:
        await tickets.complete_ticket(shop, STAFF, code, restock=True, now=NOW)
    assert refused.value == RestockRefused(RestockRefusal.VIRTUAL, code)
    assert await _state(shop) == before
