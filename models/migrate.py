"""Run Alembic from inside the application (start-up, tests, the CLI share env.py)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# Any constant: the advisory lock of "migrating this schema" (with the schema's name).
_MIGRATION_LOCK = "qq-shop-bot:migrate:"


async def upgrade_to_head(engine: AsyncEngine) -> None:
    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "head")

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several bot processes starting together on one empty database would each
            # create the tables, and all but one would fail. The first takes this lock
            # (held until its transaction ends: PostgreSQL runs DDL in transactions), the
            # others wait and then find the schema at head.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key || current_schema()))"),
                {"key": _MIGRATION_LOCK},
            )
        await connection.run_sync(_upgrade)
