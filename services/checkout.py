"""From /下单 or /结算 to an order: a draft summary the customer confirms.

The draft lives in the database (a restart does not forget what someone was about to
confirm) and is keyed by chat and user: only the same user in the same chat can confirm
it. Confirming deletes the draft in the same transaction that creates the order, so a
double 确认 creates one order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import CheckoutDraft, CheckoutDraftLine, DraftSource, Item, ShopOrder, Variant

from . import cart, orders
from .addresses import AddressSnapshot, default_address
from .catalog import line_name
from .errors import (
    CartEmpty,
    DraftExpired,
    ItemUnavailable,
    MixedVirtualOrder,
    NoAddress,
    OutOfStock,
    PriceChanged,
)
from .orders import check_remark


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
) -> Summary:
    """Creates (or replaces) the user's draft in this chat and returns its summary.
    With no saved address: in a private chat the draft waits for one (summary.address is
    None); in a group NoAddress is raised and no draft is kept (addresses are never
    collected in groups). Card keys (a virtual summary) need no address anywhere."""
    remark = check_remark(remark)
    if not wanted:
        raise CartEmpty()
    lines = await _summary_lines(session, shop_id, wanted)
    virtual = is_virtual(lines)
    address = None if virtual else await default_address(session, shop_id, user_id)
    # Its lines go with it (ON DELETE CASCADE).
    await session.execute(delete(CheckoutDraft).where(_in_chat(shop_id, user_id, group_id)))
    if address is None and group_id is not None and not virtual:
        raise NoAddress()
    draft = CheckoutDraft(
        shop_id=shop_id,
        group_id=group_id,
        user_id=user_id,
        source=source,
        remark=remark,
        awaiting_address=address is None and not virtual,
        created_at=now,
        expires_at=now + confirm_window,
    )
    session.add(draft)
    await session.flush()
    # The unit price is what the customer sees in the summary; 确认 refuses if it moved.
    session.add_all(
        CheckoutDraftLine(
            draft_id=draft.id or 0,
            position=position,
            variant_id=line.variant.id or 0,
            quantity=line.quantity,
            unit_price_fen=line.variant.price_fen,
        )
        for position, line in enumerate(lines, start=1)
    )
    await session.flush()
    # No address in a private chat: the draft waits for one (the summary says so).
    return Summary(draft, lines, AddressSnapshot.of(address) if address else None, virtual)


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


async def discard(session: AsyncSession, draft: CheckoutDraft) -> None:
    """Deletes the draft (and its lines) if it is still there (a concurrent 确认 may have
    used it)."""
    # By its identity, not `draft.id`: a savepoint rolled back after changing the draft
    # (the address step) expires it, and loading it again would need an await.
    identity = inspect(draft).identity
    draft_id = identity[0] if identity else draft.id
    await session.execute(delete(CheckoutDraft).where(CheckoutDraft.id == draft_id))  # type: ignore[arg-type]


async def confirm(
    session: AsyncSession, draft: CheckoutDraft, now: datetime, unpaid_timeout: timedelta
) -> ShopOrder:
    """Creates the order and consumes the draft. An expired draft is deleted and refused."""
    # Read before the delete below takes them with the draft (ON DELETE CASCADE).
    lines = await draft_lines(session, draft)
    result = await session.execute(delete(CheckoutDraft).where(CheckoutDraft.id == draft.id))  # type: ignore[arg-type]
    if not result.rowcount:  # type: ignore[attr-defined]
        raise DraftExpired()  # confirmed by a concurrent 确认 a moment ago
    if draft.expires_at <= now:
        raise DraftExpired()
    # Physical goods need an address (place_order refuses without one); card keys none.
    address = await default_address(session, draft.shop_id, draft.user_id)
    for line in lines:
        variant = await session.get(Variant, line.variant_id)
        if variant is not None and variant.price_fen != line.unit_price_fen:
            raise PriceChanged(line.unit_price_fen, variant.price_fen)
    wanted = [(line.variant_id, line.quantity) for line in lines]
    order = await orders.place_order(
        session,
        draft.shop_id,
        draft.user_id,
        draft.group_id,
        wanted,
        AddressSnapshot.of(address) if address else None,
        draft.remark,
        now,
        unpaid_timeout,
    )
    if draft.source == DraftSource.CART:
        await cart.remove_variants(
            session, draft.shop_id, draft.user_id, {variant_id for variant_id, _ in wanted}
        )
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
