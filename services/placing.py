"""The order path in few statements (issue 16): what /下单 and 确认 read, checked in
Python, and the rows they write, as prebuilt SQLAlchemy Core statements on the session's
connection.

Why: each statement through the ORM and aiosqlite's thread costs about 0.45 ms of CPU
(0.2 ms as Core on the connection), and 确认 used to send 19 of them. Here everything a
line needs (the variant, its item, its guard, what the customer already bought of it)
and everything the customer needs (a ban, unpaid orders, the default address) comes in
one SELECT; the stock UPDATE returns the stock it left, so the low-stock decision needs
no second read unless the stock is at or below a threshold.

The rules are those of orders.place_order and safeguards, unchanged:
- stock is taken by a conditional UPDATE (`stock >= quantity`), the only oversell guard;
- on PostgreSQL the purchase limits are counted under the customer's advisory lock
  (safeguards.lock_customer), so two orders of one customer cannot both pass;
- the order, its lines and its `created` event are written in the caller's transaction.

Session-level like every domain module: never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from models.tables import (
    Address,
    Ban,
    CheckoutDraft,
    CheckoutDraftLine,
    DraftSource,
    Item,
    OrderEvent,
    OrderLine,
    OrderStatus,
    ShopOrder,
    Variant,
    VariantGuard,
)

from . import safeguards
from .addresses import AddressSnapshot
from .catalog import line_name
from .codes import new_code
from .errors import ItemUnavailable, MixedVirtualOrder, NoAddress, OutOfStock
from .limits import check_quantity

_ITEM = Item.__table__.c  # type: ignore[attr-defined]
_VARIANT = Variant.__table__.c  # type: ignore[attr-defined]
_GUARD = VariantGuard.__table__.c  # type: ignore[attr-defined]
_ADDRESS = Address.__table__.c  # type: ignore[attr-defined]
_ORDER = ShopOrder.__table__.c  # type: ignore[attr-defined]
_LINE = OrderLine.__table__.c  # type: ignore[attr-defined]
_BAN = Ban.__table__.c  # type: ignore[attr-defined]
_DRAFT = CheckoutDraft.__table__.c  # type: ignore[attr-defined]
_DRAFT_LINE = CheckoutDraftLine.__table__.c  # type: ignore[attr-defined]

T = TypeVar("T")

_SHOP = bindparam("shop_id")
_USER = bindparam("user_id")
_NOT_COUNTED = (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)


# --- what is read -------------------------------------------------------------------


def built(model: type[T], **values: Any) -> T:
    """A model instance the way the ORM builds one it loaded (no __init__: SQLModel's
    runs pydantic's defaults, which inspect the default factories' signatures each time),
    with `values` as its loaded attributes. About a quarter of /下单's CPU went to
    constructing three such objects."""
    instance: T = model.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    instance.__dict__.update(values)
    return instance


@dataclass(frozen=True)
class Goods:
    """A variant with its item and guard, as one row of the reads below."""

    variant_id: int
    item_id: int
    item_shop_id: int
    item_name: str
    listed: bool
    virtual: bool
    position: int
    variant_name: str
    price_fen: int
    stock: int
    guarded: bool  # a variant_guard row exists
    purchase_limit: int | None
    own_threshold: int | None
    alerted: bool
    alerts: int
    bought: int  # units in the customer's counted orders (read only when limited)

    @property
    def name(self) -> str:
        return line_name(self.item_name, self.variant_name)

    def item(self) -> Item:
        """A detached Item with what summaries and replies show (never flushed)."""
        return built(
            Item,
            id=self.item_id,
            shop_id=self.item_shop_id,
            name=self.item_name,
            listed=self.listed,
            virtual=self.virtual,
        )

    def variant(self) -> Variant:
        return built(
            Variant,
            id=self.variant_id,
            shop_id=self.item_shop_id,
            item_id=self.item_id,
            position=self.position,
            name=self.variant_name,
            price_fen=self.price_fen,
            stock=self.stock,
        )


@dataclass(frozen=True)
class Customer:
    """What stops or completes a customer's order, read with the goods."""

    banned: bool
    unpaid: int  # their unpaid orders
    address: AddressSnapshot | None  # the default address (None: none saved)


_BOUGHT = (
    select(func.coalesce(func.sum(_LINE.quantity), 0))
    .select_from(ShopOrder.__table__.join(OrderLine.__table__, _LINE.order_id == _ORDER.id))
    .where(
        _ORDER.shop_id == _SHOP,
        _ORDER.user_id == _USER,
        _ORDER.status.not_in(_NOT_COUNTED),
        _LINE.variant_id == _VARIANT.id,
    )
    .correlate(Variant.__table__)
    .scalar_subquery()
)
_GOODS_COLUMNS = (
    _VARIANT.id,
    _ITEM.id,
    _ITEM.shop_id,
    _ITEM.name,
    _ITEM.listed,
    _ITEM.virtual,
    _VARIANT.position,
    _VARIANT.name,
    _VARIANT.price_fen,
    _VARIANT.stock,
    _GUARD.variant_id,
    _GUARD.purchase_limit,
    _GUARD.low_stock_threshold,
    _GUARD.low_stock_alerted,
    _GUARD.low_stock_alerts,
    # Counted only for a limited variant (most have no limit).
    case((_GUARD.purchase_limit.is_(None), 0), else_=_BOUGHT),
)
_GOODS_WIDTH = len(_GOODS_COLUMNS)
_DEFAULT_ADDRESS_ID = (
    select(_ADDRESS.id)
    .where(_ADDRESS.shop_id == _SHOP, _ADDRESS.user_id == _USER)
    .order_by(_ADDRESS.is_default.desc(), _ADDRESS.id)
    .limit(1)
    .scalar_subquery()
)
_CUSTOMER_COLUMNS = (
    exists().where(_BAN.shop_id == _SHOP, _BAN.user_id == _USER),
    select(func.count())
    .where(
        _ORDER.shop_id == _SHOP,
        _ORDER.user_id == _USER,
        _ORDER.status == OrderStatus.PENDING_PAYMENT.value,
    )
    .scalar_subquery(),
    _ADDRESS.name,
    _ADDRESS.phone,
    _ADDRESS.detail,
)


def _goods(row: Sequence[Any]) -> Goods | None:
    """The goods columns of a row; None when its variant (or item) is gone."""
    (
        variant_id,
        item_id,
        item_shop_id,
        item_name,
        listed,
        virtual,
        position,
        variant_name,
        price_fen,
        stock,
        guarded,
        limit,
        own,
        alerted,
        alerts,
        bought,
    ) = row[:_GOODS_WIDTH]
    if variant_id is None or item_id is None:
        return None
    return Goods(
        int(variant_id),
        int(item_id),
        int(item_shop_id),
        item_name,
        bool(listed),
        bool(virtual),
        int(position),
        variant_name,
        int(price_fen),
        int(stock),
        guarded is not None,
        limit,
        own,
        bool(alerted),
        int(alerts or 0),
        int(bought or 0),
    )


def _customer(row: Sequence[Any], offset: int) -> Customer:
    banned, unpaid, name, phone, detail = row[offset : offset + len(_CUSTOMER_COLUMNS)]
    address = AddressSnapshot(name, phone, detail) if name is not None else None
    return Customer(bool(banned), int(unpaid or 0), address)


def _with_goods(statement: Select[Any]) -> Select[Any]:
    return statement.outerjoin(VariantGuard.__table__, _GUARD.variant_id == _VARIANT.id).outerjoin(
        Address.__table__, _ADDRESS.id == _DEFAULT_ADDRESS_ID
    )


# Whether the customer has a summary waiting in this chat: /下单 deletes it only then
# (most have none: 确认 used it), one statement fewer per /下单.
_DRAFT_WAITING = exists().where(
    _DRAFT.shop_id == _SHOP,
    func.coalesce(_DRAFT.group_id, 0) == bindparam("chat"),
    _DRAFT.user_id == _USER,
)
# Every variant of one item (/下单 resolves the typed position among them).
_ITEM_GOODS = _with_goods(
    select(*_GOODS_COLUMNS, *_CUSTOMER_COLUMNS, _DRAFT_WAITING)
    .select_from(Item.__table__)
    .outerjoin(Variant.__table__, _VARIANT.item_id == _ITEM.id)
).where(_ITEM.id == bindparam("item_id"))
_ITEM_GOODS = _ITEM_GOODS.order_by(_VARIANT.position)
# Given variants (orders.place_order).
_GOODS_BY_ID = _with_goods(
    select(*_GOODS_COLUMNS)
    .select_from(Variant.__table__)
    .join(Item.__table__, _ITEM.id == _VARIANT.item_id)
).where(_VARIANT.id.in_(bindparam("variant_ids", expanding=True)))


_CONNECTION = "placing_connection"


async def connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection: Core statements on it skip the ORM's per-statement work
    (about half the CPU of a statement here). Kept in `session.info` for the rest of the
    session's transaction: asking the session again costs a greenlet switch (about 14 µs)
    and 确认 asks five times."""
    transaction = session.sync_session.get_transaction()
    kept = session.info.get(_CONNECTION)
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1]  # type: ignore[no-any-return]
    conn = await session.connection()
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), conn)
    return conn


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@dataclass(frozen=True)
class ItemGoods:
    shop_id: int
    listed: bool
    variants: list[Goods]  # by position
    customer: Customer
    draft_waiting: bool  # the customer has a summary in this chat


async def item_goods(
    session: AsyncSession, shop_id: int, user_id: int, item_id: int, group_id: int | None
) -> ItemGoods | None:
    """Every variant of the item, the customer's facts and whether they have a summary in
    this chat, in one statement; None when there is no such item."""
    conn = await connection(session)
    params = {"item_id": item_id, "shop_id": shop_id, "user_id": user_id, "chat": group_id or 0}
    rows = (await conn.execute(_ITEM_GOODS, params)).all()
    if not rows:
        return None
    first = rows[0]
    return ItemGoods(
        int(first[2]),
        bool(first[4]),
        [found for row in rows if (found := _goods(row)) is not None],
        _customer(first, _GOODS_WIDTH),
        bool(first[_GOODS_WIDTH + len(_CUSTOMER_COLUMNS)]),
    )


async def goods_by_id(
    session: AsyncSession, shop_id: int, user_id: int, variant_ids: Sequence[int]
) -> dict[int, Goods]:
    """The given variants (those that exist), by id. On PostgreSQL a read that finds a
    purchase limit is repeated under the customer's lock, so it counts what a racing
    order of theirs bought."""
    conn = await connection(session)
    params = {"variant_ids": list(variant_ids), "shop_id": shop_id, "user_id": user_id}
    found = {
        g.variant_id: g for row in (await conn.execute(_GOODS_BY_ID, params)) if (g := _goods(row))
    }
    if _is_postgresql(session) and any(g.purchase_limit is not None for g in found.values()):
        await safeguards.lock_customer(session, shop_id, user_id)
        found = {
            g.variant_id: g
            for row in (await conn.execute(_GOODS_BY_ID, params))
            if (g := _goods(row))
        }
    return found


# --- what is checked ----------------------------------------------------------------


def check_limits(wanted: Sequence[tuple[Goods, int]]) -> None:
    """safeguards.check_purchase_limits on what was read: refuses more than a variant's
    /限购 counting every order of the customer not cancelled or refunded."""
    merged: dict[int, tuple[Goods, int]] = {}
    for goods, quantity in wanted:
        _, before = merged.get(goods.variant_id, (goods, 0))
        merged[goods.variant_id] = (goods, before + quantity)
    for variant_id in sorted(merged):
        goods, quantity = merged[variant_id]
        limit = goods.purchase_limit
        if limit is not None and goods.bought + quantity > limit:
            raise safeguards.PurchaseLimitReached(
                goods.item_name, goods.variant_name, limit, goods.bought
            )


def check_available(shop_id: int, goods: Goods | None, quantity: int) -> Goods:
    """On the shelf with `quantity` in stock now (the UPDATE on 确认 is what counts)."""
    if goods is None or not goods.listed or goods.item_shop_id != shop_id:
        raise ItemUnavailable(goods.item_name if goods else "该商品")
    if goods.stock < quantity:
        raise OutOfStock(goods.name, quantity, goods.stock)
    return goods


def virtual_only(wanted: Sequence[tuple[Goods, int]]) -> bool:
    """Card keys only (True) or physical goods only (False); never both in one order."""
    kinds = {goods.virtual for goods, _ in wanted}
    if len(kinds) > 1:
        raise MixedVirtualOrder()
    return kinds == {True}


# --- what is written ----------------------------------------------------------------

_TAKE_STOCK = (
    update(Variant.__table__)
    .where(_VARIANT.id == bindparam("v_id"), _VARIANT.stock >= bindparam("quantity"))
    .values(stock=_VARIANT.stock - bindparam("quantity"))
    .returning(_VARIANT.stock)
)
_GIVE_BACK = (
    update(Variant.__table__)
    .where(_VARIANT.id == bindparam("v_id"))
    .values(stock=_VARIANT.stock + bindparam("quantity"))
)
_STOCK = select(_VARIANT.stock).where(_VARIANT.id == bindparam("v_id"))
# A new code that collides with an existing one inserts nothing and is drawn again: one
# statement instead of a look-up before every insert.
_ORDER_VALUES = {
    name: bindparam(name)
    for name in (
        "code",
        "shop_id",
        "user_id",
        "group_id",
        "status",
        "total_fen",
        "receiver_name",
        "receiver_phone",
        "receiver_address",
        "remark",
        "virtual",
        "created_at",
        "updated_at",
        "expires_at",
    )
}
_INSERT_ORDER = {
    name: dialect.insert(ShopOrder.__table__)  # type: ignore[attr-defined]
    .values(paid_fen=0, refunded_fen=0, **_ORDER_VALUES)
    .on_conflict_do_nothing(index_elements=["code"])
    .returning(_ORDER.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_INSERT_LINE = insert(OrderLine.__table__)
_INSERT_EVENT = insert(OrderEvent.__table__)


def _refresh_stock(session: AsyncSession, variant_id: int, stock: int) -> None:
    """A Variant this session already holds shows the stock the UPDATE left (as the
    ORM's own UPDATE did), without marking it changed."""
    held = session.identity_map.get(session.sync_session.identity_key(Variant, variant_id))
    if held is not None:
        set_committed_value(held, "stock", stock)


async def take_stock(
    session: AsyncSession, wanted: Sequence[tuple[Goods, int]]
) -> list[tuple[Goods, int, int]]:
    """Takes every line's units, each in one conditional UPDATE, or none: a line short of
    stock puts back what the earlier ones took and raises OutOfStock. Returns (goods,
    quantity, stock left)."""
    conn = await connection(session)
    taken: list[tuple[Goods, int, int]] = []
    for goods, quantity in wanted:
        params = {"v_id": goods.variant_id, "quantity": quantity}
        left = (await conn.execute(_TAKE_STOCK, params)).scalar_one_or_none()
        if left is None:
            for earlier, units, _ in taken:
                await conn.execute(_GIVE_BACK, {"v_id": earlier.variant_id, "quantity": units})
            now_there = (await conn.execute(_STOCK, {"v_id": goods.variant_id})).scalar_one()
            raise OutOfStock(goods.name, quantity, int(now_there))
        taken.append((goods, quantity, int(left)))
    for goods, _, left in taken:
        _refresh_stock(session, goods.variant_id, left)
    return taken


async def after_stock_taken(
    session: AsyncSession, taken: Sequence[tuple[Goods, int, int]], now: datetime
) -> None:
    """safeguards.after_stock_change for each line, skipped when what was read shows it
    has nothing to do: no threshold in force or the stock still above it, and no alert
    to re-arm. Otherwise it decides under the row lock the UPDATE holds."""
    shop_threshold = safeguards.stock_watch(session).threshold
    for goods, _, left in taken:
        threshold = goods.own_threshold if goods.own_threshold is not None else shop_threshold
        if not goods.alerted and (threshold <= 0 or left > threshold):
            continue
        await safeguards.after_stock_change(session, goods.variant_id, now)


async def insert_order(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    group_id: int | None,
    taken: Sequence[tuple[Goods, int, int]],
    address: AddressSnapshot,
    remark: str,
    virtual: bool,
    now: datetime,
    unpaid_timeout: timedelta,
) -> ShopOrder:
    """The order, its lines and its `created` event, for stock already taken. Returns
    the order, persistent in the session (no flush, no re-read)."""
    conn = await connection(session)
    total = sum(goods.price_fen * quantity for goods, quantity, _ in taken)
    values: dict[str, Any] = {
        "shop_id": shop_id,
        "user_id": user_id,
        "group_id": group_id,
        "status": OrderStatus.PENDING_PAYMENT.value,
        "total_fen": total,
        "receiver_name": address.name,
        "receiver_phone": address.phone,
        "receiver_address": address.detail,
        "remark": remark,
        "virtual": virtual,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + unpaid_timeout,
    }
    statement = _INSERT_ORDER[session.get_bind().dialect.name]
    order_id = None
    while order_id is None:
        values["code"] = new_code()
        order_id = (await conn.execute(statement, values)).scalar_one_or_none()
    await conn.execute(
        _INSERT_LINE,
        [
            {
                "order_id": order_id,
                "variant_id": goods.variant_id,
                "item_id": goods.item_id,
                "position": goods.position,
                "item_name": goods.item_name,
                "variant_name": goods.variant_name,
                "unit_price_fen": goods.price_fen,
                "quantity": quantity,
            }
            for goods, quantity, _ in taken
        ],
    )
    await conn.execute(
        _INSERT_EVENT,
        {
            "order_id": order_id,
            "at": now,
            "actor": "customer",
            "actor_id": user_id,
            "from_status": None,
            "to_status": OrderStatus.PENDING_PAYMENT.value,
            "action": "created",
            "detail": f"{len(taken)} 种商品，合计 {total} 分",
            "reason": "",
        },
    )
    order = built(
        ShopOrder,
        id=order_id,
        paid_fen=0,
        refunded_fen=0,
        reminded_at=None,
        paid_at=None,
        closed_at=None,
        **values,
    )
    # Every column is set: attached as if loaded, so later changes in this session flush.
    make_transient_to_detached(order)
    session.add(order)
    return order


async def place(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    group_id: int | None,
    wanted: Sequence[tuple[Goods | None, int]],
    address: AddressSnapshot | None,
    remark: str,
    now: datetime,
    unpaid_timeout: timedelta,
) -> ShopOrder:
    """orders.place_order on goods already read: limits, availability, one kind of goods,
    an address for physical goods; then the stock, the order, the low-stock alerts.
    Raises (a ShopError) only before writing anything."""
    for _, quantity in wanted:
        check_quantity(quantity)
    check_limits([(goods, quantity) for goods, quantity in wanted if goods is not None])
    checked = [(check_available(shop_id, goods, quantity), quantity) for goods, quantity in wanted]
    virtual = virtual_only(checked)
    if virtual:
        address = AddressSnapshot("", "", "")  # keys go by private message, nowhere else
    elif address is None:
        raise NoAddress()
    taken = await take_stock(session, checked)
    order = await insert_order(
        session, shop_id, user_id, group_id, taken, address, remark, virtual, now, unpaid_timeout
    )
    await after_stock_taken(session, taken, now)
    return order


# --- the order summary --------------------------------------------------------------

_CHAT = bindparam("chat")


def _draft_in_chat() -> ColumnElement[bool]:
    return (
        (_DRAFT.shop_id == _SHOP)
        & (func.coalesce(_DRAFT.group_id, 0) == _CHAT)
        & (_DRAFT.user_id == _USER)
    )


_DELETE_DRAFT_IN_CHAT = delete(CheckoutDraft.__table__).where(_draft_in_chat())
_DELETE_DRAFT = delete(CheckoutDraft.__table__).where(_DRAFT.id == bindparam("draft_id"))
_INSERT_DRAFT = (
    insert(CheckoutDraft.__table__)
    .values(
        {
            name: bindparam(name)
            for name in (
                "shop_id",
                "group_id",
                "user_id",
                "source",
                "remark",
                "awaiting_address",
                "created_at",
                "expires_at",
            )
        }
    )
    .returning(_DRAFT.id)
)
_INSERT_DRAFT_LINE = insert(CheckoutDraftLine.__table__)


async def replace_draft(
    session: AsyncSession,
    shop_id: int,
    user_id: int,
    group_id: int | None,
    source: DraftSource,
    lines: Sequence[tuple[int, int, int]],
    remark: str,
    awaiting_address: bool,
    now: datetime,
    confirm_window: timedelta,
    *,
    replace: bool = True,
) -> CheckoutDraft:
    """Deletes the user's draft in this chat (its lines go with it) and writes the new
    one with its (variant id, quantity, unit price) lines. Returns it detached.
    `replace=False`: the caller read, in this transaction, that there is none."""
    conn = await connection(session)
    if replace:
        await delete_draft_in_chat(session, shop_id, user_id, group_id)
    values = {
        "shop_id": shop_id,
        "group_id": group_id,
        "user_id": user_id,
        "source": source,
        "remark": remark,
        "awaiting_address": awaiting_address,
        "created_at": now,
        "expires_at": now + confirm_window,
    }
    draft_id = (await conn.execute(_INSERT_DRAFT, values)).scalar_one()
    await conn.execute(
        _INSERT_DRAFT_LINE,
        [
            {
                "draft_id": draft_id,
                "position": position,
                "variant_id": variant_id,
                "quantity": quantity,
                "unit_price_fen": price,
            }
            for position, (variant_id, quantity, price) in enumerate(lines, start=1)
        ],
    )
    return built(CheckoutDraft, id=draft_id, **values)


async def delete_draft_in_chat(
    session: AsyncSession, shop_id: int, user_id: int, group_id: int | None
) -> None:
    conn = await connection(session)
    await conn.execute(
        _DELETE_DRAFT_IN_CHAT, {"shop_id": shop_id, "user_id": user_id, "chat": group_id or 0}
    )


async def delete_draft(session: AsyncSession, draft_id: int) -> bool:
    """Deletes a draft by id; False if it was gone (a concurrent 确认 used it)."""
    conn = await connection(session)
    result = await conn.execute(_DELETE_DRAFT, {"draft_id": draft_id})
    return bool(result.rowcount)


@dataclass(frozen=True)
class PendingLine:
    goods: Goods | None  # None: the variant is gone
    variant_id: int
    quantity: int
    unit_price_fen: int  # as the summary showed it


@dataclass(frozen=True)
class Pending:
    """A draft with everything 确认 needs, read in one statement."""

    draft_id: int
    shop_id: int
    user_id: int
    group_id: int | None
    source: DraftSource
    remark: str
    awaiting_address: bool
    expires_at: datetime
    lines: list[PendingLine]
    customer: Customer


_DRAFT_COLUMNS = (
    _DRAFT.id,
    _DRAFT.group_id,
    _DRAFT.source,
    _DRAFT.remark,
    _DRAFT.awaiting_address,
    _DRAFT.expires_at,
    _DRAFT_LINE.variant_id,
    _DRAFT_LINE.quantity,
    _DRAFT_LINE.unit_price_fen,
)


def _pending_select(where: ColumnElement[bool]) -> Select[Any]:
    return (
        _with_goods(
            select(*_GOODS_COLUMNS, *_CUSTOMER_COLUMNS, *_DRAFT_COLUMNS)
            .select_from(CheckoutDraft.__table__)
            .join(CheckoutDraftLine.__table__, _DRAFT_LINE.draft_id == _DRAFT.id)
            .outerjoin(Variant.__table__, _VARIANT.id == _DRAFT_LINE.variant_id)
            .outerjoin(Item.__table__, _ITEM.id == _VARIANT.item_id)
        )
        .where(where)
        .order_by(_DRAFT_LINE.position)
    )


_PENDING_IN_CHAT = _pending_select(_draft_in_chat())
_PENDING_BY_ID = _pending_select(
    (_DRAFT.id == bindparam("draft_id")) & (_DRAFT.shop_id == _SHOP) & (_DRAFT.user_id == _USER)
)


def _pending(rows: Sequence[Sequence[Any]], shop_id: int, user_id: int) -> Pending | None:
    if not rows:
        return None
    offset = _GOODS_WIDTH + len(_CUSTOMER_COLUMNS)
    draft_id, group_id, source, remark, awaiting, expires_at = rows[0][offset : offset + 6]
    lines = [
        PendingLine(_goods(row), int(row[offset + 6]), int(row[offset + 7]), int(row[offset + 8]))
        for row in rows
    ]
    return Pending(
        int(draft_id),
        shop_id,
        user_id,
        group_id,
        DraftSource(source),
        remark,
        bool(awaiting),
        expires_at,
        lines,
        _customer(rows[0], _GOODS_WIDTH),
    )


async def pending_in_chat(
    session: AsyncSession, shop_id: int, user_id: int, group_id: int | None, *, lock: bool
) -> Pending | None:
    """The user's draft in this chat with its goods and the customer's facts. `lock`: on
    PostgreSQL, take the customer's lock first, so the counts read are the ones an order
    placed in this transaction must respect (safeguards' module docstring)."""
    if lock and _is_postgresql(session):
        await safeguards.lock_customer(session, shop_id, user_id)
    conn = await connection(session)
    params = {"shop_id": shop_id, "user_id": user_id, "chat": group_id or 0}
    return _pending((await conn.execute(_PENDING_IN_CHAT, params)).all(), shop_id, user_id)


async def pending_by_id(
    session: AsyncSession, shop_id: int, user_id: int, draft_id: int, *, lock: bool
) -> Pending | None:
    if lock and _is_postgresql(session):
        await safeguards.lock_customer(session, shop_id, user_id)
    conn = await connection(session)
    params = {"shop_id": shop_id, "user_id": user_id, "draft_id": draft_id}
    return _pending((await conn.execute(_PENDING_BY_ID, params)).all(), shop_id, user_id)


def merged_quantities(wanted: Sequence[tuple[int, int]]) -> Mapping[int, int]:
    merged: dict[int, int] = {}
    for variant_id, quantity in wanted:
        merged[variant_id] = merged.get(variant_id, 0) + quantity
    return merged
