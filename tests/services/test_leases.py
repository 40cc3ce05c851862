"""services.leases: one bot process at a time runs the clocks, another takes over when
the holder stops renewing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from models.db import Database
from models.tables import ClockLease
from models.types import utcnow
from services import leases

LENGTH = timedelta(minutes=2)


async def take(db: Database, holder: str, now: datetime, name: str = leases.CLOCKS) -> bool:
    async with db.write() as session:
        return await leases.acquire(session, name, holder, now, LENGTH)


async def holder_at(db: Database, now: datetime, name: str = leases.CLOCKS) -> str | None:
    async with db.read() as session:
        return await leases.current_holder(session, name, now)


async def test_first_taker_holds_and_renews_others_wait(db: Database) -> None:
    now = utcnow()
    assert await holder_at(db, now) is None
    assert await take(db, "a", now)
    assert await holder_at(db, now) == "a"
    assert not await take(db, "b", now + timedelta(seconds=30))
    # a renews before the end: b still cannot take it at the old end.
    assert await take(db, "a", now + timedelta(seconds=90))
    assert not await take(db, "b", now + LENGTH)
    assert await holder_at(db, now + LENGTH) == "a"
    async with db.read() as session:
        lease = await session.get(ClockLease, leases.CLOCKS)
    assert lease is not None
    assert lease.acquired_at == now  # renewing keeps the start of the holding
    assert lease.expires_at == now + timedelta(seconds=90) + LENGTH


async def test_another_takes_over_when_the_holder_stops_renewing(db: Database) -> None:
    now = utcnow()
    assert await take(db, "a", now)
    later = now + LENGTH
    assert await holder_at(db, later) is None
    assert await take(db, "b", later)
    assert await holder_at(db, later) == "b"
    assert not await take(db, "a", later + timedelta(seconds=1))  # the old holder is out
    async with db.read() as session:
        lease = await session.get(ClockLease, leases.CLOCKS)
    assert lease is not None and lease.acquired_at == later


async def test_release_lets_another_in_at_once(db: Database) -> None:
    now = utcnow()
    assert await take(db, "a", now)
    async with db.write() as session:
        await leases.release(session, leases.CLOCKS, "b", now)  # not b's to release
    assert not await take(db, "b", now)
    async with db.write() as session:
        await leases.release(session, leases.CLOCKS, "a", now)
    assert await holder_at(db, now) is None
    assert await take(db, "b", now)


async def test_leases_are_independent_by_name(db: Database) -> None:
    now = utcnow()
    assert await take(db, "a", now, "clocks")
    assert await take(db, "b", now, "other")
    assert await holder_at(db, now, "clocks") == "a"
    assert await holder_at(db, now, "other") == "b"


async def test_two_processes_racing_never_both_hold(db: Database, tmp_path: Path) -> None:
    """Two engines on one SQLite file stand for two bot processes: no shared asyncio lock,
    only SQLite's own locking. In every round exactly one of them gets the lease, both
    when the row is first created and when an expired lease is up for grabs."""
    other = Database(db.url)
    try:
        now = utcnow()
        for round_number in range(15):
            name = f"race{round_number}"
            first = await asyncio.gather(take(db, "a", now, name), take(other, "b", now, name))
            assert sorted(first) == [False, True]
            expired = now + LENGTH
            second = await asyncio.gather(
                take(db, "c", expired, name), take(other, "d", expired, name)
            )
            assert sorted(second) == [False, True]
            winner = "c" if second[0] else "d"
            assert await holder_at(db, expired, name) == winner
    finally:
        await other.dispose()


def test_lease_length_and_holder_names() -> None:
    assert leases.lease_length(timedelta(seconds=30)) == leases.MIN_LEASE
    assert leases.lease_length(timedelta(minutes=5)) == timedelta(minutes=15)
    first, second = leases.holder_name(), leases.holder_name()
    assert first != second
    assert len(first) <= 120


async def test_a_dead_holder_on_this_host_is_replaced_at_once(db: Database) -> None:
    """After a crash and a restart (systemd, Docker) the clocks must not wait the old
    lease out: a holder on this host whose process is gone is taken over at once."""
    import os
    import sys

    me = leases.holder_name()
    host, ns, _, _ = me.rsplit(":", 3)
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    dead_pid = child.pid
    dead = f"{host}:{ns}:{dead_pid}:dead0001"
    now = utcnow()
    for gone in (
        dead,
        f"{host}:{ns}:{os.getpid()}:earlier1",
    ):  # a dead pid; our own pid in an earlier life
        assert await take(db, gone, now, gone)
        assert leases.holder_is_gone(gone, me)
        assert await take(db, me, now, gone)
        assert await holder_at(db, now, gone) == me
    # Alive, on another machine, or in another container on this machine (its own pid
    # namespace: its pid 1 is not ours): wait for the lease to run out.
    for alive in (
        f"{host}:{ns}:{os.getppid()}:parent01",
        f"other-host:{ns}:{dead_pid}:remote01",
        f"{host}:4026599999:{os.getpid()}:contain1",
        f"{host}:4026599999:{dead_pid}:contain2",
        "not a holder name",
    ):
        assert not leases.holder_is_gone(alive, me)
        assert await take(db, alive, now, alive)
        assert not await take(db, me, now, alive)
