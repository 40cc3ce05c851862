"""Use cases of a customer buying (services/usecases/buying.py) on a real temp shop: their
results, the rows and order events they write, the notices they queue, the draft index
they keep in step, and their main refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from config import ShopSettings
from models.tables import (
    CheckoutDraft,
    CheckoutDraftLine,
    DraftSource,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OutboxMessage,
    PayType,
    Shop,
)
from services.actors import Caller
from services.addresses import AddressSnapshot
from services.catalog import VariantRef
from services.context import PendingDraft, ShopContext
from services.errors import (
    AddressNotFound,
    CartEmpty,
    InvalidTransition,
    ItemUnavailable,
    NotInCart,
    OrderNotFound,
    OutOfStock,
    PaymentGatewayError,
)
from services.media import store_image
from services.order_rules import Mode
from services.reviews import AlreadyReviewed
from services.staff import Role
from services.usecases import buying
from services.usecases.buying import NextStep
from services.usecases.epay import PaymentLink
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID
from tests.plugins.helpers import (
    HOME,
    OFFICE,
    PROXY_VARIABLES,
    add_staff,
    attempts_of,
    delist,
    epay_settings,
    get_order_row,
    orders_of,
    outbox_rows,
    pay_order,
    png_bytes,
    rows_of,
    save_address,
    seed_demo,
    seed_order,
    set_order_fields,
    set_stock,
    stock_of,
    variant_id_of,
)
from tools.fake_epay import FakeEpay

PRIVATE = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
IN_GROUP = Caller(CUSTOMER_ID, GROUP_ID, Role.CUSTOMER)
OTHER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)  # the default confirm timeout
BEANS_500G = VariantRef(1, 2)  # 云南小粒咖啡豆（500g） ¥109.00, stock 12
COLD_BREW = VariantRef(2)  # 冷萃咖啡液 ¥39.90, stock 50


@pytest.fixture(scope="module")
def fake_epay() -> Iterator[FakeEpay]:
    server = FakeEpay(retry_delays=(0.0,))
    with server.running():
        yield server


@pytest.fixture
def settings(settings: ShopSettings, request: pytest.FixtureRequest) -> ShopSettings:
    """conftest's settings; for a test that takes `epay`, PAYMENT_PROVIDER=epay on the
    fake gateway (the shop then opens with its gateway client)."""
    if "epay" not in request.fixturenames:
        return settings
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return epay_settings(settings, request.getfixturevalue("fake_epay").url)


@pytest.fixture
def epay(shop: ShopContext, fake_epay: FakeEpay) -> FakeEpay:
    assert shop.payment_gateway is not None
    return fake_epay


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    await seed_demo(shop_context)
    await add_staff(shop_context, STAFF_ID)
    return shop_context


def text_of(row: OutboxMessage) -> str:
    return "".join(s["data"]["text"] for s in json.loads(row.segments) if s["type"] == "text")


async def notices_by_key(shop: ShopContext) -> dict[str, tuple[str, int, str]]:
    """dedupe key → (target type, target id, text) of every queued notice."""
    return {
        row.dedupe_key: (row.target_type, row.target_id, text_of(row))
        for row in await outbox_rows(shop)
    }


async def actions_of(shop: ShopContext, code: str) -> list[tuple[str, str, int | None]]:
    """(action, actor, actor id) of the order's events, oldest first."""
    order = await get_order_row(shop, code)
    return [
        (e.action, e.actor, e.actor_id)
        for e in await rows_of(shop, OrderEvent)
        if e.order_id == order.id
    ]


async def draft_rows(shop: ShopContext) -> list[tuple[int | None, int, DraftSource, bool]]:
    """(group, user, source, awaiting an address) of every stored summary."""
    return [
        (d.group_id, d.user_id, d.source, d.awaiting_address)
        for d in await rows_of(shop, CheckoutDraft)
    ]


async def draft_line_rows(shop: ShopContext) -> list[tuple[int, int, int, int]]:
    """(position, variant, quantity, unit price shown) of every summary line."""
    from sqlalchemy import select

    async with shop.database.read() as session:
        rows = await session.execute(
            select(CheckoutDraftLine).order_by(
                CheckoutDraftLine.draft_id,  # type: ignore[arg-type]
                CheckoutDraftLine.position,  # type: ignore[arg-type]
            )
        )
        return [(r.position, r.variant_id, r.quantity, r.unit_price_fen) for r in rows.scalars()]


# --- the cart -------------------------------------------------------------------------


async def test_the_cart_adds_merges_lists_removes_and_clears(shop: ShopContext) -> None:
    added = await buying.add_to_cart(shop, PRIVATE, VariantRef(1, 2), 2)
    assert (str(added.ref), added.item.name, added.variant.name, added.quantity) == (
        "1-2",
        "云南小粒咖啡豆",
        "500g",
        2,
    )
    assert (await buying.add_to_cart(shop, PRIVATE, BEANS_500G, 1)).quantity == 3
    await buying.add_to_cart(shop, PRIVATE, COLD_BREW, 1)
    await buying.add_to_cart(shop, OTHER, COLD_BREW, 4)
    views = await buying.view_cart(shop, PRIVATE)
    assert [(str(v.ref), v.line.quantity, v.subtotal_fen) for v in views] == [
        ("1-2", 3, 32700),
        ("2-1", 1, 3990),
    ]
    removed = await buying.remove_from_cart(shop, PRIVATE, BEANS_500G)
    assert str(removed.ref) == "1-2"
    with pytest.raises(NotInCart):
        await buying.remove_from_cart(shop, PRIVATE, BEANS_500G)
    assert await buying.clear_cart(shop, PRIVATE) == 1
    assert await buying.clear_cart(shop, PRIVATE) == 0
    assert [v.line.quantity for v in await buying.view_cart(shop, OTHER)] == [4]
    assert await outbox_rows(shop) == []


# --- starting a checkout ----------------------------------------------------------------


async def test_buy_now_shows_the_summary_and_indexes_it(shop: ShopContext) -> None:
    await save_address(shop, CUSTOMER_ID)
    step = await buying.buy_now(shop, PRIVATE, BEANS_500G, 2, " 周末送 ", now=NOW)
    assert step.next_step is NextStep.CONFIRM
    assert step.summary is not None
    assert step.summary.total_fen == 21800
    assert step.summary.address == AddressSnapshot(*HOME)
    assert step.summary.draft.remark == "周末送"
    assert shop.drafts.get(None, CUSTOMER_ID) == PendingDraft(NOW + WINDOW, False)
    assert shop.drafts.get(GROUP_ID, CUSTOMER_ID) is None
    assert await draft_rows(shop) == [(None, CUSTOMER_ID, DraftSource.BUY, False)]
    beans = await variant_id_of(shop, 1, 2)
    assert await draft_line_rows(shop) == [(1, beans, 2, 10900)]
    # Nothing is reserved or told before 确认.
    assert await stock_of(shop, 1, 2) == 12
    assert await orders_of(shop) == []
    assert await outbox_rows(shop) == []
    # Refused: more than there is (and the summary shown before stays).
    with pytest.raises(OutOfStock):
        await buying.buy_now(shop, PRIVATE, BEANS_500G, 13, now=NOW)
    assert len(await draft_rows(shop)) == 1


async def test_buy_now_again_replaces_that_chats_summary_only(shop: ShopContext) -> None:
    # /下单 deletes an earlier summary only when its read found one in this chat (issue
    # 16): one in another chat neither counts nor goes, one in this chat is replaced.
    await save_address(shop, CUSTOMER_ID)
    await buying.buy_now(shop, IN_GROUP, COLD_BREW, 1, now=NOW)
    await buying.buy_now(shop, PRIVATE, COLD_BREW, 1, now=NOW)
    await buying.buy_now(shop, PRIVATE, BEANS_500G, 3, now=NOW)
    assert sorted(await draft_rows(shop), key=lambda row: row[0] or 0) == [
        (None, CUSTOMER_ID, DraftSource.BUY, False),
        (GROUP_ID, CUSTOMER_ID, DraftSource.BUY, False),
    ]
    cold_brew, beans = await variant_id_of(shop, 2, 1), await variant_id_of(shop, 1, 2)
    assert sorted(await draft_line_rows(shop)) == sorted(
        [(1, cold_brew, 1, 3990), (1, beans, 3, 10900)]
    )


async def test_buy_now_without_an_address(shop: ShopContext) -> None:
    # Privately, the summary waits for an address line.
    step = await buying.buy_now(shop, PRIVATE, COLD_BREW, 1, now=NOW)
    assert step.next_step is NextStep.GIVE_ADDRESS
    assert step.summary is not None and step.summary.address is None
    assert shop.drafts.get(None, CUSTOMER_ID) == PendingDraft(NOW + WINDOW, True)
    # In a group no address is ever collected, and no summary is kept: not even one
    # shown there earlier, before the address was deleted.
    await save_address(shop, CUSTOMER_ID)
    assert (await buying.buy_now(shop, IN_GROUP, COLD_BREW, 1, now=NOW)).next_step is (
        NextStep.CONFIRM
    )
    await buying.delete_address(shop, PRIVATE, 1)
    step = await buying.buy_now(shop, IN_GROUP, COLD_BREW, 2, now=NOW)
    assert step == buying.CheckoutStep(NextStep.ADD_ADDRESS_PRIVATELY)
    assert shop.drafts.get(GROUP_ID, CUSTOMER_ID) is None
    assert await draft_rows(shop) == [(None, CUSTOMER_ID, DraftSource.BUY, True)]


async def test_check_out_cart_takes_the_available_lines(shop: ShopContext) -> None:
    await save_address(shop, CUSTOMER_ID)
    with pytest.raises(CartEmpty):
        await buying.check_out_cart(shop, IN_GROUP, now=NOW)
    await buying.add_to_cart(shop, PRIVATE, BEANS_500G, 2)
    await buying.add_to_cart(shop, PRIVATE, COLD_BREW, 3)
    await set_stock(shop, 2, 1, 1)  # 冷萃 can no longer be had 3 times: skipped
    step = await buying.check_out_cart(shop, IN_GROUP, "放门口", now=NOW)
    assert step.next_step is NextStep.CONFIRM
    assert step.summary is not None
    assert [(line.item.name, line.quantity) for line in step.summary.lines] == [
        ("云南小粒咖啡豆", 2)
    ]
    assert shop.drafts.get(GROUP_ID, CUSTOMER_ID) == PendingDraft(NOW + WINDOW, False)
    assert await draft_rows(shop) == [(GROUP_ID, CUSTOMER_ID, DraftSource.CART, False)]
    assert await outbox_rows(shop) == []


# --- 确认 / 取消 / the address line -------------------------------------------------------


async def test_confirm_places_the_order_tells_staff_and_uses_the_summary_up(
    shop: ShopContext,
) -> None:
    await save_address(shop, CUSTOMER_ID)
    await buying.add_to_cart(shop, PRIVATE, BEANS_500G, 2)
    await buying.add_to_cart(shop, PRIVATE, COLD_BREW, 1)
    await buying.check_out_cart(shop, IN_GROUP, now=NOW)
    placed = await buying.confirm_summary(shop, IN_GROUP, now=NOW + timedelta(minutes=1))
    assert isinstance(placed, buying.OrderPlaced)
    order = placed.order
    assert (order.status, order.total_fen, order.group_id) == ("pending_payment", 25790, GROUP_ID)
    assert await actions_of(shop, order.code) == [("created", "customer", CUSTOMER_ID)]
    text = f"新订单 订单号：{order.code}，¥257.90，顾客 {CUSTOMER_ID}（群 {GROUP_ID}），待付款。"
    assert await notices_by_key(shop) == {
        f"order:{order.code}:new:staff:{user}": ("private", user, text)
        for user in (OWNER_ID, STAFF_ID)
    }
    assert await stock_of(shop, 1, 2) == 10
    assert await buying.view_cart(shop, PRIVATE) == []  # the ordered lines left the cart
    assert await draft_rows(shop) == []
    assert await draft_line_rows(shop) == []
    assert shop.drafts.get(GROUP_ID, CUSTOMER_ID) is None
    # A second 确认 finds nothing to confirm.
    again = await buying.confirm_summary(shop, IN_GROUP, now=NOW + timedelta(minutes=1))
    assert again == buying.CheckoutStep(NextStep.START_AGAIN)
    assert len(await orders_of(shop)) == 1


async def test_confirm_refused_when_the_stock_went_discards_the_summary(
    shop: ShopContext,
) -> None:
    await save_address(shop, CUSTOMER_ID)
    await buying.buy_now(shop, PRIVATE, BEANS_500G, 3, now=NOW)
    await set_stock(shop, 1, 2, 2)
    with pytest.raises(OutOfStock):
        await buying.confirm_summary(shop, PRIVATE, now=NOW + timedelta(minutes=1))
    # In the same transaction the summary went, and the index with it; nothing else did.
    assert await draft_rows(shop) == []
    assert shop.drafts.get(None, CUSTOMER_ID) is None
    assert await orders_of(shop) == []
    assert await stock_of(shop, 1, 2) == 2
    assert await outbox_rows(shop) == []


async def test_confirm_after_the_window_starts_again(shop: ShopContext) -> None:
    await save_address(shop, CUSTOMER_ID)
    await buying.buy_now(shop, PRIVATE, COLD_BREW, 1, now=NOW)
    late = await buying.confirm_summary(shop, PRIVATE, now=NOW + WINDOW)
    assert late == buying.CheckoutStep(NextStep.START_AGAIN)
    assert await draft_rows(shop) == []
    assert shop.drafts.get(None, CUSTOMER_ID) is None
    assert await orders_of(shop) == []


async def test_confirm_while_waiting_for_an_address(shop: ShopContext) -> None:
    await buying.buy_now(shop, PRIVATE, COLD_BREW, 2, now=NOW)
    # Still none: asked again.
    step = await buying.confirm_summary(shop, PRIVATE, now=NOW + timedelta(minutes=1))
    assert step.next_step is NextStep.GIVE_ADDRESS
    # Added by /地址 添加 meanwhile: the summary with it, a fresh window to confirm.
    await buying.add_address(shop, PRIVATE, AddressSnapshot(*OFFICE))
    later = NOW + timedelta(minutes=2)
    step = await buying.confirm_summary(shop, PRIVATE, now=later)
    assert isinstance(step, buying.CheckoutStep) and step.next_step is NextStep.CONFIRM
    assert step.summary is not None and step.summary.address == AddressSnapshot(*OFFICE)
    assert shop.drafts.get(None, CUSTOMER_ID) == PendingDraft(later + WINDOW, False)
    assert await draft_rows(shop) == [(None, CUSTOMER_ID, DraftSource.BUY, False)]
    assert await orders_of(shop) == []
    placed = await buying.confirm_summary(shop, PRIVATE, now=later)
    assert isinstance(placed, buying.OrderPlaced)
    assert placed.order.receiver_address == OFFICE[2]


async def test_discard_summary(shop: ShopContext) -> None:
    await save_address(shop, CUSTOMER_ID)
    await buying.buy_now(shop, PRIVATE, COLD_BREW, 1, now=NOW)
    await buying.buy_now(shop, IN_GROUP, COLD_BREW, 1, now=NOW)
    await buying.discard_summary(shop, IN_GROUP)
    assert await draft_rows(shop) == [(None, CUSTOMER_ID, DraftSource.BUY, False)]
    assert shop.drafts.get(GROUP_ID, CUSTOMER_ID) is None
    assert shop.drafts.get(None, CUSTOMER_ID) is not None
    await buying.discard_summary(shop, IN_GROUP)  # nothing left there: harmless


async def test_give_address_saves_it_and_shows_the_summary(shop: ShopContext) -> None:
    # Refused: no summary waiting (and the address is not saved).
    none_waiting = await buying.give_address(shop, PRIVATE, AddressSnapshot(*HOME), now=NOW)
    assert none_waiting == buying.CheckoutStep(NextStep.START_AGAIN)
    assert await buying.list_addresses(shop, PRIVATE) == []

    await buying.buy_now(shop, PRIVATE, COLD_BREW, 2, now=NOW)
    later = NOW + timedelta(minutes=1)
    step = await buying.give_address(shop, PRIVATE, AddressSnapshot(*HOME), now=later)
    assert step.next_step is NextStep.CONFIRM
    assert step.summary is not None and step.summary.address == AddressSnapshot(*HOME)
    assert [(a.name, a.is_default) for a in await buying.list_addresses(shop, PRIVATE)] == [
        ("张三", True)
    ]
    assert shop.drafts.get(None, CUSTOMER_ID) == PendingDraft(later + WINDOW, False)
    assert await outbox_rows(shop) == []


async def test_give_address_when_the_goods_went_keeps_the_address(shop: ShopContext) -> None:
    await buying.buy_now(shop, PRIVATE, COLD_BREW, 2, now=NOW)
    await delist(shop, 2)
    with pytest.raises(ItemUnavailable):
        await buying.give_address(shop, PRIVATE, AddressSnapshot(*HOME), now=NOW)
    assert len(await buying.list_addresses(shop, PRIVATE)) == 1
    assert await draft_rows(shop) == []
    assert shop.drafts.get(None, CUSTOMER_ID) is None


# --- addresses ----------------------------------------------------------------------------


async def test_addresses_add_default_delete(shop: ShopContext) -> None:
    assert await buying.add_address(shop, IN_GROUP, AddressSnapshot(*HOME)) is None
    first = await buying.add_address(shop, PRIVATE, AddressSnapshot(*HOME))
    second = await buying.add_address(shop, PRIVATE, AddressSnapshot(*OFFICE))
    assert first is not None and second is not None
    assert (first.number, first.address.is_default) == (1, True)
    assert (second.number, second.address.is_default) == (2, False)
    assert (await buying.set_default_address(shop, IN_GROUP, 2)).detail == OFFICE[2]
    assert [a.is_default for a in await buying.list_addresses(shop, PRIVATE)] == [False, True]
    assert (await buying.delete_address(shop, PRIVATE, 2)).detail == OFFICE[2]
    assert [(a.detail, a.is_default) for a in await buying.list_addresses(shop, PRIVATE)] == [
        (HOME[2], True)
    ]
    with pytest.raises(AddressNotFound):
        await buying.set_default_address(shop, PRIVATE, 3)
    assert await buying.list_addresses(shop, OTHER) == []


# --- my orders --------------------------------------------------------------------------


async def test_my_orders_and_one_order(shop: ShopContext) -> None:
    mine = await seed_order(shop, CUSTOMER_ID, ((1, 2, 1),), at=NOW)
    paid = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),), at=NOW + timedelta(minutes=1))
    await pay_order(shop, paid)
    theirs = await seed_order(shop, OTHER_CUSTOMER_ID, at=NOW)
    listing = await buying.my_orders(shop, PRIVATE)
    assert [(o.code, [line.quantity for line in lines]) for o, lines in listing.rows] == [
        (paid, [2]),
        (mine, [1]),
    ]
    assert (listing.total, listing.page) == (2, 1)
    only_paid = await buying.my_orders(shop, PRIVATE, OrderStatus.PAID)
    assert [o.code for o, _ in only_paid.rows] == [paid]
    # Staff see their own orders here too (/订单列表 lists everyone's).
    assert (await buying.my_orders(shop, STAFF)).total == 0

    view = await buying.order_detail(shop, PRIVATE, paid.lower())
    assert view.order.code == paid
    assert [e.action for e in view.detail.events] == ["created", "paid"]
    assert view.tracking is None
    assert (await buying.order_detail(shop, STAFF, theirs)).order.user_id == OTHER_CUSTOMER_ID
    with pytest.raises(OrderNotFound):
        await buying.order_detail(shop, PRIVATE, theirs)


async def test_payment_instructions(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 1),))
    image = png_bytes()
    path = store_image(image, shop.data_dir)
    async with shop.database.write() as session:
        await session.execute(
            update(Shop).values(payment_text="微信转账，备注订单号", payment_qr_path=path)
        )
    how = await buying.payment_instructions(shop, PRIVATE, code)
    assert (how.order.code, how.payable, how.text, how.qr_image) == (
        code,
        True,
        "微信转账，备注订单号",
        image,
    )
    with pytest.raises(OrderNotFound):
        await buying.payment_instructions(shop, OTHER, code)
    await pay_order(shop, code)
    paid = await buying.payment_instructions(shop, PRIVATE, code)
    assert (paid.payable, paid.text, paid.qr_image) == (False, "", None)


async def test_pay_order_with_the_manual_provider_gives_the_instructions(
    shop: ShopContext,
) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 1),))
    async with shop.database.write() as session:
        await session.execute(update(Shop).values(payment_text="微信转账，备注订单号"))
    assert shop.payment_gateway is None
    how = await buying.pay_order(shop, PRIVATE, code, PayType.WXPAY)  # the method plays no part
    assert isinstance(how, buying.PaymentInstructions)
    assert (how.order.code, how.payable, how.text) == (code, True, "微信转账，备注订单号")
    assert await attempts_of(shop, code) == []


async def test_pay_order_online_makes_a_payment_link(shop: ShopContext, epay: FakeEpay) -> None:
    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),))
    link = await buying.pay_order(shop, PRIVATE, code)
    assert isinstance(link, PaymentLink)
    order = await get_order_row(shop, code)
    assert (link.order_code, link.out_trade_no, link.pay_type, link.amount_fen) == (
        code,
        f"{code}-1",
        PayType.ALIPAY,
        7980,
    )
    assert link.expires_at == order.expires_at and not link.reused
    assert link.pay_url.startswith(epay.url) and link.qr_png.startswith(b"\x89PNG")
    [attempt] = await attempts_of(shop, code)
    assert (attempt.state, attempt.amount_fen) == ("live", 7980)
    # Staff may ask for any order (the same attempt is shown); nothing is queued, no event.
    by_staff = await buying.pay_order(shop, STAFF, code, PayType.ALIPAY)
    assert isinstance(by_staff, PaymentLink) and by_staff.reused
    assert await outbox_rows(shop) == []
    assert [a for a, _, _ in await actions_of(shop, code)] == ["created"]
    with pytest.raises(OrderNotFound):
        await buying.pay_order(shop, OTHER, code)


async def test_pay_order_online_refusals(shop: ShopContext, epay: FakeEpay) -> None:
    paid = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, paid)
    cancelled = await seed_order(shop, CUSTOMER_ID)
    await set_order_fields(shop, cancelled, status="cancelled")
    for code in (paid, cancelled):
        how = await buying.pay_order(shop, PRIVATE, code, PayType.WXPAY)
        assert isinstance(how, buying.PaymentInstructions) and not how.payable
        assert await attempts_of(shop, code) == []
    # PAYMENT_PROVIDER=epay, but no gateway (a demo whose fake gateway is not running).
    gateway, shop.payment_gateway = shop.payment_gateway, None
    try:
        with pytest.raises(PaymentGatewayError):
            await buying.pay_order(shop, PRIVATE, await seed_order(shop, CUSTOMER_ID))
    finally:
        shop.payment_gateway = gateway


async def test_amending_quantities_voids_the_live_payment_attempts(
    shop: ShopContext, epay: FakeEpay
) -> None:
    await save_address(shop, CUSTOMER_ID, OFFICE)
    code = await seed_order(shop, CUSTOMER_ID, ((2, 1, 1),))
    first = await buying.pay_order(shop, PRIVATE, code)
    assert isinstance(first, PaymentLink)
    # Address, remark, and a quantity set to what it was: the total stays, so does the link.
    await buying.amend_order(shop, PRIVATE, code, buying.NewAddress(1), now=NOW)
    await buying.amend_order(shop, PRIVATE, code, buying.NewRemark("下午送"), now=NOW)
    await buying.amend_order(shop, PRIVATE, code, buying.NewQuantity(COLD_BREW, 1), now=NOW)
    assert [a.state for a in await attempts_of(shop, code)] == ["live"]
    await buying.amend_order(shop, PRIVATE, code, buying.NewQuantity(COLD_BREW, 3), now=NOW)
    [voided] = await attempts_of(shop, code)
    assert (voided.state, voided.checked_at, voided.next_check_at) == ("voided", NOW, None)
    assert "quantity_changed" in [a for a, _, _ in await actions_of(shop, code)]
    second = await buying.pay_order(shop, PRIVATE, code)
    assert isinstance(second, PaymentLink)
    assert (second.out_trade_no, second.amount_fen, second.reused) == (f"{code}-2", 11970, False)


# --- amend, cancel, review ------------------------------------------------------------------


async def test_amend_an_unpaid_order_at_once(shop: ShopContext) -> None:
    await save_address(shop, CUSTOMER_ID, OFFICE)
    code = await seed_order(shop, CUSTOMER_ID, ((1, 2, 3), (2, 1, 1)))
    moved = await buying.amend_order(shop, PRIVATE, code, buying.NewAddress(1), now=NOW)
    assert (moved.mode, moved.order.receiver_address) == (Mode.DIRECT, OFFICE[2])
    fewer = await buying.amend_order(
        shop, PRIVATE, code, buying.NewQuantity(BEANS_500G, 1), now=NOW
    )
    assert fewer.mode is Mode.DIRECT
    assert fewer.line is not None and (fewer.line.quantity, fewer.old_quantity) == (1, 3)
    assert fewer.order.total_fen == 10900 + 3990
    assert await stock_of(shop, 1, 2) == 11
    noted = await buying.amend_order(shop, PRIVATE, code, buying.NewRemark("下午送"), now=NOW)
    assert (noted.mode, noted.order.remark) == (Mode.DIRECT, "下午送")
    assert [a for a, _, _ in await actions_of(shop, code)] == [
        "created",
        "address_changed",
        "quantity_changed",
        "remark_changed",
    ]
    assert await outbox_rows(shop) == []
    with pytest.raises(OrderNotFound):
        await buying.amend_order(shop, OTHER, code, buying.NewRemark("别人的"), now=NOW)


async def test_amend_a_paid_order_asks_staff(shop: ShopContext) -> None:
    await save_address(shop, CUSTOMER_ID, OFFICE)
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID)
    await pay_order(shop, code)
    remark = await buying.amend_order(shop, IN_GROUP, code, buying.NewRemark("改备注"), now=NOW)
    address = await buying.amend_order(shop, PRIVATE, code, buying.NewAddress(1), now=NOW)
    assert (remark.mode, address.mode) == (Mode.REQUEST, Mode.REQUEST)
    assert [(r.kind, r.status) for r in await rows_of(shop, OrderRequest)] == [
        ("remark", "pending"),
        ("address", "pending"),
    ]
    stamp = NOW.timestamp()
    handle = f"。处理：/审核 {code} 同意 或 /审核 {code} 拒绝 <原因>"
    assert await notices_by_key(shop) == {
        f"order:{code}:request:{kind}:{stamp}:staff:{user}": (
            "private",
            user,
            f"订单号：{code} 顾客申请{name}{handle}",
        )
        for kind, name in (("remark", "修改备注"), ("address", "修改地址"))
        for user in (OWNER_ID, STAFF_ID)
    }
    # Quantities change only while unpaid.
    with pytest.raises(InvalidTransition):
        await buying.amend_order(shop, PRIVATE, code, buying.NewQuantity(COLD_BREW, 2), now=NOW)


async def test_cancel_order(shop: ShopContext) -> None:
    unpaid = await seed_order(shop, CUSTOMER_ID, ((2, 1, 2),))
    outcome = await buying.cancel_order(shop, PRIVATE, unpaid, "拍错了", now=NOW)
    assert (outcome.mode, outcome.order.status) == (Mode.DIRECT, "cancelled")
    assert await stock_of(shop, 2) == 50
    assert await actions_of(shop, unpaid) == [
        ("created", "customer", CUSTOMER_ID),
        ("cancelled", "customer", CUSTOMER_ID),
    ]
    assert await outbox_rows(shop) == []

    paid = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, paid)
    outcome = await buying.cancel_order(shop, PRIVATE, paid, "不想要了", now=NOW)
    assert (outcome.mode, outcome.order.status) == (Mode.REQUEST, "paid")
    text = (
        f"订单号：{paid} 顾客申请取消订单（已付款），原因：不想要了。"
        f"处理：/审核 {paid} 同意 或 /审核 {paid} 拒绝 <原因>"
    )
    assert await notices_by_key(shop) == {
        f"order:{paid}:request:cancel:{NOW.timestamp()}:staff:{user}": ("private", user, text)
        for user in (OWNER_ID, STAFF_ID)
    }
    with pytest.raises(OrderNotFound):
        await buying.cancel_order(shop, OTHER, paid, now=NOW)
    # Staff cancel customers' orders elsewhere: here it is the caller's own only.
    with pytest.raises(OrderNotFound):
        await buying.cancel_order(shop, STAFF, paid, now=NOW)


async def test_review_order(shop: ShopContext) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    with pytest.raises(InvalidTransition):
        await buying.review_order(shop, PRIVATE, code, 5, now=NOW)
    await set_order_fields(shop, code, status="completed")
    reviewed = await buying.review_order(shop, PRIVATE, code, 4, "不错", now=NOW)
    assert (reviewed.order.code, reviewed.review.rating, reviewed.review.text) == (code, 4, "不错")
    assert reviewed.review.created_at == NOW
    with pytest.raises(AlreadyReviewed):
        await buying.review_order(shop, PRIVATE, code, 5, now=NOW)
    with pytest.raises(OrderNotFound):
        await buying.review_order(shop, OTHER, code, 5, now=NOW)
    assert await outbox_rows(shop) == []
