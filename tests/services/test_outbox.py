"""services.outbox: queueing, claiming, retries, and the pacing of sends."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from models.db import Database
from models.tables import OutboxMessage
from models.types import utcnow
from services import outbox
from services.context import ShopContext
from services.outbox import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    CLAIM_SECONDS,
    MAX_ATTEMPTS,
    Pacer,
    Target,
)
from services.usecases import delivery

ALICE = Target("private", 30003)
GROUP = Target("group", 555000)


async def _enqueue(
    db: Database, key: str, now: datetime, target: Target = ALICE, body: str = "你好"
) -> bool:
    async with db.write() as s:
        return await outbox.enqueue(s, target, [outbox.text(body)], key, now)


async def _claim(db: Database, now: datetime, limit: int = 10) -> list[outbox.Claimed]:
    async with db.write() as s:
        return await outbox.claim_due(s, now, limit)


async def _rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def _row(db: Database, message_id: int) -> OutboxMessage:
    async with db.read() as s:
        row = await s.get(OutboxMessage, message_id)
        assert row is not None
        return row


# --- enqueue -----------------------------------------------------------------------------


async def test_enqueue_stores_target_and_segments(db: Database) -> None:
    now = utcnow()
    segments = [
        outbox.at(30003),
        outbox.text(" 订单号：ABCDEFGHJK 已发货"),
        outbox.image_file("media/x.png"),
    ]
    async with db.write() as s:
        assert await outbox.enqueue(s, GROUP, segments, "k1", now) is True
    [row] = await _rows(db)
    assert (row.target_type, row.target_id) == ("group", 555000)
    assert outbox.decode(row) == segments
    assert outbox.decode(row)[0] == {"type": "at", "data": {"qq": "30003"}}
    assert "订单号" in row.segments  # stored readable, not \u-escaped
    assert (row.attempts, row.sent_at, row.failed_at, row.last_error) == (0, None, None, "")
    assert row.next_attempt_at == row.created_at == now


async def test_enqueue_dedupes_by_key(db: Database) -> None:
    now = utcnow()
    assert await _enqueue(db, "order:X:expired", now) is True
    assert await _enqueue(db, "order:X:expired", now + timedelta(hours=1), body="别的内容") is False
    assert await _enqueue(db, "order:X:remind", now) is True
    rows = await _rows(db)
    assert [r.dedupe_key for r in rows] == ["order:X:expired", "order:X:remind"]
    assert outbox.decode(rows[0]) == [outbox.text("你好")]


async def test_enqueue_dedupes_even_after_the_row_was_sent(db: Database) -> None:
    now = utcnow()
    await _enqueue(db, "k", now)
    [row] = await _claim(db, now)
    async with db.write() as s:
        await outbox.mark_sent(s, row.id or 0, now)
    assert await _enqueue(db, "k", now + timedelta(days=1)) is False
    assert len(await _rows(db)) == 1


async def test_enqueue_dedupes_long_keys(db: Database) -> None:
    key = "announce:" + "x" * 130
    now = utcnow()
    assert await _enqueue(db, key, now) is True
    assert await _enqueue(db, key, now) is False


# --- claim_due ---------------------------------------------------------------------------


async def test_claim_due_oldest_first_and_only_due_rows(db: Database) -> None:
    t0 = utcnow()
    await _enqueue(db, "later", t0 + timedelta(seconds=30))
    await _enqueue(db, "second", t0 + timedelta(seconds=2))
    await _enqueue(db, "first", t0)
    await _enqueue(db, "third", t0 + timedelta(seconds=2))

    claimed = await _claim(db, t0 + timedelta(seconds=5))
    assert [m.dedupe_key for m in claimed] == ["first", "second", "third"]
    assert all(m.attempts == 1 for m in claimed)
    assert all(m.next_attempt_at == t0 + timedelta(seconds=5 + CLAIM_SECONDS) for m in claimed)

    # A second dispatcher at the same moment finds nothing.
    assert await _claim(db, t0 + timedelta(seconds=5)) == []
    # The later one becomes due on its own time.
    assert [m.dedupe_key for m in await _claim(db, t0 + timedelta(seconds=30))] == ["later"]


async def test_claim_due_respects_the_limit(db: Database) -> None:
    t0 = utcnow()
    for n in range(5):
        await _enqueue(db, f"k{n}", t0 + timedelta(milliseconds=n))
    first = await _claim(db, t0 + timedelta(seconds=1), limit=2)
    second = await _claim(db, t0 + timedelta(seconds=1), limit=2)
    third = await _claim(db, t0 + timedelta(seconds=1), limit=2)
    assert [m.dedupe_key for m in first] == ["k0", "k1"]
    assert [m.dedupe_key for m in second] == ["k2", "k3"]
    assert [m.dedupe_key for m in third] == ["k4"]


async def test_a_claimed_row_comes_back_if_its_sender_vanished(db: Database) -> None:
    t0 = utcnow()
    await _enqueue(db, "k", t0)
    [row] = await _claim(db, t0)
    assert await _claim(db, t0 + timedelta(seconds=CLAIM_SECONDS - 1)) == []
    [again] = await _claim(db, t0 + timedelta(seconds=CLAIM_SECONDS))
    assert again.id == row.id
    assert again.attempts == 2


async def test_mark_sent_is_final(db: Database) -> None:
    t0 = utcnow()
    await _enqueue(db, "k", t0)
    [row] = await _claim(db, t0)
    async with db.write() as s:
        await outbox.mark_sent(s, row.id or 0, t0 + timedelta(seconds=1))
    stored = await _row(db, row.id or 0)
    assert stored.sent_at == t0 + timedelta(seconds=1)
    assert stored.failed_at is None
    assert await _claim(db, t0 + timedelta(days=30)) == []


# --- failures ----------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    assert outbox.backoff(0) == timedelta(seconds=BACKOFF_BASE_SECONDS)
    assert outbox.backoff(1) == timedelta(seconds=10)
    assert outbox.backoff(2) == timedelta(seconds=20)
    assert outbox.backoff(3) == timedelta(seconds=40)
    assert outbox.backoff(7) == timedelta(seconds=640)
    assert outbox.backoff(20) == timedelta(seconds=BACKOFF_CAP_SECONDS)
    delays = [outbox.backoff(n) for n in range(1, 30)]
    assert delays == sorted(delays)


async def test_mark_failed_backs_off_then_gives_up(db: Database) -> None:
    now = utcnow()
    await _enqueue(db, "k", now)
    retry_delays = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [row] = await _claim(db, now)
        assert row.attempts == attempt
        async with db.write() as s:
            gave_up = await outbox.mark_failed(s, row, f"error {attempt}", now)
        stored = await _row(db, row.id or 0)
        assert stored.last_error == f"error {attempt}"
        if attempt < MAX_ATTEMPTS:
            assert gave_up is False
            assert stored.failed_at is None
            delay = stored.next_attempt_at - now
            assert delay == outbox.backoff(attempt)
            retry_delays.append(delay)
            # Not due before its time.
            assert await _claim(db, now + delay - timedelta(seconds=1)) == []
            now += delay
        else:
            assert gave_up is True
            assert stored.failed_at == now
    assert retry_delays == [timedelta(seconds=10 * 2**n) for n in range(MAX_ATTEMPTS - 1)]
    # Given up: never claimed again.
    assert await _claim(db, now + timedelta(days=365)) == []
    stored = (await _rows(db))[0]
    assert stored.attempts == MAX_ATTEMPTS
    assert stored.sent_at is None


async def test_mark_failed_truncates_long_errors(db: Database) -> None:
    now = utcnow()
    await _enqueue(db, "k", now)
    [row] = await _claim(db, now)
    async with db.write() as s:
        await outbox.mark_failed(s, row, "e" * 1000, now)
    assert len((await _row(db, row.id or 0)).last_error) == 300


async def test_release_unsent_is_not_an_attempt(db: Database) -> None:
    t0 = utcnow()
    await _enqueue(db, "k", t0)
    for n in range(MAX_ATTEMPTS + 3):  # more often than MAX_ATTEMPTS: never given up
        now = t0 + timedelta(seconds=n)
        [row] = await _claim(db, now)
        assert row.attempts == 1
        async with db.write() as s:
            await outbox.release_unsent(s, row, now)
        stored = await _row(db, row.id or 0)
        assert (stored.attempts, stored.next_attempt_at, stored.failed_at) == (0, now, None)
    # After a real failure the count goes on from there.
    [row] = await _claim(db, t0 + timedelta(minutes=1))
    assert row.attempts == 1


# --- pacing ------------------------------------------------------------------------------


EPS = 1e-6  # float rounding of `clock + wait`


def _simulate(pacer: Pacer, sends: int, start: float = 1000.0, latency: float = 0.0) -> list[float]:
    """A fake clock: wait what the pacer says, send, record; `latency` is how long the
    send itself takes before the next wait_time is asked (the dispatcher's order)."""
    clock = start
    times = []
    for _ in range(sends):
        clock += pacer.wait_time(clock)
        times.append(clock)
        pacer.record(clock)
        clock += latency
    return times


def _rate_violations(times: list[float], per_minute: int) -> list[int]:
    return [
        i for i in range(len(times) - per_minute) if times[i + per_minute] - times[i] < 60.0 - EPS
    ]


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_pacer_interval_and_per_minute(seed: int) -> None:
    pacer = Pacer(interval=1.5, per_minute=20, rng=random.Random(seed))
    times = _simulate(pacer, 25)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 1.5 for gap in gaps), gaps
    assert all(gap <= 1.5 * 1.3 + 1e-9 for gap in gaps[:19]), gaps  # jitter is at most 30 %
    # Never more than 20 sends in any 60 s window.
    assert _rate_violations(times, 20) == []
    for t in times:
        assert sum(1 for u in times if t <= u < t + 60.0 - EPS) <= 20
    # The 21st waited for the minute to pass.
    assert times[20] == pytest.approx(times[0] + 60.0)


@pytest.mark.parametrize("seed", range(50))
def test_pacer_holds_with_send_latency(seed: int) -> None:
    """As the dispatcher uses it: record after the send, ask again a little later."""
    pacer = Pacer(interval=1.5, per_minute=20, rng=random.Random(seed))
    times = _simulate(pacer, 200, latency=0.02)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.5
    assert _rate_violations(times, 20) == []


def test_pacer_per_minute_cap_on_an_exact_fake_clock() -> None:
    failing = {}
    for seed in range(50):
        times = _simulate(Pacer(interval=1.5, per_minute=20, rng=random.Random(seed)), 25)
        if violations := _rate_violations(times, 20):
            failing[seed] = violations
    assert failing == {}


def test_pacer_jitter_varies_the_gaps() -> None:
    times = _simulate(Pacer(interval=1.5, per_minute=20, rng=random.Random(7)), 15)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert len(gaps) > 5  # not machine-regular


def test_pacer_first_send_is_immediate_and_idle_time_counts() -> None:
    pacer = Pacer(interval=1.5, per_minute=20, rng=random.Random(0))
    assert pacer.wait_time(500.0) == 0.0
    pacer.record(500.0)
    assert 1.5 <= pacer.wait_time(500.0) <= 1.95
    assert pacer.wait_time(510.0) == 0.0  # long enough since the last one


def test_pacer_per_minute_cap_dominates_a_small_interval() -> None:
    pacer = Pacer(interval=0.1, per_minute=5, rng=random.Random(3))
    times = _simulate(pacer, 12, start=0.0)
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 60.0 - EPS
    assert times[5] == pytest.approx(times[0] + 60.0)
    assert times[10] == pytest.approx(times[5] + 60.0)


# --- the dispatch loop (services/usecases/delivery.py) ------------------------------------


async def test_dispatch_marks_every_sent_row_even_the_last_of_a_batch(
    shop_context: ShopContext,
) -> None:
    """A sent row is marked in the transaction of the next claim; the last one of a
    batch, which has no next claim, is marked on its own."""
    db = shop_context.database
    now = utcnow()
    for n in range(3):
        await _enqueue(db, f"k{n}", now - timedelta(seconds=3 - n), body=f"第{n}条")
    sent: list[str] = []

    async def send(target: Target, segments: list[outbox.Segment]) -> None:
        sent.append(segments[0]["data"]["text"])

    pacer = Pacer(0.0, 1000)
    assert await delivery.dispatch_due(shop_context, pacer, send, batch=2) == 2
    assert sent == ["第0条", "第1条"]
    rows = await _rows(db)
    assert [row.sent_at is not None for row in rows] == [True, True, False]
    assert rows[2].attempts == 0  # never claimed ahead of its send
    assert await delivery.dispatch_due(shop_context, pacer, send, batch=20) == 1
    assert all(row.sent_at is not None for row in await _rows(db))
    assert await delivery.dispatch_due(shop_context, pacer, send) == 0
    assert sent == ["第0条", "第1条", "第2条"]


async def test_a_claim_is_plain_values_of_the_claimed_row(db: Database) -> None:
    now = utcnow()
    await _enqueue(db, "k", now, target=GROUP, body="通知")
    [claimed] = await _claim(db, now)
    assert isinstance(claimed, outbox.Claimed)
    stored = await _row(db, claimed.id)
    assert (claimed.target_type, claimed.target_id, claimed.dedupe_key) == ("group", 555000, "k")
    assert (claimed.attempts, claimed.next_attempt_at) == (stored.attempts, stored.next_attempt_at)
    assert outbox.decode(claimed) == [outbox.text("通知")]
