"""A lease in the database that decides which bot process runs the shop's clocks.

Several bot processes (several QQ accounts) may share one PostgreSQL database, or, more
rarely, one SQLite file. Each clock job is idempotent, so two processes running it at
once would do no harm to the data, but they would double the provider queries (kuaidi100
counts them against the shop's quota) and the database work. So the tick first takes or
renews the lease; the others skip their tick. A holder that stops (crash, shutdown)
stops renewing, and another process takes over once the lease has run out.

Taking the lease is one conditional UPDATE (or the first INSERT), so two processes can
never both believe they hold it: the database decides.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ClockLease

CLOCKS = "clocks"
MIN_LEASE = timedelta(minutes=5)

_LEASE = ClockLease.__table__.c  # type: ignore[attr-defined]


def _pid_namespace() -> str:
    """Which pid namespace this process lives in: two containers on one host (host
    networking gives them the same host name) each have their own pid 1."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "-"


def holder_name() -> str:
    """Unique per process start: host, pid namespace, pid, and a random part (pids are
    reused)."""
    return f"{socket.gethostname()[:60]}:{_pid_namespace()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_is_gone(other: str, me: str) -> bool:
    """True when `other` (a holder name) was a process on this host, in this pid
    namespace, that no longer runs. Any other holder is never judged: its lease has to
    run out."""
    try:
        other_host, other_ns, other_pid, _ = other.rsplit(":", 3)
        my_host, my_ns, my_pid, _ = me.rsplit(":", 3)
        pid = int(other_pid)
    except ValueError:
        return False
    if other == me or other_host != my_host or other_ns != my_ns or other_ns == "-":
        return False
    if pid == int(my_pid):
        return True  # our own pid under another name: an earlier life of this pid (pid 1 in a container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError included: someone else's live process
        return False
    return False


def lease_length(tick: timedelta) -> timedelta:
    """Long enough that a holder ticking on time never loses it between two ticks (a
    long tick, such as a large tracking sweep, renews at its next start), short enough
    that a takeover after a crash waits minutes, not hours."""
    return max(MIN_LEASE, 3 * tick)


async def acquire(
    session: AsyncSession, name: str, holder: str, now: datetime, length: timedelta
) -> bool:
    """Takes or renews the lease `name` for `holder` until now + length. False when
    another holder's lease is still running."""
    result = await session.execute(
        update(ClockLease)
        .where(_LEASE.name == name, or_(_LEASE.holder == holder, _LEASE.expires_at <= now))
        .values(
            holder=holder,
            expires_at=now + length,
            acquired_at=case((_LEASE.holder == holder, _LEASE.acquired_at), else_=now),
        )
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    lease = await session.get(ClockLease, name)
    if lease is not None:
        if not holder_is_gone(lease.holder, holder):
            return False
        # The holder was a process on this machine that has died (a crash, then a restart
        # by systemd or Docker): take over now rather than wait the lease out.
        result = await session.execute(
            update(ClockLease)
            .where(_LEASE.name == name, _LEASE.holder == lease.holder)
            .values(holder=holder, expires_at=now + length, acquired_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
    try:
        async with session.begin_nested():  # the first process ever: create the row
            session.add(
                ClockLease(name=name, holder=holder, expires_at=now + length, acquired_at=now)
            )
    except IntegrityError:  # another process created it a moment ago
        return False
    return True


async def release(session: AsyncSession, name: str, holder: str, now: datetime) -> None:
    """Ends `holder`'s lease at once, so that another process need not wait it out."""
    await session.execute(
        update(ClockLease)
        .where(_LEASE.name == name, _LEASE.holder == holder)
        .values(expires_at=now)
    )


async def current_holder(session: AsyncSession, name: str, now: datetime) -> str | None:
    lease = await session.get(ClockLease, name)
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder
