"""Card-key (virtual) goods outside delivery, through the use cases on a real database:
退货/换货 of a card-key order are refused (退款/投诉 open, a physical order may still be
returned), and importing keys re-arms the variant's low-stock alert as a restock does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models.tables import OutboxMessage, Ticket, TicketKind, VariantGuard
from services import catalog
from services.actors import Actor, Caller
from services.addresses import AddressSnapshot
from services.catalog import VariantRef
from services.context import ShopContext
from services.errors import TicketNotAllowed, TicketRefusal
from services.staff import Role
from services.usecases import buying, card_keys, tickets
from services.usecases import safeguards as guard
from services.usecases.payments import manual_reference, record_payment
from tests.conftest import CUSTOMER_ID, OTHER_CUSTOMER_ID, OWNER_ID

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
CUSTOMER = Caller(CUSTOMER_ID, None, Role.CUSTOMER)
OTHER = Caller(OTHER_CUSTOMER_ID, None, Role.CUSTOMER)
K = TicketKind
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
_keys = itertools.count(1)


async def _virtual(shop: ShopContext, keys: int) -> VariantRef:
    async with shop.database.write() as session:
        item, _ = await catalog.create_item(session, shop.shop_id, "视频会员月卡", 1500, 0)
    ref = VariantRef(item.id or 0)
    await card_keys.set_virtual(shop, OWNER, ref.item_id, True)
    if keys:
        await _import(shop, ref, keys)
    return ref


async def _import(shop: ShopContext, ref: VariantRef, count: int) -> card_keys.KeysImported:
    text = "\n".join(f"KEY-{next(_keys):04d}" for _ in range(count))
    return await card_keys.import_keys(shop, OWNER, ref, text, NOW)


async def _physical(shop: ShopContext) -> VariantRef:
    async with shop.database.write() as session:
        item, _ = await catalog.create_item(session, shop.shop_id, "陶瓷杯", 5900, 10)
    return VariantRef(item.id or 0)


async def _place(shop: ShopContext, caller: Caller, ref: VariantRef, quantity: int = 1) -> str:
    step = await buying.buy_now(shop, caller, ref, quantity, now=NOW)
    if step.next_step is buying.NextStep.GIVE_ADDRESS:
        await buying.give_address(shop, caller, HOME, now=NOW)
    placed = await buying.confirm_summary(shop, caller, now=NOW)
    assert isinstance(placed, buying.OrderPlaced)
    return placed.order.code


async def _paid(shop: ShopContext, caller: Caller, ref: VariantRef) -> str:
    code = await _place(shop, caller, ref)
    await record_payment(
        shop,
        Actor("owner", OWNER_ID),
        code,
        provider="manual",
        reference=manual_reference(code),
        amount_fen=None,
        now=NOW,
    )
    return code


async def _tickets(shop: ShopContext) -> list[str]:
    async with shop.database.read() as session:
        return list((await session.execute(select(Ticket.kind).order_by(Ticket.id))).scalars())


# --- 退货/换货 of card keys ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [K.RETURN, K.EXCHANGE])
async def test_card_keys_cannot_be_returned_or_exchanged(
    shop_context: ShopContext, kind: TicketKind
) -> None:
    code = await _paid(shop_context, CUSTOMER, await _virtual(shop_context, 2))
    with pytest.raises(TicketNotAllowed) as refused:
        await tickets.open_ticket(shop_context, CUSTOMER, code, kind, "卡密用不了", now=NOW)
    assert (refused.value.why, refused.value.kind) == (TicketRefusal.VIRTUAL, kind.value)
    assert await _tickets(shop_context) == []


async def test_card_keys_may_still_be_refunded_or_complained_about(
    shop_context: ShopContext,
) -> None:
    code = await _paid(shop_context, CUSTOMER, await _virtual(shop_context, 2))
    for kind in (K.REFUND, K.COMPLAINT):
        await tickets.open_ticket(shop_context, CUSTOMER, code, kind, "卡密用不了", now=NOW)
    assert await _tickets(shop_context) == ["refund", "complaint"]


async def test_physical_goods_may_be_returned_and_exchanged(shop_context: ShopContext) -> None:
    code = await _paid(shop_context, CUSTOMER, await _physical(shop_context))
    for kind in (K.RETURN, K.EXCHANGE):
        await tickets.open_ticket(shop_context, CUSTOMER, code, kind, "杯子有裂纹", now=NOW)
    assert await _tickets(shop_context) == ["return", "exchange"]


# --- importing keys re-arms the low-stock alert -----------------------------------------------


async def _low_stock_notices(shop: ShopContext) -> list[str]:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(OutboxMessage.dedupe_key).order_by(OutboxMessage.id)  # type: ignore[arg-type]
        )
        return [key for key in rows.scalars() if key.startswith("lowstock:")]


async def _alerted(shop: ShopContext) -> bool:
    async with shop.database.read() as session:
        [guard_row] = (await session.execute(select(VariantGuard))).scalars()
        return guard_row.low_stock_alerted


async def test_importing_keys_rearms_the_low_stock_alert(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, 3)
    await guard.set_low_stock_alert(shop_context, ref, 2, now=NOW)
    await _place(shop_context, CUSTOMER, ref)  # 2 keys left: at the threshold
    first = await _low_stock_notices(shop_context)
    assert len(first) == 1 and first[0].split(":")[2] == "1"  # the owner, first crossing
    assert await _alerted(shop_context)

    imported = await _import(shop_context, ref, 5)  # 7 on sale: above it again
    assert (imported.imported, imported.stock) == (5, 7)
    assert not await _alerted(shop_context)
    assert len(await _low_stock_notices(shop_context)) == 1

    await _place(shop_context, OTHER, ref, 5)  # 2 again: a second crossing, told again
    second = await _low_stock_notices(shop_context)
    assert len(second) == 2 and second[1].split(":")[2] == "2"


async def test_importing_only_duplicates_changes_no_alert(shop_context: ShopContext) -> None:
    ref = await _virtual(shop_context, 0)
    await card_keys.import_keys(shop_context, OWNER, ref, "DUP-0001", NOW)
    await guard.set_low_stock_alert(shop_context, ref, 2, now=NOW)
    again = await card_keys.import_keys(shop_context, OWNER, ref, "DUP-0001", NOW)
    assert (again.imported, again.duplicates, again.stock) == (0, 1, 1)
    assert await _low_stock_notices(shop_context) == []
