"""Test set-up: NoneBot initialised once per session (nonebug), a fresh temp SQLite shop
per test (and a PostgreSQL one too in tests/services and tests/e2e when
TEST_DATABASE_URL is set: tests/databases.py). Plugin code is imported inside fixtures
and tests, never at module top."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nonebot
import pytest
from nonebug import NONEBOT_INIT_KWARGS, NONEBOT_START_LIFESPAN

from tests.databases import SQLITE, check_reachable, fresh_schema

OWNER_ID = 10001
STAFF_ID = 20002
CUSTOMER_ID = 30003
OTHER_CUSTOMER_ID = 30004
GROUP_ID = 555000
OTHER_GROUP_ID = 666000


def pytest_configure(config: pytest.Config) -> None:
    config.stash[NONEBOT_INIT_KWARGS] = {
        "driver": "~fastapi+~websockets",
        "superusers": {str(OWNER_ID)},
        "command_start": {"/"},
        "log_level": "WARNING",
    }
    # The router's start-up hook opens data/shop.db; tests open their own database.
    config.stash[NONEBOT_START_LIFESPAN] = False
    if not hasattr(config, "workerinput"):  # once, in the xdist controller (or alone)
        check_reachable()


@pytest.fixture(scope="session", autouse=True)
async def after_nonebot_init(after_nonebot_init: None) -> None:
    from nonebot.adapters.onebot.v11 import Adapter

    nonebot.get_driver().register_adapter(Adapter)
    nonebot.load_from_toml("pyproject.toml")


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The test's own empty database: a SQLite file in tmp_path, or (tests/services and
    tests/e2e parametrized by tests/databases.py when TEST_DATABASE_URL is set) a fresh
    PostgreSQL schema, dropped afterwards."""
    if getattr(request, "param", SQLITE) == SQLITE:
        yield f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
        return
    async with fresh_schema() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    from config import ShopSettings

    return ShopSettings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        shop_name="测试小店",
    )


@pytest.fixture
async def shop(settings) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """The running shop (router runtime) on a fresh database, as after start-up."""
    from plugins._common.runtime import start_runtime, stop_runtime

    runtime = await start_runtime(settings, {OWNER_ID}, {"/"})
    yield runtime
    await stop_runtime()


@pytest.fixture
async def db(settings):  # type: ignore[no-untyped-def]
    """A migrated database with the default shop, for service tests."""
    from models.db import Database
    from services.shop import ensure_shop

    database = Database(settings.database_url)
    await database.migrate()
    async with database.write() as session:
        await ensure_shop(session, settings.shop_name)
    yield database
    await database.dispose()


@pytest.fixture
async def shop_context(settings):  # type: ignore[no-untyped-def]
    """The shop as the use cases take it (services.context.ShopContext), on a fresh
    database, as after start-up; the owner is OWNER_ID."""
    from services.context import close_shop, open_shop

    context = await open_shop(settings, frozenset({OWNER_ID}))
    yield context
    await close_shop(context)
