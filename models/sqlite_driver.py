"""aiosqlite as SQLAlchemy drives it, with no thread hop per statement (instead of four)
unless another process holds SQLite's lock.

aiosqlite runs sqlite3 in a worker thread; every call crosses to it and back (a queue,
a future, a wake-up of the event loop: about 50 µs of CPU each). SQLAlchemy's adapter
makes four such calls per statement (open a cursor, execute, fetch all, close) and one
per COMMIT or ROLLBACK, even a ROLLBACK of a connection with no transaction open (every
read session ends with two). Measured on the order path (issue 16), those hops were
most of a statement's cost.

This shim keeps aiosqlite and SQLAlchemy's adapter, and changes only that:
- a statement is one job: cursor, execute (or executemany), fetch all rows, close;
  the adapter's cursor then serves the rows and the attributes the statement left
  (description, rowcount, lastrowid) from memory;
- COMMIT and ROLLBACK are skipped when sqlite3 has no transaction open (the sqlite3
  module opens one only before a data-changing statement), where they would do nothing;
- a statement (and a COMMIT or ROLLBACK) first runs on the event loop's own thread,
  with SQLite's busy timeout at zero (no hop at all: the thread hop, i.e. a queue put, a thread wake-up and a wake-up
  of the loop, was most of what a statement cost beyond SQLite's own work). Only when
  SQLite answers "busy" (another process holds the write lock) does it run again in
  aiosqlite's thread with the full busy timeout, so the loop never waits for another
  process. Within one process writers already take turns (models/db.py's write lock)
  and WAL readers never wait, so that fallback is for a second process only. A slow
  query now holds the loop while SQLite works; the shop's statements are all small.

`models.db.Database` passes it as the engine's DBAPI module for sqlite+aiosqlite URLs."""

from __future__ import annotations

import collections
import logging
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

logger = logging.getLogger(__name__)

# How long SQLite waits for another connection's lock (models/db.py sets it on every
# connection); the inline attempt waits 0 ms and leaves the wait to the thread.
BUSY_TIMEOUT_MS = 10_000
_NO_WAIT = "PRAGMA busy_timeout=0"
_WAIT = f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"


class _Finished:
    """What a statement left on its cursor, as SQLAlchemy's adapter reads it."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, description: Any = None, rowcount: int = -1, lastrowid: Any = None) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1

    async def close(self) -> None:
        return None


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Finished, list[Any]]:
    """In aiosqlite's thread: the whole statement, rows included."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return _Finished(cursor.description, cursor.rowcount, cursor.lastrowid), rows
    finally:
        cursor.close()


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # Python before 3.11
        return "database is locked" in str(error)
    return code & 0xFF == sqlite3.SQLITE_BUSY


def _run_inline(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Finished, list[Any]] | None:
    """On the loop's thread without waiting for a lock: the statement's result, or None
    when SQLite was busy and the statement changed nothing (run it again, waiting)."""
    before = connection.total_changes
    connection.execute(_NO_WAIT)
    try:
        return _run(connection, operation, parameters, many)
    except sqlite3.OperationalError as error:
        if _busy(error) and connection.total_changes == before:
            return None
        raise
    finally:
        connection.execute(_WAIT)


def _end_inline(connection: sqlite3.Connection, commit: bool) -> bool:
    """COMMIT or ROLLBACK on the loop's thread without waiting for a lock; False when
    SQLite was busy (the transaction is still open: end it again, waiting)."""
    connection.execute(_NO_WAIT)
    try:
        if commit:
            connection.commit()
        else:
            connection.rollback()
        return True
    except sqlite3.OperationalError as error:
        if _busy(error):
            return False
        raise
    finally:
        connection.execute(_WAIT)


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No cursor is opened here (that would be a hop): `_run` opens its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Finished()  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._go(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._go(operation, seq_of_parameters, True)

    async def _go(self, operation: Any, parameters: Any, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            # A PRAGMA goes to the thread as before: it may read or set the busy timeout
            # that the inline attempt changes for its own duration.
            done = (
                None
                if operation.lstrip()[:6].upper() == "PRAGMA"
                else _run_inline(connection._conn, operation, parameters, many)
            )
            if done is None:
                done = await connection._execute(
                    _run, connection._conn, operation, parameters, many
                )
        finished, rows = done
        self._cursor = finished  # type: ignore[assignment]
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        return None  # nothing open in the thread

    def close(self) -> None:
        self._rows.clear()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    _cursor_cls = OneHopCursor

    def _in_transaction(self) -> bool:
        connection = self._connection._connection  # type: ignore[attr-defined]
        # Read from the event loop's thread: sqlite3 checks only that it is open here, and
        # no statement of this connection runs meanwhile (the adapter awaits each one).
        return connection is not None and bool(connection.in_transaction)

    def _end(self, commit: bool) -> bool:
        try:
            return _end_inline(self._connection._conn, commit)  # type: ignore[attr-defined]
        except Exception as error:
            self._handle_exception(error)
            raise  # not reached: _handle_exception raises

    def rollback(self) -> None:
        if self._in_transaction() and not self._end(commit=False):
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction() and not self._end(commit=True):
            super().commit()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def _internals_match() -> bool:
    """The shim overrides private methods of SQLAlchemy's asyncio adapter (2.1) and calls
    aiosqlite's private `_execute`: if an upgrade renamed them, the stock adapter is used
    (slower, never wrong) instead of a shim whose overrides would no longer be called."""
    cursor_parts = ("_execute_async", "_executemany_async", "_async_soft_close")
    return (
        all(hasattr(AsyncAdapt_aiosqlite_cursor, name) for name in cursor_parts)
        and hasattr(AsyncAdapt_aiosqlite_connection, "_cursor_cls")
        and any(
            "_execute_mutex" in getattr(base, "__slots__", ())
            for base in AsyncAdapt_aiosqlite_connection.__mro__
        )
        and callable(getattr(aiosqlite.Connection, "_execute", None))
    )


def dbapi() -> OneHopDBAPI | None:
    """The one-hop DBAPI module, or None (use SQLAlchemy's own) when the internals it
    relies on are not there."""
    if not _internals_match():
        logger.warning("sqlite_driver: SQLAlchemy/aiosqlite internals changed; stock adapter used")
        return None
    return OneHopDBAPI(aiosqlite, sqlite3)
