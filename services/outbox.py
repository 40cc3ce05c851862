"""The outbox: every message the bot sends on its own initiative is a row first.

A dispatcher claims due rows, sends them through whatever bot is connected, paced, and
marks them sent. No bot connected or a failed call: the row stays and is retried with
backoff. A row is claimed (attempts+1, next attempt pushed out) before it is sent, so two
dispatchers, or one restarted mid-send, do not send it twice.

With several QQ accounts (services/accounts.py) a dispatcher claims only rows that one of
its own accounts can reach, rows nobody present can reach (an unknown target, or every
account that reaches it gone), and rows the accounts that reach them failed to send
ROUTE_FALLBACK_ATTEMPTS times."""

from __future__ import annotations

import functools
import json
import random
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    exists,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models.db import mark_notices_queued
from models.tables import AccountPresence, AccountReach, OutboxMessage

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120.0  # a claimed row is retried after this if its sender vanished
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 3600.0
# An account that has not heartbeated for this long is gone (its process stopped or lost
# the connection): other processes send the rows only it could reach.
ACCOUNT_GONE_SECONDS = 300.0
# A row the accounts reaching it failed to send this many times is open to every
# account: what the bot learned may be out of date (an account joined the group after it
# connected and nobody spoke there since). Counted in attempts, not age: after downtime
# every row is old, and routing must still hold for the backlog.
ROUTE_FALLBACK_ATTEMPTS = 3

Segment = dict[str, Any]


def text(value: str) -> Segment:
    return {"type": "text", "data": {"text": value}}


def at(user_id: int) -> Segment:
    return {"type": "at", "data": {"qq": str(user_id)}}


def image_file(path: str) -> Segment:
    """A stored image, by path under DATA_DIR; the dispatcher inlines the bytes."""
    return {"type": "image", "data": {"data_path": path}}


class TargetKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    # Not a chat: approving the friend request of the user `Target.id` (its flag in the
    # row's segments, see friend_request_flag). Paced like messages: QQ watches both.
    FRIEND_REQUEST = "friend_req"  # the column holds 10 characters


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TargetKind(self.kind))

    @classmethod
    def private(cls, user_id: int) -> Target:
        return cls(TargetKind.PRIVATE, user_id)

    @classmethod
    def group(cls, group_id: int) -> Target:
        return cls(TargetKind.GROUP, group_id)

    @classmethod
    def friend_request(cls, user_id: int) -> Target:
        return cls(TargetKind.FRIEND_REQUEST, user_id)


FRIEND_REQUEST_SEGMENT = "friend_request"


def friend_request_flag(flag: str) -> Segment:
    """The segments of a FRIEND_REQUEST row: the OneBot request's flag, which the
    approval (`set_friend_add_request`) names."""
    return {"type": FRIEND_REQUEST_SEGMENT, "data": {"flag": flag}}


def request_flag(segments: list[Segment]) -> str:
    """The flag of a FRIEND_REQUEST row's segments ("" when there is none)."""
    for segment in segments:
        if segment.get("type") == FRIEND_REQUEST_SEGMENT:
            return str(segment.get("data", {}).get("flag", ""))
    return ""


# By dialect (True: PostgreSQL): ON CONFLICT DO NOTHING is spelled by each.
_ENQUEUE = {
    postgres: dialect.insert(OutboxMessage)
    .values(
        target_type=bindparam("target_type"),
        target_id=bindparam("target_id"),
        segments=bindparam("segments"),
        dedupe_key=bindparam("dedupe_key"),
        attempts=0,
        next_attempt_at=bindparam("now"),
        created_at=bindparam("now"),
        last_error="",
    )
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    for postgres, dialect in ((False, sqlite), (True, postgresql))
}


async def enqueue(
    session: AsyncSession, target: Target, segments: list[Segment], dedupe_key: str, now: datetime
) -> bool:
    """Adds a message unless one with the same key exists (jobs re-run after a crash must
    not notify twice). Returns whether it was added."""
    dedupe_key = dedupe_key[:120]  # the column's width; checked and stored the same way
    # One statement that the database resolves: no read-then-insert window in which a
    # second process (PostgreSQL) could insert the same key and fail the transaction.
    # Prebuilt and run on the connection: every new order queues one (issue 16).
    statement = _ENQUEUE[session.get_bind().dialect.name == "postgresql"]
    connection = await session.connection()
    result = await connection.execute(
        statement,
        {
            "target_type": target.kind,
            "target_id": target.id,
            "segments": json.dumps(segments, ensure_ascii=False),
            "dedupe_key": dedupe_key,
            "now": now,
        },
    )
    added = bool(result.rowcount)
    if added:
        mark_notices_queued(session)
    return added


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed row as the dispatcher needs it: plain values from the claim's RETURNING,
    no ORM object (issue 16: building and refreshing one cost more than the UPDATE)."""

    id: int
    target_type: str
    target_id: int
    segments: str
    dedupe_key: str
    attempts: int  # counting this claim
    next_attempt_at: datetime  # when the claim runs out


_OUTBOX = OutboxMessage.__table__.c  # type: ignore[attr-defined]
# One array bind parameter for the accounts, used twice in the routing condition.
_MINE = bindparam("mine", expanding=True)


# Built once per (PostgreSQL?, routed?): every order's staff notice is claimed (issue 16).
@functools.cache
def _claim_statement(postgres: bool, routed: bool) -> Any:
    """Claims the oldest due row in one statement: `UPDATE … WHERE id = (the oldest due
    row) RETURNING`, no select-then-update. SQLite (≥ 3.35) and PostgreSQL both return
    rows from an UPDATE. Exclusive on SQLite because its writers take turns (the
    sub-select and the UPDATE are one statement); on PostgreSQL the sub-select locks the
    row it picks and skips rows another dispatcher has locked (SKIP LOCKED); the lock
    is held to the end of the claiming transaction."""
    due = (
        select(_OUTBOX.id)
        .where(
            _OUTBOX.sent_at.is_(None),
            _OUTBOX.failed_at.is_(None),
            _OUTBOX.next_attempt_at <= bindparam("now"),
        )
        .order_by(_OUTBOX.next_attempt_at, _OUTBOX.id)
        .limit(1)
    )
    if routed:
        due = due.where(_reachable(_MINE, bindparam("present_since")))
    if postgres:
        # Another process's dispatcher may be claiming the same oldest rows right now:
        # lock ours and skip theirs, so each takes different rows instead of both
        # queueing on the first one (and the loser then finding "nothing due").
        due = due.with_for_update(skip_locked=True, of=OutboxMessage.__table__)  # type: ignore[attr-defined]
    # correlate(None): the sub-select reads the outbox itself, not the UPDATE's row.
    return (
        update(OutboxMessage.__table__)  # type: ignore[attr-defined]
        .where(_OUTBOX.id == due.correlate(None).scalar_subquery())
        .values(attempts=_OUTBOX.attempts + 1, next_attempt_at=bindparam("until"))
        .returning(
            _OUTBOX.id,
            _OUTBOX.target_type,
            _OUTBOX.target_id,
            _OUTBOX.segments,
            _OUTBOX.dedupe_key,
            _OUTBOX.attempts,
            _OUTBOX.next_attempt_at,
        )
    )


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, accounts: Collection[int] | None = None
) -> list[Claimed]:
    """Due rows, oldest first, each claimed so nobody else sends it meanwhile. `accounts`:
    the QQ accounts connected to this dispatcher (None: every row, no routing)."""
    statement = _claim_statement(
        session.get_bind().dialect.name == "postgresql", accounts is not None
    )
    params: dict[str, Any] = {"now": now, "until": now + timedelta(seconds=CLAIM_SECONDS)}
    if accounts is not None:
        params["mine"] = list(accounts)
        params["present_since"] = now - timedelta(seconds=ACCOUNT_GONE_SECONDS)
    connection = await session.connection()
    claimed: list[Claimed] = []
    # One row per statement: RETURNING comes back in no particular order, and the
    # dispatcher claims one at a time anyway (each just before its own send).
    for _ in range(limit):
        row = (await connection.execute(statement, params)).first()
        if row is None:
            break
        claimed.append(Claimed(*row))
    return claimed


def reachable_by(accounts: Collection[int], now: datetime) -> ColumnElement[bool]:
    """The outbox rows a dispatcher with these accounts may claim: (a) one of them
    reaches the target, and for a person no other present account saw them later (the
    account the customer talked to last sends); (b) no present account reaches it (an
    unknown target: anyone tries, as with one account; or all that reach it are gone);
    (c) the reaching accounts failed ROUTE_FALLBACK_ATTEMPTS times."""
    return _reachable(list(accounts), now - timedelta(seconds=ACCOUNT_GONE_SECONDS))


def _reachable(
    mine: list[int] | BindParameter[Any], present_since: datetime | BindParameter[Any]
) -> ColumnElement[bool]:
    """reachable_by with values or bind parameters (the prebuilt claim passes those)."""
    present = select(AccountPresence.account_id).where(
        AccountPresence.last_seen_at >= present_since  # type: ignore[arg-type]
    )
    own = aliased(AccountReach)
    other = aliased(AccountReach)

    def reaches(reach: type[AccountReach]) -> ColumnElement[bool]:
        return and_(
            reach.target_type == OutboxMessage.target_type,  # type: ignore[arg-type]
            reach.target_id == OutboxMessage.target_id,  # type: ignore[arg-type]
        )

    # Compared with `own`, not the outbox row: SQLAlchemy correlates a subquery with the
    # query right around it only, and the outbox would join in again.
    seen_later_elsewhere = exists().where(
        other.target_type == own.target_type,
        other.target_id == own.target_id,
        other.account_id.not_in(mine),  # type: ignore[attr-defined]
        other.account_id.in_(present),  # type: ignore[attr-defined]
        other.last_seen_at > own.last_seen_at,  # type: ignore[arg-type]
    )
    mine_reaches = exists().where(
        reaches(own),
        own.account_id.in_(mine),  # type: ignore[attr-defined]
        or_(
            OutboxMessage.target_type == TargetKind.GROUP.value,  # type: ignore[arg-type]
            not_(seen_later_elsewhere),
        ),
    )
    present_reaches = exists().where(
        reaches(other),
        other.account_id.in_(present),  # type: ignore[attr-defined]
    )
    return or_(
        mine_reaches,
        not_(present_reaches),
        OutboxMessage.attempts >= ROUTE_FALLBACK_ATTEMPTS,  # type: ignore[operator]
    )


_MARK_SENT = (
    update(OutboxMessage.__table__)  # type: ignore[attr-defined]
    .where(_OUTBOX.id == bindparam("message_id"))
    .values(sent_at=bindparam("now"), last_error="")
)


async def mark_sent(session: AsyncSession, message_id: int, now: datetime) -> None:
    connection = await session.connection()
    await connection.execute(_MARK_SENT, {"message_id": message_id, "now": now})


def backoff(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    )


# A claimed row: the dispatcher's own Claimed, or an OutboxMessage read some other way.
Message = Claimed | OutboxMessage


async def mark_failed(session: AsyncSession, message: Message, error: str, now: datetime) -> bool:
    """Schedules a retry with backoff; after MAX_ATTEMPTS the row is given up (failed_at).
    Returns True when it was given up."""
    give_up = message.attempts >= MAX_ATTEMPTS
    values: dict[str, Any] = {"last_error": error[:300]}
    if give_up:
        values["failed_at"] = now
    else:
        values["next_attempt_at"] = now + backoff(message.attempts)
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values)  # type: ignore[arg-type]
    )
    return give_up


async def release_unsent(session: AsyncSession, message: Message, now: datetime) -> None:
    """Gives a claimed row back untouched (no bot was connected): not an attempt."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id)  # type: ignore[arg-type]
        .values(attempts=max(0, message.attempts - 1), next_attempt_at=now)
    )


def decode(message: Message) -> list[Segment]:
    return list(json.loads(message.segments))


@dataclass
class Pacer:
    """At least `interval` (plus up to 30 % jitter) between two sends and at most
    `per_minute` in any 60 s: QQ flags accounts that post in machine-regular bursts."""

    interval: float
    per_minute: int
    rng: random.Random = field(default_factory=random.Random)
    _sent: deque[float] = field(default_factory=deque)
    _next_at: float = 0.0

    def wait_time(self, now: float) -> float:
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        wait = max(0.0, self._next_at - now)
        if len(self._sent) >= self.per_minute:
            # The send `per_minute` places back must be a full minute old (robust to
            # float error leaving an extra old entry in the window).
            wait = max(wait, self._sent[-self.per_minute] + 60.0 - now)
        return wait

    def record(self, now: float) -> None:
        self._sent.append(now)
        self._next_at = now + self.interval * (1 + 0.3 * self.rng.random())
