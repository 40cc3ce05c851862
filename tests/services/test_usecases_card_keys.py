"""The card-key use cases (services/usecases/card_keys.py) and delivery inside the one
record-payment use case, on a real temp database: results, order events, outbox rows
(the keys never in one), refusals, and races: two payments of one order, a replayed
payment, and many buyers for the last keys."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from models.tables import CardDelivery, CardKey, OrderEvent, OutboxMessage, ShopOrder
from services import catalog
from services.actors import Actor, Caller
from services.catalog import VariantRef
from services.context import ShopContext, close_shop, open_shop
from services.errors import (
    AlreadyPaid,
    InvalidValue,
    KeysPrivateOnly,
    NoCardKeys,
    NotForVirtualOrder,
    OrderNotFound,
    OutOfStock,
    VirtualSwitchBlock,
    VirtualSwitchBlocked,
)
from services.outbox import Pacer, Segment, Target
from services.staff import Role
from services.tracking import normalise_carrier
from services.usecases import buying, card_keys, clocks, delivery, fulfilment, order_admin
from services.usecases.payments import manual_reference, record_payment
from tests.conftest import CUSTOMER_ID, GROUP_ID, OTHER_CUSTOMER_ID, OWNER_ID, STAFF_ID

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
OWNER_IN_GROUP = Caller(OWNER_ID, GROUP_ID, Role.OWNER)
STAFF = Caller(STAFF_ID, None, Role.STAFF)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
CUSTOMER_IN_GROUP = Caller(CUSTOMER_ID, GROUP_ID, Role.CUSTOMER)
OTHER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
STAFF_ACTOR = Actor("owner", OWNER_ID)
_names = itertools.count(1)


# --- helpers -------------------------------------------------------------------------------


async def _virtual(shop: ShopContext, keys: list[str], price: int = 1000) -> VariantRef:
    async with shop.database.write() as session:
        item, _ = await catalog.create_item(
            session, shop.shop_id, f"会员卡{next(_names)}", price, 0
        )
    ref = VariantRef(item.id or 0)
    switched = await card_keys.set_virtual(shop, STAFF, ref.item_id, True)
    assert switched.changed and switched.item.virtual
    if keys:
        await card_keys.import_keys(shop, OWNER, ref, "\n".join(keys), NOW)
    return ref


async def _order(shop: ShopContext, caller: Caller, ref: VariantRef, quantity: int = 1) -> str:
    step = await buying.buy_now(shop, caller, ref, quantity, now=NOW)
    assert step.next_step is buying.NextStep.CONFIRM, step
    placed = await buying.confirm_summary(shop, caller, now=NOW)
    assert isinstance(placed, buying.OrderPlaced)
    return placed.order.code


async def _pay(shop: ShopContext, code: str, *, reference: str | None = None, **kw: Any) -> Any:
    return await record_payment(
        shop,
        STAFF_ACTOR,
        code,
        provider="manual",
        reference=reference or manual_reference(code),
        amount_fen=None,
        now=NOW,
        **kw,
    )


async def _rows(shop: ShopContext, model: Any, *where: Any) -> list[Any]:
    async with shop.database.read() as session:
        return list(
            (await session.execute(select(model).where(*where).order_by(model.id))).scalars()
        )


async def _outbox(shop: ShopContext) -> dict[str, OutboxMessage]:
    return {row.dedupe_key: row for row in await _rows(shop, OutboxMessage)}


async def _order_row(shop: ShopContext, code: str) -> ShopOrder:
    [order] = await _rows(shop, ShopOrder, ShopOrder.code == code)
    return order


async def _keys_of(shop: ShopContext, code: str) -> list[CardKey]:
    order = await _order_row(shop, code)
    return await _rows(shop, CardKey, CardKey.order_id == order.id)


async def _all_due(shop: ShopContext) -> None:
    """Makes every queued row due now (the test's clock is not the dispatcher's)."""
    async with shop.database.write() as session:
        await session.execute(
            update(OutboxMessage).values(next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC))
        )


def _all_outbox_text(rows: dict[str, OutboxMessage]) -> str:
    return "\n".join(row.segments for row in rows.values())


@pytest.fixture
async def secret_shop(settings: Any) -> AsyncIterator[ShopContext]:
    """The shop with CARD_KEY_SECRET set."""
    sealed = settings.model_copy(
        update={"card_key_secret": SecretStr("测试用的长随机密钥 0123456789")}
    )
    shop = await open_shop(sealed, frozenset({OWNER_ID}))
    yield shop
    await close_shop(shop)


# --- /虚拟 /卡密 --------------------------------------------------------------------------------


async def test_set_virtual_and_its_refusal(shop_context: ShopContext) -> None:
    async with shop_context.database.write() as session:
        item, _ = await catalog.create_item(session, shop_context.shop_id, "会员", 1000, 3)
    with pytest.raises(VirtualSwitchBlocked) as stocked:
        await card_keys.set_virtual(shop_context, STAFF, item.id or 0, True)
    assert stocked.value.why is VirtualSwitchBlock.PHYSICAL_STOCK
    ref = await _virtual(shop_context, [])
    again = await card_keys.set_virtual(shop_context, STAFF, ref.item_id, True)
    assert not again.changed
    back = await card_keys.set_virtual(shop_context, STAFF, ref.item_id, False)
    assert back.changed and not back.item.virtual


async def test_import_keys_in_private_and_refused_in_a_group(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, [])
    result = await card_keys.import_keys(shop_context, OWNER, ref, "K1\n\nK2\nK1\n  K3  ", NOW)
    assert (result.imported, result.duplicates, result.stock, str(result.ref)) == (
        3,
        1,
        3,
        f"{ref.item_id}-1",
    )
    with pytest.raises(KeysPrivateOnly):
        await card_keys.import_keys(shop_context, OWNER_IN_GROUP, ref, "K9", NOW)
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.held, stock.counts.sold) == (3, 0, 0)
    assert stock.counts.samples == ["****", "****", "****"]  # 2-character keys: fully masked
    assert await _outbox(shop_context) == {}


async def test_key_stock_and_clear(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["ABCD-0001-WXYZ", "ABCD-0002-WXYZ", "ABCD-0003-WXYZ"])
    await _order(shop_context, CUSTOMER, ref)  # unpaid: holds one
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.held) == (2, 1)
    assert stock.counts.samples == ["AB****YZ"] * 3
    cleared = await card_keys.clear_keys(shop_context, STAFF, ref)
    assert (cleared.removed, cleared.held) == (2, 1)
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.held) == (0, 1)


# --- delivery inside record_payment -----------------------------------------------------------


async def test_paying_a_group_order_sends_the_keys_privately(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["GIFT-AAAA-0001", "GIFT-AAAA-0002", "GIFT-AAAA-0003"])
    code = await _order(shop_context, CUSTOMER_IN_GROUP, ref, 2)  # no saved address: fine
    before = set(await _outbox(shop_context))
    outcome = await _pay(shop_context, code, notify_staff=True)
    assert outcome.recorded and outcome.keys_delivered
    order = await _order_row(shop_context, code)
    assert order.status == "completed" and order.virtual and order.receiver_address == ""
    events = await _rows(shop_context, OrderEvent, OrderEvent.order_id == order.id)
    assert [(e.action, e.to_status) for e in events] == [
        ("created", "pending_payment"),
        ("paid", "paid"),
        ("keys_delivered", "completed"),
    ]
    assert sorted(key.secret for key in await _keys_of(shop_context, code)) == [
        "GIFT-AAAA-0001",
        "GIFT-AAAA-0002",
    ]
    rows = await _outbox(shop_context)
    new = {key: row for key, row in rows.items() if key not in before}
    assert set(new) == {
        f"order:{code}:keys",
        f"order:{code}:keys_sent",
        f"order:{code}:paid:staff:{OWNER_ID}",
    }
    keys_row = new[f"order:{code}:keys"]
    assert (keys_row.target_type, keys_row.target_id) == ("private", CUSTOMER_ID)
    assert json.loads(keys_row.segments) == [
        {"type": "card_keys", "data": {"order": code, "page": 1}}
    ]
    group_row = new[f"order:{code}:keys_sent"]
    assert (group_row.target_type, group_row.target_id) == ("group", GROUP_ID)
    group_segments = json.loads(group_row.segments)
    assert group_segments[0] == {"type": "at", "data": {"qq": str(CUSTOMER_ID)}}
    assert "私聊" in group_segments[1]["data"]["text"]
    assert f"/提货 {code}" in group_segments[1]["data"]["text"]
    assert "无需发货" in new[f"order:{code}:paid:staff:{OWNER_ID}"].segments
    assert "GIFT-AAAA" not in _all_outbox_text(rows)  # no key in any row, not even masked


async def test_a_private_order_gets_only_the_private_keys_message(
    shop_context: ShopContext,
) -> None:
    ref = await _virtual(shop_context, ["K-0001"])
    code = await _order(shop_context, CUSTOMER, ref)
    await _pay(shop_context, code)
    queued = [key for key in await _outbox(shop_context) if key.startswith(f"order:{code}")]
    assert sorted(queued) == [f"order:{code}:keys", f"order:{code}:new:staff:{OWNER_ID}"]


async def test_the_dispatcher_renders_the_keys_at_send_time(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["GIFT-BBBB-0001"])
    code = await _order(shop_context, CUSTOMER_IN_GROUP, ref)
    await _pay(shop_context, code)
    sent: list[tuple[Target, list[Segment]]] = []

    async def send(target: Target, segments: list[Segment]) -> None:
        sent.append((target, segments))

    await _all_due(shop_context)
    assert await delivery.dispatch_due(shop_context, Pacer(0, 1000), send) == 3  # + staff
    texts = {
        (target.kind.value, target.id): "".join(s["data"].get("text", "") for s in segments)
        for target, segments in sent
    }
    private = texts[("private", CUSTOMER_ID)]
    assert "GIFT-BBBB-0001" in private and f"订单号：{code}" in private
    assert "GIFT-BBBB-0001" not in texts[("group", GROUP_ID)]
    assert "GIFT-BBBB" not in _all_outbox_text(await _outbox(shop_context))


async def test_a_replayed_payment_delivers_nothing_more(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["K1", "K2", "K3"])
    code = await _order(shop_context, CUSTOMER, ref)
    first = await _pay(shop_context, code, reference="trade-1")
    again = await _pay(shop_context, code, reference="trade-1")
    assert first.keys_delivered and not again.recorded and not again.keys_delivered
    with pytest.raises(AlreadyPaid):
        await _pay(shop_context, code, reference="trade-2")
    assert len(await _keys_of(shop_context, code)) == 1
    assert len(await _rows(shop_context, CardDelivery)) == 1
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.sold) == (2, 1)


async def test_two_racing_payments_of_one_order_deliver_once(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["K1", "K2", "K3", "K4"])
    code = await _order(shop_context, CUSTOMER, ref, 2)
    results = await asyncio.gather(
        _pay(shop_context, code, reference="notify-1"),
        _pay(shop_context, code, reference="manual-1"),
        _pay(shop_context, code, reference="notify-1"),
        return_exceptions=True,
    )
    delivered = [r for r in results if not isinstance(r, BaseException) and r.keys_delivered]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(delivered) == 1
    assert all(isinstance(f, AlreadyPaid | IntegrityError) for f in failures), failures
    assert len(await _keys_of(shop_context, code)) == 2
    assert len(await _rows(shop_context, CardDelivery)) == 1
    outbox = await _outbox(shop_context)
    assert [key for key in outbox if key.endswith(":keys")] == [f"order:{code}:keys"]


async def test_many_buyers_race_for_the_last_keys(shop_context: ShopContext) -> None:
    """20 buyers, 7 keys, everyone at once: 7 orders, each paid (twice, at once), 7
    deliveries, no key twice, stock never negative."""
    keys = [f"LAST-{n:04d}" for n in range(7)]
    ref = await _virtual(shop_context, keys)
    buyers = [Caller(40000 + n, GROUP_ID if n % 2 else None, Role.CUSTOMER) for n in range(20)]

    async def attempt(buyer: Caller) -> str | None:
        try:
            return await _order(shop_context, buyer, ref)
        except OutOfStock:
            return None

    codes = [code for code in await asyncio.gather(*(attempt(b) for b in buyers)) if code]
    assert len(codes) == len(keys)
    payments = [
        _pay(shop_context, code, reference=f"{ref_}-{code}")
        for code in codes
        for ref_ in ("a", "b")
    ]
    results = await asyncio.gather(*payments, return_exceptions=True)
    delivered = [r for r in results if not isinstance(r, BaseException) and r.keys_delivered]
    assert len(delivered) == len(codes)
    assert all(
        isinstance(r, AlreadyPaid | IntegrityError) for r in results if isinstance(r, BaseException)
    )
    sold = await _rows(shop_context, CardKey)
    assert sorted(key.secret for key in sold) == sorted(keys)
    assert len({key.order_id for key in sold}) == len(codes)  # one key per order, none twice
    assert all(key.order_id is not None for key in sold)
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.held, stock.counts.sold) == (0, 0, len(keys))
    orders_done = await _rows(shop_context, ShopOrder, ShopOrder.status == "completed")
    assert len(orders_done) == len(codes)


# --- after the payment --------------------------------------------------------------------------


async def test_reveal_keys_to_the_buyer_privately_only(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["ABCD-1111-WXYZ", "ABCD-2222-WXYZ"])
    code = await _order(shop_context, CUSTOMER_IN_GROUP, ref)
    with pytest.raises(NoCardKeys):  # not paid yet
        await card_keys.reveal_keys(shop_context, CUSTOMER, code)
    await _pay(shop_context, code)
    mine = await card_keys.reveal_keys(shop_context, CUSTOMER, code)
    assert not mine.masked and [line.keys for line in mine.lines] == [["ABCD-1111-WXYZ"]]
    with pytest.raises(KeysPrivateOnly):
        await card_keys.reveal_keys(shop_context, CUSTOMER_IN_GROUP, code)
    with pytest.raises(OrderNotFound):
        await card_keys.reveal_keys(shop_context, OTHER, code)
    staff_view = await card_keys.reveal_keys(shop_context, STAFF, code)
    assert staff_view.masked and [line.keys for line in staff_view.lines] == [["AB****YZ"]]


async def test_a_refund_keeps_the_keys_with_the_order(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["K1", "K2"])
    code = await _order(shop_context, CUSTOMER, ref)
    await _pay(shop_context, code)
    refunded = await order_admin.refund(shop_context, OWNER, code, reason="不想要了", now=NOW)
    assert refunded.fully and refunded.order.status == "refunded"
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.sold) == (1, 1)
    assert [
        line.keys for line in (await card_keys.reveal_keys(shop_context, CUSTOMER, code)).lines
    ] == [["K1"]]


async def test_an_expired_order_gives_its_keys_back(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["K1", "K2"])
    await _order(shop_context, CUSTOMER, ref, 2)
    assert (await card_keys.key_stock(shop_context, STAFF, ref)).counts.on_sale == 0
    await clocks.order_clocks(shop_context, NOW + timedelta(hours=1))
    stock = await card_keys.key_stock(shop_context, STAFF, ref)
    assert (stock.counts.on_sale, stock.counts.held, stock.counts.sold) == (2, 0, 0)


async def test_a_virtual_order_is_never_shipped(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, ["K1"])
    code = await _order(shop_context, CUSTOMER, ref)
    await _pay(shop_context, code)
    with pytest.raises(NotForVirtualOrder):
        await fulfilment.ship_order(
            shop_context, STAFF, code, normalise_carrier("顺丰"), "SF123456"
        )


async def test_with_a_secret_keys_are_encrypted_at_rest(secret_shop: ShopContext) -> None:
    ref = await _virtual(secret_shop, ["SEALED-KEY-0001", "SEALED-KEY-0002"])
    code = await _order(secret_shop, CUSTOMER, ref)
    await _pay(secret_shop, code)
    async with secret_shop.database.read() as session:
        raw = "\n".join(
            f"{secret} {digest}"
            for secret, digest in (
                await session.execute(text("SELECT secret, key_hash FROM card_key"))
            ).all()
        )
        count = (await session.execute(select(func.count()).select_from(CardKey))).scalar_one()
    assert count == 2 and "SEALED-KEY" not in raw
    assert "SEALED-KEY" not in _all_outbox_text(await _outbox(secret_shop))
    mine = await card_keys.reveal_keys(secret_shop, CUSTOMER, code)
    assert [line.keys for line in mine.lines] == [["SEALED-KEY-0001"]]
    sent: list[list[Segment]] = []

    async def send(target: Target, segments: list[Segment]) -> None:
        sent.append(segments)

    await _all_due(secret_shop)
    await delivery.dispatch_due(secret_shop, Pacer(0, 1000), send)
    assert any(
        "SEALED-KEY-0001" in s["data"].get("text", "") for segments in sent for s in segments
    )


async def test_many_long_keys_go_in_pages(shop_context: ShopContext) -> None:
    keys = [f"LONG-{n:02d}-" + "x" * 490 for n in range(9)]  # ~4,500 characters
    ref = await _virtual(shop_context, keys)
    code = await _order(shop_context, CUSTOMER, ref, 9)
    await _pay(shop_context, code)
    queued = sorted(
        key for key in await _outbox(shop_context) if key.startswith(f"order:{code}:keys")
    )
    assert queued == [f"order:{code}:keys", f"order:{code}:keys:2", f"order:{code}:keys:3"]
    sent: list[str] = []

    async def send(target: Target, segments: list[Segment]) -> None:
        sent.append("".join(s["data"].get("text", "") for s in segments))

    await _all_due(shop_context)
    await delivery.dispatch_due(shop_context, Pacer(0, 1000), send)
    pages = [text for text in sent if "LONG-" in text]
    assert len(pages) == 3 and all(len(text) < 3000 for text in pages)
    assert sorted(key for text in pages for key in keys if key in text) == keys
    first = await card_keys.reveal_keys(shop_context, CUSTOMER, code)
    last = await card_keys.reveal_keys(shop_context, CUSTOMER, code, 3)
    assert (first.page, first.pages, last.page) == (1, 3, 3)
    with pytest.raises(InvalidValue):
        await card_keys.reveal_keys(shop_context, CUSTOMER, code, 4)
