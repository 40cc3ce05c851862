"""The async engine, sessions, and the write discipline.

SQLite allows one writer at a time; many concurrent writers through a pool spin in
SQLite's busy handler and produce multi-second tails. So every write transaction goes
through `Database.write()`, which on SQLite holds an asyncio lock (one writer per process)
and relies on WAL + busy_timeout for the rare second process. PostgreSQL needs no lock:
its row locks and the conditional updates in services/ decide races between processes.

A PostgreSQL URL (asyncpg) may end in `?search_path=NAME`: the shop's tables then live in
schema NAME (which must exist), so several shops, or the test suite's parallel tests,
can share one database. asyncpg's own DSNs read unknown query parameters as server
settings the same way; SQLAlchemy would hand them to `asyncpg.connect` as keywords.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Select, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from . import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = sqlite_driver.BUSY_TIMEOUT_MS
SQLITE_POOL_SIZE = 12
SQLITE_POOL_OVERFLOW = 8
SEARCH_PATH_PARAMETER = "search_path"
_NOTICES_QUEUED = "notices_queued"


_WRITING = "writing"


def for_writing(statement: Select[Any], session: AsyncSession) -> Select[Any]:
    """Inside `Database.write()` on PostgreSQL, rows read to be changed are locked
    (`FOR UPDATE`), so two transactions changing one order or ticket take turns instead
    of overwriting each other. SQLite needs nothing: its writers already take turns."""
    if session.info.get(_WRITING) and session.get_bind().dialect.name == "postgresql":
        return statement.with_for_update()
    return statement


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


def _split_search_path(url: URL) -> tuple[URL, str | None]:
    """The URL without `?search_path=`, and that search path (None when absent)."""
    value = url.query.get(SEARCH_PATH_PARAMETER)
    if value is None:
        return url, None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"DATABASE_URL: give {SEARCH_PATH_PARAMETER} once, e.g. ?search_path=shop")
    if url.get_driver_name() != "asyncpg":
        raise ValueError(f"DATABASE_URL: {SEARCH_PATH_PARAMETER} needs the asyncpg driver")
    return url.difference_update_query([SEARCH_PATH_PARAMETER]), value.strip()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        self.search_path: str | None = None
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            # More connections kept open: SQLAlchemy's default (5 kept, 10 more opened on
            # demand and closed on return) makes a busy group pay a new aiosqlite
            # thread, connect and PRAGMAs per command (bench/load.py, 10 and 100 users:
            # /商品 3.5 -> 2.8 ms CPU per command). Never fewer in all than before (15).
            kwargs["pool_size"] = SQLITE_POOL_SIZE
            kwargs["max_overflow"] = SQLITE_POOL_OVERFLOW
            # aiosqlite whose statements run on the loop's thread unless another process
            # holds SQLite's lock (models/sqlite_driver.py).
            module = sqlite_driver.dbapi()
            if module is not None:
                kwargs["module"] = module
        else:
            kwargs["pool_pre_ping"] = True
            parsed, self.search_path = _split_search_path(parsed)
            if self.search_path:
                kwargs["connect_args"] = {"server_settings": {"search_path": self.search_path}}
        # The parsed URL, not its str(): that would mask the password as "***".
        self.engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # Facts every session of this database carries in `session.info`, for the
        # session-level rules that need a shop setting (services/safeguards.py).
        self.session_info: dict[str, Any] = {}
        self._sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, info=self.session_info
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # Set after a write transaction that queued notices has committed: the outbox
        # dispatcher waits on it, so no door has to remember to wake it.
        self.notices_committed = asyncio.Event()
        # How many write transactions this process committed: a cache of read-mostly
        # facts (services/item_facts.py) is stale once this moved since it read them.
        self.writes_committed = 0

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
                session.info[_WRITING] = True
                async with session.begin():
                    yield session
                self._after_commit(session)
            return
        async with self._write_lock, self._sessions() as session:
            session.info[_WRITING] = True
            async with session.begin():
                yield session
            self._after_commit(session)

    def _after_commit(self, session: AsyncSession) -> None:
        self.writes_committed += 1
        if session.info.pop(_NOTICES_QUEUED, False):
            self.notices_committed.set()

    async def migrate(self) -> None:
        """Create the database or bring it to the newest schema."""
        from .migrate import upgrade_to_head

        await upgrade_to_head(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
