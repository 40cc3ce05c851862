"""Merchant safeguards against abuse and surprises: the blacklist (/拉黑), the cap on a
customer's unpaid orders (MAX_UNPAID_ORDERS), purchase limits per customer (/限购) and
low-stock alerts (/预警, LOW_STOCK_THRESHOLD).

Session-level like every domain module: whatever happens here commits or rolls back
with the order or stock change it guards, in the caller's transaction.

Races. Two orders of one customer placed at the same moment must not both pass the cap
or a limit, and two sales of one variant must not both announce the same crossing:
- on SQLite, `Database.write()` runs one write transaction at a time (and SQLite allows
  one writer), so every check here sees the transaction before it;
- on PostgreSQL, a customer's checks take a transaction-scoped advisory lock on that
  customer (`lock_customer`): a second order of theirs waits for the first to commit,
  then counts it. Low-stock crossings are decided after the stock UPDATE, which holds
  the variant's row lock until commit: crossings of one variant are decided one
  transaction at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    Ban,
    BanEvent,
    Item,
    OrderLine,
    OrderStatus,
    ShopOrder,
    Variant,
    VariantGuard,
)

from .actors import Actor
from .errors import InvalidValue, ShopError
from .limits import FIELD_REASON, MAX_REASON
from .staff import staff_ids

# The key in `session.info` under which a shop's database hands its StockWatch to every
# session (services/context.py puts it in `Database.session_info`).
STOCK_WATCH = "stock_watch"

# Orders that count towards a purchase limit: every order not cancelled or refunded.
_NOT_COUNTED = (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)

# pg_advisory_xact_lock(int, int): the first int names what is locked ("a customer's
# order checks"); any constant not used by another lock of ours (migrate.py hashes text).
_CUSTOMER_LOCK_SPACE = 0x5147  # "QG": QQ shop, guard
_CUSTOMER_LOCK = text("SELECT pg_advisory_xact_lock(:space, :key)").bindparams(
    bindparam("space", type_=Integer), bindparam("key", type_=Integer)
)


# --- errors -------------------------------------------------------------------------


@dataclass
class Banned(ShopError):
    """The caller is on the shop's blacklist: they may browse, nothing more."""


class Unbannable(StrEnum):
    OWNER = "owner"
    STAFF = "staff"


@dataclass
class CannotBan(ShopError):
    """Owners and staff cannot be banned."""

    user_id: int
    why: Unbannable


@dataclass
class AlreadyBanned(ShopError):
    user_id: int


@dataclass
class NotBanned(ShopError):
    user_id: int


@dataclass
class TooManyUnpaidOrders(ShopError):
    """The customer already has `limit` unpaid orders (their codes, oldest first)."""

    limit: int
    codes: tuple[str, ...]


@dataclass
class PurchaseLimitReached(ShopError):
    """`bought` units of the variant are in the customer's orders that still count; one
    customer may have at most `limit`."""

    item_name: str
    variant_name: str
    limit: int
    bought: int


# --- the blacklist ------------------------------------------------------------------


async def is_banned(session: AsyncSession, shop_id: int, user_id: int) -> bool:
    found = await session.execute(
        select(Ban.id).where(Ban.shop_id == shop_id, Ban.user_id == user_id)
    )
    return found.first() is not None


async def ensure_not_banned(session: AsyncSession, shop_id: int, user_id: int) -> None:
    """Refuses a banned customer: called by every use case that orders, pays or opens a
    ticket (services/usecases), whichever door it came through."""
    if await is_banned(session, shop_id, user_id):
        raise Banned()


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise InvalidValue(FIELD_REASON, "too_long", MAX_REASON)
    return reason


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, for ON CONFLICT DO NOTHING (SQLite and PostgreSQL alike)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert


async def ban(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    reason: str,
    actor: Actor,
    owners: Collection[int],
    now: datetime,
) -> Ban:
    """Bans a customer (never an owner or staff member) and records who, when and why."""
    reason = _check_reason(reason)
    if user_id in owners:
        raise CannotBan(user_id, Unbannable.OWNER)
    if user_id in await staff_ids(session, shop_id):
        raise CannotBan(user_id, Unbannable.STAFF)
    # One statement the database decides: two staff banning the same number at once
    # get one ban and one AlreadyBanned, never a failed transaction.
    added = await session.execute(
        _insert(session)(Ban)
        .values(
            shop_id=shop_id,
            user_id=user_id,
            reason=reason,
            banned_by=actor.user_id or 0,
            banned_at=now,
        )
        .on_conflict_do_nothing(index_elements=["shop_id", "user_id"])
    )
    if not added.rowcount:  # type: ignore[attr-defined]
        raise AlreadyBanned(user_id)
    _ban_event(session, shop_id, user_id, "banned", actor, reason, now)
    await session.flush()
    found = await session.execute(select(Ban).where(Ban.shop_id == shop_id, Ban.user_id == user_id))
    return found.scalar_one()


async def unban(
    session: AsyncSession, shop_id: int, user_id: int, actor: Actor, now: datetime
) -> Ban:
    """Lifts a ban; returns the ban that was lifted (its reason, who set it, when)."""
    found = await session.execute(select(Ban).where(Ban.shop_id == shop_id, Ban.user_id == user_id))
    lifted = found.scalar_one_or_none()
    if lifted is None:
        raise NotBanned(user_id)
    removed = await session.execute(
        delete(Ban).where(Ban.id == lifted.id)  # type: ignore[arg-type]
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotBanned(user_id)  # another staff member lifted it a moment ago
    _ban_event(session, shop_id, user_id, "unbanned", actor, "", now)
    await session.flush()
    return lifted


def _ban_event(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    action: str,
    actor: Actor,
    reason: str,
    now: datetime,
) -> None:
    session.add(
        BanEvent(
            shop_id=shop_id,
            user_id=user_id,
            action=action,
            actor=actor.kind,
            actor_id=actor.user_id,
            reason=reason,
            at=now,
        )
    )


async def list_bans(session: AsyncSession, shop_id: int) -> list[Ban]:
    """Every ban, newest first."""
    rows = await session.execute(
        select(Ban).where(Ban.shop_id == shop_id).order_by(Ban.banned_at.desc(), Ban.id.desc())  # type: ignore[attr-defined]
    )
    return list(rows.scalars())


# --- ordering limits ----------------------------------------------------------------


async def lock_customer(session: AsyncSession, shop_id: int, user_id: int) -> None:
    """Serialises the order checks of one customer until this transaction ends. SQLite
    needs nothing (one write transaction at a time); PostgreSQL takes an advisory lock
    (re-entrant within a transaction). Two customers may share a key by hashing: that
    only makes one wait a moment."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = (shop_id * 1_000_003 + user_id) % 2_147_483_647
    await session.execute(_CUSTOMER_LOCK, {"space": _CUSTOMER_LOCK_SPACE, "key": key})


async def unpaid_order_codes(session: AsyncSession, shop_id: int, user_id: int) -> list[str]:
    rows = await session.execute(
        select(ShopOrder.code)
        .where(
            ShopOrder.shop_id == shop_id,
            ShopOrder.user_id == user_id,
            ShopOrder.status == OrderStatus.PENDING_PAYMENT.value,
        )
        .order_by(ShopOrder.created_at, ShopOrder.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def check_unpaid_cap(
    session: AsyncSession, shop_id: int, user_id: int, max_unpaid_orders: int
) -> None:
    """Refuses a new order while the customer has `max_unpaid_orders` unpaid ones (stock
    held by unpaid orders is what abusers aim at). 0: no cap."""
    if max_unpaid_orders <= 0:
        return
    await lock_customer(session, shop_id, user_id)
    codes = await unpaid_order_codes(session, shop_id, user_id)
    if len(codes) >= max_unpaid_orders:
        raise TooManyUnpaidOrders(max_unpaid_orders, tuple(codes))


async def check_purchase_limits(
    session: AsyncSession, shop_id: int, user_id: int, wanted: Mapping[int, int]
) -> None:
    """Refuses `wanted` ({variant_id: more units}) if it would take the customer past a
    variant's /限购, counting every order of theirs not cancelled or refunded. Called in
    the transaction that reserves the stock (orders.place_order, amend_quantity)."""
    if not wanted:
        return
    limits = dict(
        (
            await session.execute(
                select(VariantGuard.variant_id, VariantGuard.purchase_limit).where(
                    VariantGuard.variant_id.in_(list(wanted)),  # type: ignore[attr-defined]
                    VariantGuard.purchase_limit.is_not(None),  # type: ignore[union-attr]
                )
            )
        ).all()
    )
    if not limits:
        return
    await lock_customer(session, shop_id, user_id)
    bought = dict(
        (
            await session.execute(
                select(OrderLine.variant_id, func.sum(OrderLine.quantity))
                .join(ShopOrder, ShopOrder.id == OrderLine.order_id)
                .where(
                    ShopOrder.shop_id == shop_id,
                    ShopOrder.user_id == user_id,
                    ShopOrder.status.not_in(_NOT_COUNTED),  # type: ignore[attr-defined]
                    OrderLine.variant_id.in_(list(limits)),  # type: ignore[attr-defined]
                )
                .group_by(OrderLine.variant_id)
            )
        ).all()
    )
    for variant_id, limit in sorted(limits.items()):
        already = int(bought.get(variant_id) or 0)
        if already + wanted[variant_id] > limit:
            item_name, variant_name = (
                await session.execute(
                    select(Item.name, Variant.name)
                    .join(Variant, Variant.item_id == Item.id)
                    .where(Variant.id == variant_id)
                )
            ).one()
            raise PurchaseLimitReached(item_name, variant_name, limit, already)


async def ensure_customer_may_order(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    max_unpaid_orders: int,
    banned: bool,
    unpaid: int,
) -> None:
    """The ban and the unpaid-order cap of ensure_may_order, on what was read with the
    goods (services/placing.py: one statement for everything 确认 needs); the codes are
    read only to refuse."""
    if banned:
        raise Banned()
    if 0 < max_unpaid_orders <= unpaid:
        codes = await unpaid_order_codes(session, shop_id, user_id)
        raise TooManyUnpaidOrders(max_unpaid_orders, tuple(codes))


async def ensure_may_order(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    max_unpaid_orders: int,
    wanted: Mapping[int, int] | None = None,
) -> None:
    """Everything that stops a customer from starting or placing an order: a ban, the
    unpaid-order cap and (given what they want) the purchase limits."""
    await ensure_not_banned(session, shop_id, user_id)
    await check_unpaid_cap(session, shop_id, user_id, max_unpaid_orders)
    if wanted:
        await check_purchase_limits(session, shop_id, user_id, wanted)


# --- variant settings ---------------------------------------------------------------


@dataclass(frozen=True)
class StockWatch:
    """What low-stock alerts need from the shop's settings: the shop-wide threshold
    (LOW_STOCK_THRESHOLD, 0: off) and the owners, who hear of it with the staff. A
    shop's database carries it to every session (`STOCK_WATCH` in `session.info`), so
    the domain functions that change stock need no extra argument for it."""

    threshold: int = 0
    owners: frozenset[int] = frozenset()


def stock_watch(session: AsyncSession) -> StockWatch:
    watch = session.info.get(STOCK_WATCH)
    return watch if isinstance(watch, StockWatch) else StockWatch()


@dataclass(frozen=True)
class GuardView:
    """A variant with its safeguards, for replies and reports."""

    item_id: int
    item_name: str
    position: int
    variant_name: str
    stock: int
    purchase_limit: int | None
    own_threshold: int | None  # its /预警; None: the shop-wide threshold applies
    threshold: int  # the threshold in force (0: none)
    alerted: bool  # staff were told of the current crossing


def _effective(own: int | None, shop_threshold: int) -> int:
    return own if own is not None else shop_threshold


async def _ensure_guard(
    session: AsyncSession, shop_id: int, variant_id: int, now: datetime
) -> None:
    """The variant's guard row exists afterwards (a concurrent insert is no error)."""
    await session.execute(
        _insert(session)(VariantGuard)
        .values(
            variant_id=variant_id,
            shop_id=shop_id,
            low_stock_alerted=False,
            low_stock_alerts=0,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["variant_id"])
    )


_VARIANT = Variant.__table__.c  # type: ignore[attr-defined]
_GUARD = VariantGuard.__table__.c  # type: ignore[attr-defined]
_GUARD_VIEW_COLUMNS = (
    Item.id,
    Item.name,
    _VARIANT.position,
    _VARIANT.name,
    _VARIANT.stock,
    _GUARD.purchase_limit,
    _GUARD.low_stock_threshold,
    _GUARD.low_stock_alerted,
)


def _guard_view(row: Any, shop_threshold: int) -> GuardView:
    item_id, item_name, position, variant_name, stock, limit, own, alerted = row
    return GuardView(
        int(item_id),
        item_name,
        int(position),
        variant_name,
        int(stock),
        limit,
        own,
        _effective(own, shop_threshold),
        bool(alerted),
    )


async def _view(session: AsyncSession, variant_id: int, shop_threshold: int) -> GuardView:
    row = (
        await session.execute(
            select(*_GUARD_VIEW_COLUMNS)
            .select_from(Variant)
            .join(Item, Item.id == _VARIANT.item_id)
            .outerjoin(VariantGuard, _GUARD.variant_id == _VARIANT.id)
            .where(_VARIANT.id == variant_id)
        )
    ).one()
    return _guard_view(row, shop_threshold)


async def set_purchase_limit(
    session: AsyncSession, variant: Variant, limit: int | None, now: datetime
) -> GuardView:
    """/限购: at most `limit` units per customer (None: no limit). Orders already placed
    stay; the limit counts them when the customer orders again."""
    variant_id = variant.id or 0
    await _ensure_guard(session, variant.shop_id, variant_id, now)
    await session.execute(
        update(VariantGuard)
        .where(_GUARD.variant_id == variant_id)
        .values(purchase_limit=limit, updated_at=now)
    )
    return await _view(session, variant_id, stock_watch(session).threshold)


async def set_low_stock_threshold(
    session: AsyncSession, variant: Variant, threshold: int | None, now: datetime
) -> GuardView:
    """/预警: the variant's own threshold (None: the shop-wide one applies again). Staff
    set it looking at the stock, so no notice now: a variant already at or below it
    counts as announced, and the next notice comes with the next crossing."""
    variant_id = variant.id or 0
    await _ensure_guard(session, variant.shop_id, variant_id, now)
    stock = (
        await session.execute(select(_VARIANT.stock).where(_VARIANT.id == variant_id))
    ).scalar_one()
    effective = _effective(threshold, stock_watch(session).threshold)
    await session.execute(
        update(VariantGuard)
        .where(_GUARD.variant_id == variant_id)
        .values(
            low_stock_threshold=threshold,
            low_stock_alerted=effective > 0 and stock <= effective,
            updated_at=now,
        )
    )
    return await _view(session, variant_id, stock_watch(session).threshold)


async def guarded_variants(session: AsyncSession, shop_id: int) -> list[GuardView]:
    """Every variant with a purchase limit or its own threshold, by item and position."""
    rows = await session.execute(
        select(*_GUARD_VIEW_COLUMNS)
        .select_from(VariantGuard)
        .join(Variant, _VARIANT.id == _GUARD.variant_id)
        .join(Item, Item.id == _VARIANT.item_id)
        .where(
            _GUARD.shop_id == shop_id,
            or_(_GUARD.purchase_limit.is_not(None), _GUARD.low_stock_threshold.is_not(None)),
        )
        .order_by(Item.id, _VARIANT.position)
    )
    threshold = stock_watch(session).threshold
    return [_guard_view(row, threshold) for row in rows]


async def low_stock_variants(session: AsyncSession, shop_id: int) -> list[GuardView]:
    """Variants of on-shelf items that are sold out or at or below their threshold,
    lowest stock first."""
    threshold = stock_watch(session).threshold
    in_force = func.coalesce(_GUARD.low_stock_threshold, threshold)
    rows = await session.execute(
        select(*_GUARD_VIEW_COLUMNS)
        .select_from(Variant)
        .join(Item, Item.id == _VARIANT.item_id)
        .outerjoin(VariantGuard, _GUARD.variant_id == _VARIANT.id)
        .where(
            Item.shop_id == shop_id,
            Item.listed.is_(True),  # type: ignore[attr-defined]
            or_(_VARIANT.stock <= 0, _VARIANT.stock <= in_force),
        )
        .order_by(_VARIANT.stock, Item.id, _VARIANT.position)
    )
    return [_guard_view(row, threshold) for row in rows]


# --- low-stock alerts ---------------------------------------------------------------


async def after_stock_change(session: AsyncSession, variant_id: int, now: datetime) -> bool:
    """The one place low-stock alerts are decided. Call it after changing a variant's
    stock in this transaction (orders.place_order, amend_quantity, cancellations and
    refunds that release stock, catalog.change_stock): when the stock is at or below
    the threshold in force and staff were not yet told, it queues one staff notice in
    this transaction; once the stock is above the threshold again, it re-arms. Returns
    whether a notice was queued.

    The caller's stock UPDATE holds the variant's row lock until commit, so concurrent
    sales of one variant decide their crossings one after another (PostgreSQL; SQLite
    writes one transaction at a time anyway)."""
    watch = stock_watch(session)
    row = (
        await session.execute(
            select(
                _VARIANT.shop_id,
                _VARIANT.stock,
                _GUARD.variant_id,
                _GUARD.low_stock_threshold,
                _GUARD.low_stock_alerted,
                _GUARD.low_stock_alerts,
            )
            .select_from(Variant)
            .outerjoin(VariantGuard, _GUARD.variant_id == _VARIANT.id)
            .where(_VARIANT.id == variant_id)
        )
    ).one_or_none()
    if row is None:
        return False
    shop_id, stock, guarded, own, alerted, alerts = row
    threshold = _effective(own, watch.threshold)
    if threshold <= 0 or stock > threshold:
        if alerted:  # back above it (or no threshold any more): the next fall is news
            await session.execute(
                update(VariantGuard)
                .where(_GUARD.variant_id == variant_id)
                .values(low_stock_alerted=False, updated_at=now)
            )
        return False
    if alerted:
        return False
    if guarded is None:
        await _ensure_guard(session, shop_id, variant_id, now)
        alerts = 0
    crossing = int(alerts or 0) + 1
    await session.execute(
        update(VariantGuard)
        .where(_GUARD.variant_id == variant_id)
        .values(low_stock_alerted=True, low_stock_alerts=crossing, updated_at=now)
    )
    view = await _view(session, variant_id, watch.threshold)
    # Imported here: notices reads aftersales, which reads orders, which reads this.
    from . import notices

    await notices.to_staff(
        session,
        shop_id,
        watch.owners,
        notices.low_stock_for_staff(view),
        f"lowstock:{variant_id}:{crossing}",
        now,
    )
    return True
