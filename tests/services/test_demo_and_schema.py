"""The demo catalogue, and the database layer: migrations match the models, times are
aware UTC, SQLite runs in WAL mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import StatementError
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from models.db import Database
from models.migrate import alembic_config
from models.tables import DEFAULT_SHOP_ID, Shop
from services import catalog
from services.catalog import VariantRef
from services.demo import seed_demo_catalog
from services.shop import ensure_shop

SHOP = DEFAULT_SHOP_ID


# --- demo ------------------------------------------------------------------------------


async def test_seed_demo_catalog_once(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        assert await seed_demo_catalog(s, SHOP) == 6
    async with db.write() as s:
        assert await seed_demo_catalog(s, SHOP) == 0
    async with db.read() as s:
        page = await catalog.list_items(s, SHOP)
        categories = await catalog.list_categories(s, SHOP)
        _, beans_500g = await catalog.resolve_variant(s, SHOP, VariantRef(1, 2))
        drip = await catalog.item_detail(s, SHOP, 5)
    assert page.total == 6
    assert [i.name for i in page.items] == [
        "云南小粒咖啡豆",
        "冷萃咖啡液",
        "手冲滤杯套装",
        "玻璃分享壶",
        "挂耳咖啡",
        "帆布托特包",
    ]
    assert [i.variant_count for i in page.items] == [2, 1, 1, 1, 3, 1]
    assert [i.sold_out for i in page.items] == [False, False, False, True, False, False]
    assert dict(categories) == {"咖啡": 3, "器具": 2, "周边": 1}
    assert (beans_500g.name, beans_500g.price_fen, beans_500g.stock) == ("500g", 10900, 12)
    assert drip.item.description == "10 片装，多种风味。"
    assert [(v.name, v.price_fen) for v in drip.variants] == [
        ("默认", 2990),
        ("20片装", 5590),
        ("40片装", 9990),
    ]


async def test_seed_demo_catalog_skips_a_shop_with_items(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        item, _ = await catalog.create_item(s, SHOP, "我自己的商品", 100, 1)
        await catalog.set_listed(s, SHOP, item.id or 0, False)  # even a delisted one counts
    async with db.write() as s:
        assert await seed_demo_catalog(s, SHOP) == 0
    async with db.read() as s:
        assert (await catalog.list_items(s, SHOP)).total == 0


async def test_seed_demo_catalog_per_shop(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await seed_demo_catalog(s, SHOP)
        await ensure_shop(s, "二号店", shop_id=2)
    async with db.write() as s:
        assert await seed_demo_catalog(s, 2) == 6
    async with db.read() as s:
        assert (await catalog.list_items(s, 2)).total == 6


# --- migrations vs models --------------------------------------------------------------


async def test_migrations_match_models(db) -> None:  # type: ignore[no-untyped-def]
    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    async with db.engine.connect() as connection:
        changes = await connection.run_sync(diff)
    assert changes == []


async def test_every_migration_steps_up_and_back_down(database_url: str) -> None:
    """From empty, one revision at a time to head, all the way back down to empty, and up
    again: every migration and its downgrade run on this database (SQLite, and
    PostgreSQL when TEST_DATABASE_URL is set), ending where the models are."""
    from alembic import command

    revisions = [
        revision.revision
        for revision in reversed(
            list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
        )
    ]

    def step(connection, action, target) -> None:  # type: ignore[no-untyped-def]
        getattr(command, action)(alembic_config(connection), target)

    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    database = Database(database_url)
    try:
        for revision in revisions:
            async with database.engine.begin() as connection:
                await connection.run_sync(step, "upgrade", revision)
        async with database.engine.begin() as connection:
            await connection.run_sync(step, "downgrade", "base")
            left = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(left) <= {"alembic_version"}
        await database.migrate()
        async with database.engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await database.dispose()


async def test_migrations_create_every_table(db) -> None:  # type: ignore[no-untyped-def]
    async with db.engine.connect() as connection:
        # The connection's own schema only (on PostgreSQL: the test's search_path).
        names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        version = (
            await connection.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar_one()
    assert set(SQLModel.metadata.tables) <= names
    assert {"shop", "staff", "shop_group", "category", "item", "variant"} <= names
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == head


async def test_migrate_twice_is_harmless(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await catalog.create_item(s, SHOP, "保留的商品", 100, 1)
    await db.migrate()
    async with db.read() as s:
        assert (await catalog.list_items(s, SHOP)).total == 1


async def test_database_constraints_are_enforced(db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import IntegrityError

    async with db.write() as s:
        item, _ = await catalog.create_item(s, SHOP, "商品", 100, 1)
    # CHECK stock >= 0 and foreign keys are on (PRAGMA foreign_keys=ON)
    for statement in [
        f"UPDATE variant SET stock = -1 WHERE item_id = {item.id}",
        f"UPDATE variant SET price_fen = 0 WHERE item_id = {item.id}",
        "INSERT INTO category (shop_id, name) VALUES (999, '孤儿')",
    ]:
        with pytest.raises(IntegrityError):
            async with db.write() as s:
                await s.execute(text(statement))


# --- the same values on every database --------------------------------------------------


async def test_qq_numbers_text_flags_and_codes_round_trip(db) -> None:  # type: ignore[no-untyped-def]
    """QQ numbers beyond 32 bits (BIGINT on PostgreSQL), Chinese JSON text, booleans and
    order codes typed in any case behave the same on SQLite and PostgreSQL."""
    from models.tables import OutboxMessage
    from models.types import utcnow
    from services import orders, outbox
    from services.addresses import validate

    big_user, big_group = 3_987_654_321, 9_876_543_210  # both above 2**31
    now = utcnow()
    async with db.write() as s:
        item, variant = await catalog.create_item(s, SHOP, "大号商品", 100, 2)
        await catalog.set_listed(s, SHOP, item.id or 0, False)
        await catalog.set_listed(s, SHOP, item.id or 0, True)
        order = await orders.place_order(
            s,
            SHOP,
            big_user,
            big_group,
            [(variant.id or 0, 1)],
            validate("张三", "13800001111", "浙江省杭州市西湖区文三路 1 号"),
            "",
            now,
            timedelta(minutes=30),
        )
        segments = [outbox.at(big_user), outbox.text(" 你好，「订单」已发货 ✓")]
        await outbox.enqueue(s, outbox.Target.group(big_group), segments, "big", now)
    async with db.read() as s:
        found = await orders.get_order(s, SHOP, f"  {order.code.lower()} ")
        listed = await catalog.get_item(s, SHOP, item.id or 0)
        message = (await s.execute(select(OutboxMessage))).scalar_one()
    assert (found.id, found.user_id, found.group_id) == (order.id, big_user, big_group)
    assert listed.listed is True
    assert (message.target_type, message.target_id) == ("group", big_group)
    assert outbox.decode(message) == segments


# --- UTCDateTime -----------------------------------------------------------------------


async def test_datetimes_come_back_aware_utc(db) -> None:  # type: ignore[no-untyped-def]
    beijing = timezone(timedelta(hours=8))
    stored = datetime(2025, 1, 2, 8, 30, 15, 123456, tzinfo=beijing)
    async with db.write() as s:
        s.add(Shop(id=7, name="时区店", created_at=stored))
    async with db.read() as s:
        shop = await s.get(Shop, 7)
        raw = (await s.execute(text("SELECT created_at FROM shop WHERE id = 7"))).scalar_one()
    assert shop is not None
    assert shop.created_at.tzinfo is UTC
    assert shop.created_at == stored
    assert shop.created_at == datetime(2025, 1, 2, 0, 30, 15, 123456, tzinfo=UTC)
    assert str(raw).startswith("2025-01-02 00:30:15")  # stored as UTC wall time


async def test_default_timestamps_are_aware_utc(db) -> None:  # type: ignore[no-untyped-def]
    before = datetime.now(UTC)
    async with db.write() as s:
        item, _ = await catalog.create_item(s, SHOP, "商品", 100, 1)
    async with db.read() as s:
        loaded = await catalog.get_item(s, SHOP, item.id or 0)
    assert loaded.created_at.tzinfo is UTC
    assert before - timedelta(seconds=1) <= loaded.created_at <= datetime.now(UTC)


async def test_naive_datetime_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StatementError) as caught:
        async with db.write() as s:
            s.add(Shop(id=8, name="天真店", created_at=datetime(2025, 1, 2, 8, 30)))
            await s.flush()
    assert isinstance(caught.value.orig, ValueError)
    assert "naive datetime" in str(caught.value.orig)
    async with db.read() as s:
        assert await s.get(Shop, 8) is None


def test_utc_datetime_type_directly() -> None:
    from models.types import UTCDateTime

    column_type = UTCDateTime()
    tokyo = timezone(timedelta(hours=9))
    bound = column_type.process_bind_param(datetime(2025, 1, 1, 9, tzinfo=tokyo), None)
    assert bound == datetime(2025, 1, 1, 0, tzinfo=UTC)
    assert bound is not None and bound.utcoffset() == timedelta(0)
    assert column_type.process_bind_param(None, None) is None
    with pytest.raises(ValueError, match="naive"):
        column_type.process_bind_param(datetime(2025, 1, 1), None)
    loaded = column_type.process_result_value(datetime(2025, 1, 1, 12), None)
    assert loaded == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert loaded is not None and loaded.tzinfo is UTC
    converted = column_type.process_result_value(datetime(2025, 1, 1, 21, tzinfo=tokyo), None)
    assert converted == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert converted is not None and converted.tzinfo is UTC
    assert column_type.process_result_value(None, None) is None


# --- Database ------------------------------------------------------------------------


async def test_sqlite_runs_in_wal_mode(db) -> None:  # type: ignore[no-untyped-def]
    if not db.is_sqlite:
        pytest.skip("SQLite's settings (tests/services/test_postgres.py has PostgreSQL's)")
    async with db.read() as s:
        mode = (await s.execute(text("PRAGMA journal_mode"))).scalar_one()
        foreign_keys = (await s.execute(text("PRAGMA foreign_keys"))).scalar_one()
        busy_timeout = (await s.execute(text("PRAGMA busy_timeout"))).scalar_one()
    assert mode == "wal"
    assert foreign_keys == 1
    assert busy_timeout == 10_000


async def test_database_creates_missing_parent_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nested" / "deeper" / "shop.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await database.migrate()
        async with database.write() as s:
            await ensure_shop(s, "新店")
        async with database.read() as s:
            shop = await s.get(Shop, DEFAULT_SHOP_ID)
        assert shop is not None and shop.name == "新店"
        assert path.is_file()
    finally:
        await database.dispose()


async def test_read_session_commits_nothing(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        await catalog.create_item(s, SHOP, "不会保存", 100, 1)
    async with db.read() as s:
        assert (await catalog.list_items(s, SHOP)).total == 0


async def test_ensure_shop_renames(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        shop = await s.get(Shop, SHOP)
        assert shop is not None and shop.name == "测试小店"
    async with db.write() as s:
        renamed = await ensure_shop(s, "改名小店")
    assert renamed.id == SHOP
    async with db.read() as s:
        shop = await s.get(Shop, SHOP)
        assert shop is not None and shop.name == "改名小店"
