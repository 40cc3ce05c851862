"""Merchant safeguards (services/safeguards.py, services/usecases/safeguards.py) on a real
temp shop: bans and their events, the refusals a banned customer meets in every use case
that orders, pays or opens a ticket, the unpaid-order cap, purchase limits and low-stock
alerts, with the races that must not let two orders past a limit or announce one
crossing twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from config import ShopSettings
from models.tables import Ban, BanEvent, OutboxMessage, TicketKind, VariantGuard
from services import orders, safeguards
from services.actors import Actor, Caller
from services.catalog import StockChange, VariantRef
from services.context import ShopContext
from services.errors import ItemNotFound, OutOfStock
from services.safeguards import (
    AlreadyBanned,
    Banned,
    CannotBan,
    NotBanned,
    PurchaseLimitReached,
    TooManyUnpaidOrders,
    Unbannable,
)
from services.staff import Role
from services.usecases import buying, catalog, catalog_admin, tickets
from services.usecases import safeguards as guard
from services.usecases.buying import NewQuantity, OrderPlaced
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.plugins.helpers import (
    add_staff,
    get_order_row,
    orders_of,
    outbox_rows,
    pay_order,
    rows_of,
    save_address,
    seed_demo,
    seed_order,
    set_stock,
    stock_of,
    variant_id_of,
)

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
CUSTOMER_IN_GROUP = Caller(CUSTOMER_ID, GROUP_ID, Role.CUSTOMER)
OTHER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
BEANS_500G = VariantRef(1, 2)  # 云南小粒咖啡豆（500g） ¥109.00, stock 12
COLD_BREW = VariantRef(2)  # 冷萃咖啡液 ¥39.90, stock 50
DRIP = VariantRef(3)  # 手冲滤杯套装 ¥128.00, stock 8


@pytest.fixture
def settings(settings: ShopSettings, request: pytest.FixtureRequest) -> ShopSettings:
    """conftest's settings, changed by a test's `safeguard_settings` parameter if any."""
    changes = getattr(request, "param", None) or {}
    return settings.model_copy(update=changes)


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    await seed_demo(shop_context)
    await add_staff(shop_context, STAFF_ID)
    await save_address(shop_context, CUSTOMER_ID)
    await save_address(shop_context, OTHER_CUSTOMER_ID)
    return shop_context


def with_settings(**changes: object) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [changes], indirect=True)


async def place(
    shop: ShopContext, caller: Caller, ref: VariantRef, quantity: int = 1, now: datetime = NOW
) -> str:
    """/下单 then 确认 through the use cases; returns the order's code."""
    await buying.buy_now(shop, caller, ref, quantity, now=now)
    placed = await buying.confirm_summary(shop, caller, now=now)
    assert isinstance(placed, OrderPlaced)
    return placed.order.code


def text_of(row: OutboxMessage) -> str:
    return "".join(s["data"]["text"] for s in json.loads(row.segments) if s["type"] == "text")


async def guard_rows(shop: ShopContext) -> list[VariantGuard]:
    async with shop.database.read() as session:
        found = await session.execute(select(VariantGuard).order_by(VariantGuard.variant_id))  # type: ignore[arg-type]
        return list(found.scalars())


async def low_stock_notices(shop: ShopContext) -> list[tuple[str, int, str]]:
    """(dedupe key, target, text) of the queued low-stock notices."""
    return [
        (row.dedupe_key, row.target_id, text_of(row))
        for row in await outbox_rows(shop)
        if row.dedupe_key.startswith("lowstock:")
    ]


# --- the blacklist --------------------------------------------------------------------


async def test_ban_records_who_when_why_and_lists_unpaid_orders(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    outcome = await guard.ban_customer(shop, STAFF, CUSTOMER_ID, " 恶意占库存 ", now=NOW)
    assert (outcome.ban.user_id, outcome.ban.reason, outcome.ban.banned_by) == (
        CUSTOMER_ID,
        "恶意占库存",
        STAFF_ID,
    )
    assert outcome.ban.banned_at == NOW
    assert outcome.unpaid_orders == (code,)
    [event] = await rows_of(shop, BanEvent)
    assert (event.user_id, event.action, event.actor, event.actor_id, event.reason, event.at) == (
        CUSTOMER_ID,
        "banned",
        "staff",
        STAFF_ID,
        "恶意占库存",
        NOW,
    )
    assert await outbox_rows(shop) == []  # nobody is told


async def test_ban_refusals(shop: ShopContext) -> None:
    with pytest.raises(CannotBan) as owner:
        await guard.ban_customer(shop, STAFF, OWNER_ID, now=NOW)
    assert owner.value.why is Unbannable.OWNER
    with pytest.raises(CannotBan) as member:
        await guard.ban_customer(shop, OWNER, STAFF_ID, now=NOW)
    assert member.value.why is Unbannable.STAFF
    await guard.ban_customer(shop, OWNER, CUSTOMER_ID, now=NOW)
    with pytest.raises(AlreadyBanned):
        await guard.ban_customer(shop, STAFF, CUSTOMER_ID, "再来一次", now=NOW)
    with pytest.raises(NotBanned):
        await guard.unban_customer(shop, STAFF, OTHER_CUSTOMER_ID, now=NOW)
    # Only the one ban happened.
    assert [(e.user_id, e.action) for e in await rows_of(shop, BanEvent)] == [
        (CUSTOMER_ID, "banned")
    ]


async def test_unban_lifts_it_and_the_history_stays(shop: ShopContext) -> None:
    await guard.ban_customer(shop, OWNER, CUSTOMER_ID, "刷单", now=NOW)
    await guard.ban_customer(shop, STAFF, OTHER_CUSTOMER_ID, now=NOW + timedelta(minutes=1))
    assert [b.user_id for b in await guard.list_bans(shop)] == [OTHER_CUSTOMER_ID, CUSTOMER_ID]
    lifted = await guard.unban_customer(shop, STAFF, CUSTOMER_ID, now=NOW + timedelta(hours=1))
    assert (lifted.user_id, lifted.reason, lifted.banned_by) == (CUSTOMER_ID, "刷单", OWNER_ID)
    assert [b.user_id for b in await guard.list_bans(shop)] == [OTHER_CUSTOMER_ID]
    assert [(e.user_id, e.action, e.actor, e.actor_id) for e in await rows_of(shop, BanEvent)] == [
        (CUSTOMER_ID, "banned", "owner", OWNER_ID),
        (OTHER_CUSTOMER_ID, "banned", "staff", STAFF_ID),
        (CUSTOMER_ID, "unbanned", "staff", STAFF_ID),
    ]
    # Unbanned: orders again.
    assert await place(shop, CUSTOMER, COLD_BREW)


async def test_a_banned_customer_browses_but_cannot_order_pay_or_open_tickets(
    shop: ShopContext,
) -> None:
    unpaid = await seed_order(shop, CUSTOMER_ID)
    paid = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, paid)
    opened = await tickets.open_ticket(shop, CUSTOMER, paid, TicketKind.COMPLAINT, "破损", now=NOW)
    await buying.buy_now(shop, CUSTOMER, COLD_BREW, 1, now=NOW)  # a summary from before
    await guard.ban_customer(shop, STAFF, CUSTOMER_ID, now=NOW)
    refused = [
        buying.add_to_cart(shop, CUSTOMER, COLD_BREW, 1),
        buying.buy_now(shop, CUSTOMER_IN_GROUP, COLD_BREW, 1, now=NOW),
        buying.check_out_cart(shop, CUSTOMER, now=NOW),
        buying.confirm_summary(shop, CUSTOMER, now=NOW),
        buying.pay_order(shop, CUSTOMER, unpaid),
        buying.amend_order(shop, CUSTOMER, unpaid, NewQuantity(VariantRef(2), 2), now=NOW),
        tickets.open_ticket(shop, CUSTOMER, paid, TicketKind.REFUND, "不想要了", now=NOW),
        tickets.leave_message(shop, CUSTOMER, opened.ticket.code, "还在吗", now=NOW),
    ]
    for attempt in refused:
        with pytest.raises(Banned):
            await attempt
    # The refused 确认 used the summary up: nothing was ordered, nothing is waiting.
    assert len(await orders_of(shop, CUSTOMER_ID)) == 2
    assert shop.drafts.get(None, CUSTOMER_ID) is None
    # Browsing, reading their own orders, cancelling an unpaid one all still work.
    assert (await catalog.list_items(shop)).total == 6
    assert (await catalog.item_detail(shop, CUSTOMER, 1)).detail.item.name == "云南小粒咖啡豆"
    assert (await buying.my_orders(shop, CUSTOMER)).total == 2
    await buying.cancel_order(shop, CUSTOMER, unpaid, now=NOW)
    # Someone else is not affected.
    assert await place(shop, OTHER, COLD_BREW)


# --- the unpaid-order cap -------------------------------------------------------------


async def test_the_fourth_unpaid_order_is_refused_until_one_is_paid(shop: ShopContext) -> None:
    codes = [await place(shop, CUSTOMER, COLD_BREW) for _ in range(2)]
    # A summary shown now, confirmed once the third order exists: refused at 确认 too.
    await buying.buy_now(shop, CUSTOMER_IN_GROUP, COLD_BREW, 1, now=NOW)
    codes.append(await place(shop, CUSTOMER, COLD_BREW))
    with pytest.raises(TooManyUnpaidOrders) as at_confirm:
        await buying.confirm_summary(shop, CUSTOMER_IN_GROUP, now=NOW)
    assert (at_confirm.value.limit, at_confirm.value.codes) == (3, tuple(codes))
    with pytest.raises(TooManyUnpaidOrders):
        await buying.buy_now(shop, CUSTOMER, DRIP, 1, now=NOW)
    assert len(await orders_of(shop, CUSTOMER_ID)) == 3
    assert await place(shop, OTHER, COLD_BREW)  # per customer
    await pay_order(shop, codes[0])
    assert await place(shop, CUSTOMER, DRIP)


@with_settings(max_unpaid_orders=0)
async def test_max_unpaid_orders_zero_means_no_cap(shop: ShopContext) -> None:
    for _ in range(5):
        await place(shop, CUSTOMER, COLD_BREW)
    assert len(await orders_of(shop, CUSTOMER_ID)) == 5


async def test_two_racing_orders_cannot_both_take_the_last_unpaid_slot(shop: ShopContext) -> None:
    await place(shop, CUSTOMER, COLD_BREW)
    await place(shop, CUSTOMER, COLD_BREW)
    await buying.buy_now(shop, CUSTOMER, DRIP, 1, now=NOW)
    await buying.buy_now(shop, CUSTOMER_IN_GROUP, DRIP, 1, now=NOW)
    results = await asyncio.gather(
        buying.confirm_summary(shop, CUSTOMER, now=NOW),
        buying.confirm_summary(shop, CUSTOMER_IN_GROUP, now=NOW),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["OrderPlaced", "TooManyUnpaidOrders"]
    assert len(await orders_of(shop, CUSTOMER_ID)) == 3
    assert await stock_of(shop, 3) == 7


# --- purchase limits ------------------------------------------------------------------


async def test_purchase_limit_counts_orders_not_cancelled_or_refunded(shop: ShopContext) -> None:
    view = await guard.set_purchase_limit(shop, BEANS_500G, 2, now=NOW)
    assert (view.item_id, view.position, view.purchase_limit) == (1, 2, 2)
    with pytest.raises(PurchaseLimitReached) as at_summary:
        await buying.buy_now(shop, CUSTOMER, BEANS_500G, 3, now=NOW)
    assert (at_summary.value.item_name, at_summary.value.variant_name) == ("云南小粒咖啡豆", "500g")
    assert (at_summary.value.limit, at_summary.value.bought) == (2, 0)
    first = await place(shop, CUSTOMER, BEANS_500G)
    await pay_order(shop, first)
    second = await place(shop, CUSTOMER, BEANS_500G)
    with pytest.raises(PurchaseLimitReached) as full:
        await buying.buy_now(shop, CUSTOMER, BEANS_500G, 1, now=NOW)
    assert full.value.bought == 2
    # A cancelled order gives its units back to the customer's allowance.
    await buying.cancel_order(shop, CUSTOMER, second, now=NOW)
    third = await place(shop, CUSTOMER, BEANS_500G)
    # Raising a line's quantity counts too.
    with pytest.raises(PurchaseLimitReached):
        await buying.amend_order(shop, CUSTOMER, third, NewQuantity(BEANS_500G, 2), now=NOW)
    assert (await get_order_row(shop, third)).total_fen == 10900
    assert await place(shop, OTHER, BEANS_500G, 2)  # per customer
    # 0 removes the limit.
    assert (await guard.set_purchase_limit(shop, BEANS_500G, 0, now=NOW)).purchase_limit is None
    await buying.amend_order(shop, CUSTOMER, third, NewQuantity(BEANS_500G, 2), now=NOW)


async def test_two_racing_orders_cannot_both_pass_a_purchase_limit(shop: ShopContext) -> None:
    await guard.set_purchase_limit(shop, BEANS_500G, 1, now=NOW)
    await buying.buy_now(shop, CUSTOMER, BEANS_500G, 1, now=NOW)
    await buying.buy_now(shop, CUSTOMER_IN_GROUP, BEANS_500G, 1, now=NOW)
    results = await asyncio.gather(
        buying.confirm_summary(shop, CUSTOMER, now=NOW),
        buying.confirm_summary(shop, CUSTOMER_IN_GROUP, now=NOW),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["OrderPlaced", "PurchaseLimitReached"]
    assert len(await orders_of(shop, CUSTOMER_ID)) == 1
    assert await stock_of(shop, 1, 2) == 11


async def test_a_limit_on_an_unknown_variant_is_refused(shop: ShopContext) -> None:
    with pytest.raises(ItemNotFound):
        await guard.set_purchase_limit(shop, VariantRef(99, 1), 2, now=NOW)
    assert await guard_rows(shop) == []


# --- low-stock alerts -----------------------------------------------------------------


async def test_one_notice_per_crossing_rearmed_above_the_threshold(shop: ShopContext) -> None:
    variant_id = await variant_id_of(shop, 1, 2)
    view = await guard.set_low_stock_alert(shop, BEANS_500G, 5, now=NOW)
    assert (view.own_threshold, view.threshold, view.stock, view.alerted) == (5, 5, 12, False)
    await place(shop, CUSTOMER, BEANS_500G, 3)  # 9
    assert await low_stock_notices(shop) == []
    crossing = await place(shop, OTHER, BEANS_500G, 4)  # 5: at the threshold
    notices = await low_stock_notices(shop)
    assert [(key, target) for key, target, _ in notices] == [
        (f"lowstock:{variant_id}:1:staff:{OWNER_ID}", OWNER_ID),
        (f"lowstock:{variant_id}:1:staff:{STAFF_ID}", STAFF_ID),
    ]
    assert notices[0][2] == (
        "库存预警：1-2 云南小粒咖啡豆（500g） 只剩 5 件（预警线 5）。补货：/库存 1-2 +<数量>"
    )
    await place(shop, CUSTOMER, BEANS_500G, 1)  # 4: still below, no second notice
    assert len(await low_stock_notices(shop)) == 2
    await buying.cancel_order(shop, OTHER, crossing, now=NOW)  # 8: above, re-armed
    [row] = [g for g in await guard_rows(shop) if g.variant_id == variant_id]
    assert (row.low_stock_alerted, row.low_stock_alerts) == (False, 1)
    await catalog_admin.change_stock(shop, BEANS_500G, StockChange("sub", 3))  # 5 again
    keys = [key for key, _, _ in await low_stock_notices(shop)]
    assert keys[2:] == [
        f"lowstock:{variant_id}:2:staff:{OWNER_ID}",
        f"lowstock:{variant_id}:2:staff:{STAFF_ID}",
    ]


async def test_a_threshold_set_below_the_stock_counts_as_announced(shop: ShopContext) -> None:
    view = await guard.set_low_stock_alert(shop, DRIP, 10, now=NOW)  # stock 8
    assert (view.stock, view.alerted) == (8, True)
    await place(shop, CUSTOMER, DRIP)
    assert await low_stock_notices(shop) == []
    await catalog_admin.change_stock(shop, DRIP, StockChange("set", 20))
    await place(shop, CUSTOMER, DRIP, 10)  # 10: a new crossing
    assert len(await low_stock_notices(shop)) == 2
    # 0 removes the variant's own threshold: no shop-wide one, so no alerts.
    view = await guard.set_low_stock_alert(shop, DRIP, 0, now=NOW)
    assert (view.own_threshold, view.threshold, view.alerted) == (None, 0, False)


@with_settings(low_stock_threshold=10)
async def test_the_shop_wide_threshold_applies_where_no_variant_has_its_own(
    shop: ShopContext,
) -> None:
    await guard.set_low_stock_alert(shop, COLD_BREW, 2, now=NOW)  # its own, lower
    await place(shop, CUSTOMER, COLD_BREW, 45)  # 50 → 5: above its own 2
    await place(shop, OTHER, VariantRef(5, 1), 95)  # 挂耳 100 → 5 ≤ 10
    [(key, _, text), _] = await low_stock_notices(shop)
    assert key.startswith(f"lowstock:{await variant_id_of(shop, 5, 1)}:1:")
    assert "5-1 挂耳咖啡 只剩 5 件（预警线 10）" in text
    overview = await guard.safeguards_overview(shop)
    assert overview.shop_threshold == 10
    assert [(v.item_id, v.position, v.own_threshold) for v in overview.guarded] == [(2, 1, 2)]
    # Lowest first: the sold-out 分享壶, 5-3 (3 ≤ 10), 5-1 (5), 滤杯 (8); 冷萃 (5 > 2) is fine.
    assert [(v.item_id, v.position, v.stock) for v in overview.low_stock] == [
        (4, 1, 0),
        (5, 3, 3),
        (5, 1, 5),
        (3, 1, 8),
    ]


async def test_racing_sales_announce_one_crossing_once(shop: ShopContext) -> None:
    await set_stock(shop, 2, 1, 8)
    await guard.set_low_stock_alert(shop, COLD_BREW, 5, now=NOW)
    buyers = [Caller(40_000 + n, None, Role.CUSTOMER) for n in range(6)]
    for buyer in buyers:
        await save_address(shop, buyer.user_id)
        await buying.buy_now(shop, buyer, COLD_BREW, 1, now=NOW)
    results = await asyncio.gather(
        *(buying.confirm_summary(shop, buyer, now=NOW) for buyer in buyers),
        return_exceptions=True,
    )
    assert all(isinstance(r, OrderPlaced) for r in results)
    assert await stock_of(shop, 2) == 2
    assert len(await low_stock_notices(shop)) == 2  # one crossing, owner + staff


async def test_a_refused_order_changes_no_alert_state(shop: ShopContext) -> None:
    await guard.set_low_stock_alert(shop, DRIP, 3, now=NOW)
    with pytest.raises(OutOfStock):
        await place(shop, CUSTOMER, DRIP, 9)
    assert await low_stock_notices(shop) == []
    assert await stock_of(shop, 3) == 8


async def test_after_stock_change_without_a_shop_watch(db) -> None:  # type: ignore[no-untyped-def]
    """A bare database (no ShopContext): the variant's own threshold still works; the
    notice goes to staff only, as no owners are known."""
    from services import catalog as catalog_domain
    from services import staff

    async with db.write() as session:
        _, variant = await catalog_domain.create_item(session, 1, "茶包", 1000, 6)
        await staff.add_staff(session, 1, STAFF_ID, OWNER_ID, {OWNER_ID})
        await safeguards.set_low_stock_threshold(session, variant, 5, NOW)
        await orders.reserve_stock(session, variant.id or 0, 1)
        assert await safeguards.after_stock_change(session, variant.id or 0, NOW)
        assert not await safeguards.after_stock_change(session, variant.id or 0, NOW)
    async with db.read() as session:
        rows = (await session.execute(select(OutboxMessage.target_id))).scalars().all()
    assert rows == [STAFF_ID]


async def test_a_ban_row_is_unique_per_customer(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as session:
        await safeguards.ban(
            session, 1, CUSTOMER_ID, "", Actor.of_role(Role.OWNER, OWNER_ID), {OWNER_ID}, NOW
        )
    with pytest.raises(AlreadyBanned):
        async with db.write() as session:
            await safeguards.ban(
                session, 1, CUSTOMER_ID, "", Actor.of_role(Role.STAFF, STAFF_ID), {OWNER_ID}, NOW
            )
    async with db.read() as session:
        assert len((await session.execute(select(Ban))).scalars().all()) == 1
