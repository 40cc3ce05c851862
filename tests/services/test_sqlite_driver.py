"""models/sqlite_driver.py: SQLite through aiosqlite with one thread hop per statement.
It replaces SQLAlchemy's cursor handling, so the basics every use case relies on are
proven here directly: rows and RETURNING, executemany, rollback of a failed transaction,
commits that last, and the fallback to the stock adapter when its internals changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from models import sqlite_driver
from models.db import Database


async def _table(database: Database) -> None:
    async with database.write() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"))


@pytest.fixture
async def database(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'shim.db'}")
    await _table(database)
    yield database
    await database.dispose()


async def test_the_one_hop_module_is_in_use(database: Database) -> None:
    assert isinstance(database.engine.dialect.dbapi, sqlite_driver.OneHopDBAPI)


async def test_rows_returning_and_executemany(database: Database) -> None:
    async with database.write() as session:
        inserted = await session.execute(
            text("INSERT INTO t (v) VALUES (:v) RETURNING id, v"), {"v": 7}
        )
        assert inserted.one() == (1, 7)
        await session.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": 8}, {"v": 9}])
        updated = await session.execute(text("UPDATE t SET v = v + 1 WHERE v >= 8"))
        assert updated.rowcount == 2
    async with database.read() as session:
        assert (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all() == [
            7,
            9,
            10,
        ]


async def test_a_failed_transaction_leaves_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.write() as session:
            await session.execute(text("INSERT INTO t (v) VALUES (1)"))
            raise RuntimeError("refused after a write")
    async with database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_commits_last_across_engines(database: Database, tmp_path: Path) -> None:
    async with database.write() as session:
        await session.execute(text("INSERT INTO t (v) VALUES (42)"))
    await database.dispose()
    again = Database(f"sqlite+aiosqlite:///{tmp_path / 'shim.db'}")
    try:
        async with again.read() as session:
            assert (await session.execute(text("SELECT v FROM t"))).scalar_one() == 42
    finally:
        await again.dispose()


async def test_changed_internals_fall_back_to_the_stock_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "_internals_match", lambda: False)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        assert not isinstance(database.engine.dialect.dbapi, sqlite_driver.OneHopDBAPI)
        await _table(database)
        async with database.write() as session:
            await session.execute(text("INSERT INTO t (v) VALUES (5)"))
        async with database.read() as session:
            assert (await session.execute(text("SELECT v FROM t"))).scalar_one() == 5
    finally:
        await database.dispose()


def test_the_internals_it_relies_on_are_there() -> None:
    # Fails on the SQLAlchemy/aiosqlite upgrade that renames them, instead of the shop
    # silently losing the speed-up.
    assert sqlite_driver._internals_match()


async def test_a_lock_held_elsewhere_is_waited_for_off_the_loop(
    database: Database, tmp_path: Path
) -> None:
    # Statements run on the loop's thread without waiting for SQLite's locks; when another
    # process holds the write lock, the statement (and the commit) must wait for it in
    # aiosqlite's thread instead: it succeeds once the lock is free, and the loop keeps
    # running meanwhile.
    import asyncio
    import sqlite3
    import threading

    other = sqlite3.connect(tmp_path / "shim.db", check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES (1)")
    release = threading.Timer(0.3, other.commit)
    release.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        async with database.write() as session:
            await session.execute(text("INSERT INTO t (v) VALUES (2)"))
    finally:
        task.cancel()
        release.join()
        other.close()
    assert ticks >= 10  # the loop was not blocked for the 0.3 s
    async with database.read() as session:
        assert (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all() == [
            1,
            2,
        ]
    # Between statements the connection waits for locks again (as models/db.py set it
    # up), for whatever reaches it other than through the shim's inline attempt.
    async with database.read() as session:
        connection = await session.connection()
        raw = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        waited = raw._connection._conn.execute("PRAGMA busy_timeout").fetchone()[0]
    assert waited == sqlite_driver.BUSY_TIMEOUT_MS
