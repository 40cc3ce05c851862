"""Which databases the service and end-to-end suites run on.

SQLite always. PostgreSQL as well when TEST_DATABASE_URL names a server (CI sets it,
e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test): every test that takes the
`database_url` fixture then runs once per database. Each PostgreSQL test gets a schema
of its own (unique per xdist worker and test), reached through `?search_path=` in the
URL it hands out (models/db.py), so the same URL works in this process and in a bot
process started by the test; the schema is dropped afterwards.

A TEST_DATABASE_URL that names a server that cannot be reached fails the run: CI must
never pass by quietly skipping PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
SQLITE = "sqlite"
POSTGRES = "postgres"
SCHEMA_PREFIX = "pytest_"
CONNECT_TIMEOUT_SECONDS = 10.0

# Marks a test that proves something on PostgreSQL only (races that SQLite's single
# writer cannot even produce); without TEST_DATABASE_URL it is skipped, not failed.
postgres_only = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="needs a PostgreSQL server: set TEST_DATABASE_URL"
)


def backends() -> list[str]:
    return [SQLITE, POSTGRES] if TEST_DATABASE_URL else [SQLITE]


def parametrize_database(metafunc: pytest.Metafunc) -> None:
    """For a suite's pytest_generate_tests: every test that (through any fixture) takes
    `database_url` runs on each database. Without TEST_DATABASE_URL nothing changes,
    test ids included."""
    if TEST_DATABASE_URL and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", backends(), indirect=True)


def _admin_engine() -> AsyncEngine:
    url = make_url(TEST_DATABASE_URL)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        raise pytest.UsageError(
            f"TEST_DATABASE_URL must be a postgresql+asyncpg:// URL, not {url.drivername}://"
        )
    return create_async_engine(
        url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS}
    )


def check_reachable() -> None:
    """Raises pytest.UsageError (the run fails at once) when TEST_DATABASE_URL is set and
    its server does not answer. Called once, before any test runs."""
    if not TEST_DATABASE_URL:
        return

    async def ask() -> str:
        engine = _admin_engine()
        try:
            async with engine.connect() as connection:
                return str((await connection.execute(text("SHOW server_version"))).scalar_one())
        finally:
            await engine.dispose()

    try:
        asyncio.run(ask())
    except pytest.UsageError:
        raise
    except Exception as error:
        raise pytest.UsageError(
            f"TEST_DATABASE_URL is set but PostgreSQL cannot be reached: {error!r}. "
            "Start the server or unset TEST_DATABASE_URL to run on SQLite only."
        ) from error


def _schema_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{SCHEMA_PREFIX}{worker}_{os.getpid()}_{secrets.token_hex(5)}"


def _with_search_path(schema: str) -> str:
    url = make_url(TEST_DATABASE_URL).update_query_dict({"search_path": schema})
    return url.render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema on the PostgreSQL server; yields a DATABASE_URL whose tables
    live there, and drops the schema (and everything in it) afterwards."""
    schema = _schema_name()
    engine = _admin_engine()
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield _with_search_path(schema)
    finally:
        try:
            async with engine.begin() as connection:
                # A connection the test leaked inside a transaction would hold locks on
                # the schema's tables: give up on the drop rather than hang the run.
                await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        except Exception as error:
            warnings.warn(f"test schema {schema} left behind: {error!r}", stacklevel=1)
        await engine.dispose()
