"""From /下单 or /结算 to an order: a draft summary the customer confirms.

The draft lives in the database (a restart does not forget what someone was about to
confirm) and is keyed by chat and user: only the same user in the same chat can confirm
it. Confirming deletes the draft in the same transaction that creates the order, so a
double 确认 creates one order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import CheckoutDraft, CheckoutDraftLine, DraftSource, Item, ShopOrder, Variant

from . import cart, placing, safeguards
from .addresses import AddressSnapshot, default_address
from .catalog import VariantRef, line_name
from .errors import (
    CartEmpty,
    DraftExpired,
    ItemNotFound,
    ItemUnavailable,
    MixedVirtualOrder,
    NoAddress,
    OutOfStock,
    PriceChanged,
    ShopError,
    VariantNotFound,
    VariantRequired,
)
from .orders import check_remark
from .placing import Customer, Goods, ItemGoods, Pending


def _in_chat(shop_id: int, user_id: int, group_id: int | None) -> ColumnElement[bool]:
    """The draft of this user in this chat (a private chat is group_id NULL). Written as
    the unique index is (coalesce(group_id, 0)), so the lookup uses it."""
    return (
        (CheckoutDraft.shop_id == shop_id)
        & (func.coalesce(CheckoutDraft.group_id, 0) == (group_id or 0))
        & (CheckoutDraft.user_id == user_id)
    )


@dataclass(frozen=True)
class SummaryLine:
    item: Item
    variant: Variant
    quantity: int

    @property
    def subtotal_fen(self) -> int:
        return self.variant.price_fen * self.quantity


@dataclass(frozen=True)
class Summary:
    draft: CheckoutDraft
    lines: list[SummaryLine]
    address: AddressSnapshot | None  # None for card keys, which need none
    virtual: bool = False  # card keys: no address, sent by private message once paid

    @property
    def total_fen(self) -> int:
        return sum(line.subtotal_fen for line in self.lines)

    @property
    def needs_address(self) -> bool:
        """Physical goods and no saved address yet: the summary waits for one."""
        return not self.virtual and self.address is None


def is_virtual(lines: list[SummaryLine]) -> bool:
    """Card keys only (True) or physical goods only (False); never both in one order."""
    kinds = {line.item.virtual for line in lines}
    if len(kinds) > 1:
        raise MixedVirtualOrder()
    return kinds == {True}


async def draft_lines(session: AsyncSession, draft: CheckoutDraft) -> list[CheckoutDraftLine]:
    rows = await session.execute(
        select(CheckoutDraftLine)
        .where(CheckoutDraftLine.draft_id == draft.id)
        .order_by(CheckoutDraftLine.position)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def _wanted(session: AsyncSession, draft: CheckoutDraft) -> list[tuple[int, int]]:
    return [(line.variant_id, line.quantity) for line in await draft_lines(session, draft)]


async def _summary_lines(
    session: AsyncSession, shop_id: int, wanted: list[tuple[int, int]]
) -> list[SummaryLine]:
    """Checks availability now (the stock is only reserved on 确认)."""
    lines = []
    for variant_id, quantity in wanted:
        variant = await session.get(Variant, variant_id)
        item = await session.get(Item, variant.item_id) if variant else None
        if variant is None or item is None or not item.listed or item.shop_id != shop_id:
            raise ItemUnavailable(item.name if item else "该商品")
        if variant.stock < quantity:
            name = line_name(item.name, variant.name)
            raise OutOfStock(name, quantity, variant.stock)
        lines.append(SummaryLine(item, variant, quantity))
    return lines


async def start(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    group_id: int | None,
    source: DraftSource,
    wanted: list[tuple[int, int]],
    remark: str,
    now: datetime,
    confirm_window: timedelta,
    *,
    goods: Mapping[int, Goods] | None = None,
    customer: Customer | None = None,
    draft_waiting: bool = True,
) -> Summary:
    """Creates (or replaces) the user's draft in this chat and returns its summary.
    With no saved address: in a private chat the draft waits for one (summary.address is
    None); in a group NoAddress is raised and no draft is kept (addresses are never
    collected in groups). Card keys (a virtual summary) need no address anywhere.
    `goods` and `customer`: what the caller already read (placing.item_goods), so
    nothing is read twice; `draft_waiting=False`: it read that this chat holds no draft
    of the user (none to delete)."""
    remark = check_remark(remark)
    if not wanted:
        raise CartEmpty()
    if goods is None:
        goods = await placing.goods_by_id(session, shop_id, user_id, [v for v, _ in wanted])
    # Checks availability now (the stock is only reserved on 确认).
    lines = [(placing.check_available(shop_id, goods.get(v), q), q) for v, q in wanted]
    virtual = placing.virtual_only(lines)
    if virtual:
        address = None
    elif customer is not None:
        address = customer.address
    else:
        saved = await default_address(session, shop_id, user_id)
        address = AddressSnapshot.of(saved) if saved else None
    if address is None and group_id is not None and not virtual:
        if draft_waiting:
            await placing.delete_draft_in_chat(session, shop_id, user_id, group_id)
        raise NoAddress()
    # The unit price is what the customer sees in the summary; 确认 refuses if it moved.
    draft = await placing.replace_draft(
        session,
        shop_id,
        user_id,
        group_id,
        source,
        [(line.variant_id, quantity, line.price_fen) for line, quantity in lines],
        remark,
        address is None and not virtual,
        now,
        confirm_window,
        replace=draft_waiting,
    )
    # No address in a private chat: the draft waits for one (the summary says so).
    summary_lines = [SummaryLine(line.item(), line.variant(), quantity) for line, quantity in lines]
    return Summary(draft, summary_lines, address, virtual)


def resolve(found: ItemGoods | None, shop_id: int, ref: VariantRef) -> Goods:
    """catalog.resolve_variant on what placing.item_goods read (same refusals)."""
    if found is None or found.shop_id != shop_id or not found.listed:
        raise ItemNotFound(ref.item_id)
    variants = found.variants
    if ref.position is None:
        if len(variants) != 1:
            raise VariantRequired(ref.item_id, len(variants))
        return variants[0]
    for goods in variants:
        if goods.position == ref.position:
            return goods
    raise VariantNotFound(ref.item_id, ref.position, len(variants))


async def find(
    session: AsyncSession, shop_id: int, user_id: int, group_id: int | None
) -> CheckoutDraft | None:
    return (
        await session.execute(select(CheckoutDraft).where(_in_chat(shop_id, user_id, group_id)))
    ).scalar_one_or_none()


async def summary_of(session: AsyncSession, draft: CheckoutDraft) -> Summary:
    lines = await _summary_lines(session, draft.shop_id, await _wanted(session, draft))
    virtual = is_virtual(lines)
    address = None if virtual else await default_address(session, draft.shop_id, draft.user_id)
    return Summary(draft, lines, AddressSnapshot.of(address) if address else None, virtual)


async def address_given(
    session: AsyncSession, draft: CheckoutDraft, now: datetime, confirm_window: timedelta
) -> Summary:
    """The customer answered with an address (already saved): back to awaiting 确认."""
    draft.awaiting_address = False
    draft.expires_at = now + confirm_window
    await session.flush()
    return await summary_of(session, draft)


def _draft_id(draft: CheckoutDraft) -> int:
    # By its identity, not `draft.id`: a savepoint rolled back after changing the draft
    # (the address step) expires it, and loading it again would need an await.
    identity = inspect(draft).identity if inspect(draft, raiseerr=False) else None
    return int(identity[0] if identity else draft.id or 0)


async def discard(session: AsyncSession, draft: CheckoutDraft) -> None:
    """Deletes the draft (and its lines) if it is still there (a concurrent 确认 may have
    used it)."""
    await placing.delete_draft(session, _draft_id(draft))


async def confirm(
    session: AsyncSession, draft: CheckoutDraft, now: datetime, unpaid_timeout: timedelta
) -> ShopOrder:
    """Creates the order and consumes the draft. An expired draft is deleted and refused.
    (No ban or unpaid-cap check: confirm_pending, which the 确认 use case calls, has them.)"""
    pending = await placing.pending_by_id(
        session, draft.shop_id, draft.user_id, _draft_id(draft), lock=False
    )
    if pending is None or not await placing.delete_draft(session, pending.draft_id):
        raise DraftExpired()  # confirmed by a concurrent 确认 a moment ago
    return await _place(session, pending, now, unpaid_timeout, None)


async def confirm_pending(
    session: AsyncSession,
    pending: Pending,
    now: datetime,
    unpaid_timeout: timedelta,
    max_unpaid_orders: int,
) -> tuple[ShopOrder | None, ShopError | None]:
    """确认 of a draft read with everything it needs (placing.pending_in_chat): the order,
    or the refusal (a ban, the unpaid cap, a limit, stock gone, a price changed, ...).
    The draft is used up either way: it is deleted first, and a refusal comes before
    anything else is written, so the caller commits the deletion and raises the refusal
    afterwards (no savepoint needed)."""
    if not await placing.delete_draft(session, pending.draft_id):
        return None, DraftExpired()  # confirmed by a concurrent 确认 a moment ago
    try:
        return await _place(session, pending, now, unpaid_timeout, max_unpaid_orders), None
    except ShopError as error:
        return None, error


async def _place(
    session: AsyncSession,
    pending: Pending,
    now: datetime,
    unpaid_timeout: timedelta,
    max_unpaid_orders: int | None,
) -> ShopOrder:
    if pending.expires_at <= now:
        raise DraftExpired()
    if max_unpaid_orders is not None:
        # A ban and the unpaid cap, read (on PostgreSQL under the customer's lock) in the
        # transaction that reserves the stock: racing orders cannot both pass.
        await safeguards.ensure_customer_may_order(
            session,
            pending.shop_id,
            pending.user_id,
            max_unpaid_orders,
            pending.customer.banned,
            pending.customer.unpaid,
        )
    for line in pending.lines:
        if line.goods is not None and line.goods.price_fen != line.unit_price_fen:
            raise PriceChanged(line.unit_price_fen, line.goods.price_fen)
    merged: dict[int, tuple[Goods | None, int]] = {}
    for line in pending.lines:
        before = merged.get(line.variant_id, (line.goods, 0))[1]
        merged[line.variant_id] = (line.goods, before + line.quantity)
    # Physical goods need an address (placing.place refuses without one); card keys none.
    order = await placing.place(
        session,
        pending.shop_id,
        pending.user_id,
        pending.group_id,
        list(merged.values()),
        pending.customer.address,
        pending.remark,
        now,
        unpaid_timeout,
    )
    if pending.source == DraftSource.CART:
        await cart.remove_variants(session, pending.shop_id, pending.user_id, set(merged))
    return order


async def live_drafts(
    session: AsyncSession, now: datetime
) -> dict[tuple[int | None, int], tuple[datetime, bool]]:
    """(group or None, user) → (expires at, awaiting an address) of every unexpired draft:
    what the in-memory draft index is rebuilt from."""
    rows = await session.execute(
        select(
            CheckoutDraft.group_id,
            CheckoutDraft.user_id,
            CheckoutDraft.expires_at,
            CheckoutDraft.awaiting_address,
        )
    )
    return {
        (group_id, user): (expires, awaiting)
        for group_id, user, expires, awaiting in rows
        if expires > now
    }


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """Deletes the drafts (and their lines) nobody confirmed in time; returns how many."""
    result = await session.execute(delete(CheckoutDraft).where(CheckoutDraft.expires_at <= now))  # type: ignore[arg-type]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
