"""aiosqlite as SQLAlchemy drives it, with one thread hop per statement instead of four.

aiosqlite runs sqlite3 in a worker thread; every call crosses to it and back (a queue,
a future, a wake-up of the event loop: about 50 µs of CPU each). SQLAlchemy's adapter
makes four such calls per statement (open a cursor, execute, fetch all, close) and one
per COMMIT or ROLLBACK, even a ROLLBACK of a connection with no transaction open (every
read session ends with two). Measured on the order path (issue 16), those hops were
most of a statement's cost.

This shim keeps aiosqlite and SQLAlchemy's adapter, and changes only that:
- a statement is one job in the worker thread: cursor, execute (or executemany), fetch
  all rows, close; the adapter's cursor then serves the rows and the attributes the
  statement left (description, rowcount, lastrowid) from memory;
- COMMIT and ROLLBACK are skipped when sqlite3 has no transaction open (the sqlite3
  module opens one only before a data-changing statement), where they would do nothing.

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
            finished, rows = await connection._execute(
                _run, connection._conn, operation, parameters, many
            )
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

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
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
