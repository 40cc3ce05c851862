"""The async engine, sessions, and the write discipline.

SQLite allows one writer at a time; many concurrent writers through a pool spin in
SQLite's busy handler and produce multi-second tails. So every write transaction goes
through `Database.write()`, which on SQLite holds an asyncio lock (one writer per process)
and relies on WAL + busy_timeout for the rare second process. PostgreSQL needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000
_NOTICES_QUEUED = "notices_queued"


def mark_notices_queued(session: AsyncSession) -> None:
    """Called by the outbox when it adds a row in this session's transaction."""
    session.info[_NOTICES_QUEUED] = True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # Set after a write transaction that queued notices has committed: the outbox
        # dispatcher waits on it, so no door has to remember to wake it.
        self.notices_committed = asyncio.Event()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only; nothing it does is committed."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.
        Committing one that queued notices (`mark_notices_queued`) wakes the outbox."""
        if self._write_lock is None:
            async with self._sessions() as session:
                async with session.begin():
                    yield session
                self._after_commit(session)
            return
        async with self._write_lock, self._sessions() as session:
            async with session.begin():
                yield session
            self._after_commit(session)

    def _after_commit(self, session: AsyncSession) -> None:
        if session.info.pop(_NOTICES_QUEUED, False):
            self.notices_committed.set()

    async def migrate(self) -> None:
        """Create the database or bring it to the newest schema."""
        from .migrate import upgrade_to_head

        await upgrade_to_head(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
