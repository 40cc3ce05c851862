"""Payment attempts at the EPay gateway: the rows, read and changed inside the caller's
transaction. The use cases (services/usecases/epay.py) decide when; amending an unpaid
order's quantities calls `void_live_attempts` in its own transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import AttemptState, PaymentAttempt, PayType, ShopOrder

from .epay import CreatedPayment

A = AttemptState
_ATTEMPT = PaymentAttempt.__table__.c  # type: ignore[attr-defined]


async def void_live_attempts(session: AsyncSession, order_id: int, now: datetime) -> int:
    """The order's total is changing: its live attempts must not pay it any more (money
    arriving for one is then a mismatch staff are told about). Returns how many."""
    result = await session.execute(
        update(PaymentAttempt)
        .where(_ATTEMPT.order_id == order_id, _ATTEMPT.state == A.LIVE.value)
        .values(state=A.VOIDED.value, next_check_at=None, checked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def reusable_attempt(
    session: AsyncSession, order: ShopOrder, pay_type: PayType, created_after: datetime
) -> PaymentAttempt | None:
    """The newest live attempt of this method for the order's current total, made after
    `created_after` (younger than the unpaid timeout)."""
    return (
        await session.execute(
            select(PaymentAttempt)
            .where(
                _ATTEMPT.order_id == order.id,
                _ATTEMPT.type == pay_type.value,
                _ATTEMPT.state == A.LIVE.value,
                _ATTEMPT.amount_fen == order.total_fen,
                _ATTEMPT.created_at > created_after,
            )
            .order_by(_ATTEMPT.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def next_out_trade_no(session: AsyncSession, order: ShopOrder) -> str:
    """`<order code>-<n>`: attempts are never deleted, so n only grows."""
    count = (
        await session.execute(
            select(func.count()).select_from(PaymentAttempt).where(_ATTEMPT.order_id == order.id)
        )
    ).scalar_one()
    return f"{order.code}-{int(count) + 1}"


def add_attempt(
    session: AsyncSession,
    order: ShopOrder,
    out_trade_no: str,
    pay_type: PayType,
    amount_fen: int,
    created: CreatedPayment,
    now: datetime,
    check_every: timedelta,
    *,
    live: bool = True,
) -> PaymentAttempt:
    """Stores what the gateway created. `live` False: the order changed while the
    gateway was asked, so the attempt is stored voided (a payment for it is a mismatch)."""
    attempt = PaymentAttempt(
        shop_id=order.shop_id,
        order_id=order.id or 0,
        out_trade_no=out_trade_no,
        type=pay_type.value,
        amount_fen=amount_fen,
        pay_url=created.link,
        qr_text=created.qr_text,
        state=(A.LIVE if live else A.VOIDED).value,
        created_at=now,
        next_check_at=now + check_every if live else None,
        trade_no=created.trade_no if live else None,
    )
    session.add(attempt)
    return attempt


async def find_attempt(
    session: AsyncSession, shop_id: int, out_trade_no: str
) -> tuple[PaymentAttempt, ShopOrder] | None:
    row = (
        await session.execute(
            select(PaymentAttempt, ShopOrder)
            .join(ShopOrder, ShopOrder.id == _ATTEMPT.order_id)  # type: ignore[arg-type]
            .where(_ATTEMPT.out_trade_no == out_trade_no, _ATTEMPT.shop_id == shop_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def attempts_due(
    session: AsyncSession, shop_id: int, now: datetime, limit: int, *, every_live: bool = False
) -> list[tuple[PaymentAttempt, ShopOrder]]:
    """Live attempts whose next check is due, the most overdue first; with `every_live`
    (staff asking now) every live attempt, due or not."""
    due = [] if every_live else [_ATTEMPT.next_check_at <= now]
    rows = await session.execute(
        select(PaymentAttempt, ShopOrder)
        .join(ShopOrder, ShopOrder.id == _ATTEMPT.order_id)  # type: ignore[arg-type]
        .where(
            _ATTEMPT.shop_id == shop_id,
            _ATTEMPT.state == A.LIVE.value,
            *due,
        )
        .order_by(_ATTEMPT.next_check_at, _ATTEMPT.id)
        .limit(limit)
    )
    return [(attempt, order) for attempt, order in rows]


async def attempts_to_ask(
    session: AsyncSession, order: ShopOrder
) -> list[tuple[PaymentAttempt, ShopOrder]]:
    """An order's attempts staff may ask the gateway about now: live ones, and expired
    ones (money may still have arrived after reconciliation gave up)."""
    rows = await session.execute(
        select(PaymentAttempt)
        .where(
            _ATTEMPT.order_id == order.id,
            _ATTEMPT.state.in_([A.LIVE.value, A.EXPIRED.value]),
        )
        .order_by(_ATTEMPT.id)
    )
    return [(attempt, order) for attempt in rows.scalars()]


async def mark_paid(session: AsyncSession, attempt_id: int, trade_no: str, now: datetime) -> None:
    """The gateway took money for this attempt (recorded, or reported to staff). A voided
    attempt stays voided."""
    await session.execute(
        update(PaymentAttempt)
        .where(_ATTEMPT.id == attempt_id, _ATTEMPT.state != A.VOIDED.value)
        .values(state=A.PAID.value, trade_no=trade_no, checked_at=now, next_check_at=None)
    )


async def checked_unpaid(
    session: AsyncSession, attempt_id: int, now: datetime, next_check_at: datetime | None
) -> None:
    """The gateway says not paid (or could not answer): ask again at `next_check_at`, or
    never (None: the attempt expires). Only a live attempt changes: a notify may have
    settled it meanwhile."""
    values: dict[str, object] = {"checked_at": now, "next_check_at": next_check_at}
    if next_check_at is None:
        values["state"] = A.EXPIRED.value
    await session.execute(
        update(PaymentAttempt)
        .where(_ATTEMPT.id == attempt_id, _ATTEMPT.state == A.LIVE.value)
        .values(**values)
    )
