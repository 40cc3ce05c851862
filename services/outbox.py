"""The outbox: every message the bot sends on its own initiative is a row first.

A dispatcher claims due rows, sends them through whatever bot is connected, paced, and
marks them sent. No bot connected or a failed call: the row stays and is retried with
backoff. A row is claimed (attempts+1, next attempt pushed out) before it is sent, so two
dispatchers, or one restarted mid-send, do not send it twice."""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import mark_notices_queued
from models.tables import OutboxMessage

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120.0  # a claimed row is retried after this if its sender vanished
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 3600.0

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


async def enqueue(
    session: AsyncSession, target: Target, segments: list[Segment], dedupe_key: str, now: datetime
) -> bool:
    """Adds a message unless one with the same key exists (jobs re-run after a crash must
    not notify twice). Returns whether it was added."""
    dedupe_key = dedupe_key[:120]  # the column's width; checked and stored the same way
    # One statement that the database resolves: no read-then-insert window in which a
    # second process (PostgreSQL) could insert the same key and fail the transaction.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(OutboxMessage)
        .values(
            target_type=target.kind,
            target_id=target.id,
            segments=json.dumps(segments, ensure_ascii=False),
            dedupe_key=dedupe_key,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            last_error="",
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(statement)
    added = bool(result.rowcount)  # type: ignore[attr-defined]
    if added:
        mark_notices_queued(session)
    return added


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[OutboxMessage]:
    """Due rows, oldest first, each claimed so nobody else sends it meanwhile."""
    due = (
        select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),  # type: ignore[union-attr]
            OutboxMessage.failed_at.is_(None),  # type: ignore[union-attr]
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Another process's dispatcher may be claiming the same oldest rows right now:
        # lock ours and skip theirs, so each takes different rows instead of both
        # queueing on the first one (and the loser then finding "nothing due").
        due = due.with_for_update(skip_locked=True)
    rows = list((await session.execute(due)).scalars())
    # The conditional UPDATE is what makes a claim exclusive on SQLite (one writer, no
    # row locks); under the row lock above it always succeeds.
    claimed = []
    for row in rows:
        result = await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.attempts == row.attempts)  # type: ignore[arg-type]
            .values(
                attempts=row.attempts + 1, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS)
            )
        )
        if result.rowcount:  # type: ignore[attr-defined]
            await session.refresh(row)
            claimed.append(row)
    return claimed


async def mark_sent(session: AsyncSession, message_id: int, now: datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(sent_at=now, last_error="")
    )  # type: ignore[arg-type]


def backoff(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    )


async def mark_failed(
    session: AsyncSession, message: OutboxMessage, error: str, now: datetime
) -> bool:
    """Schedules a retry with backoff; after MAX_ATTEMPTS the row is given up (failed_at).
    Returns True when it was given up."""
    give_up = message.attempts >= MAX_ATTEMPTS
    values: dict[str, Any] = {"last_error": error[:300]}
    if give_up:
        values["failed_at"] = now
    else:
        values["next_attempt_at"] = now + backoff(message.attempts)
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values)
    )  # type: ignore[arg-type]
    return give_up


async def release_unsent(session: AsyncSession, message: OutboxMessage, now: datetime) -> None:
    """Gives a claimed row back untouched (no bot was connected): not an attempt."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id)  # type: ignore[arg-type]
        .values(attempts=max(0, message.attempts - 1), next_attempt_at=now)
    )


def decode(message: OutboxMessage) -> list[Segment]:
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
