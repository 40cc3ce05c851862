"""The benchmarks still run and still check what they claim, at toy sizes: the flash sale
(exactly `stock` orders, zero oversell, read back from the database) and the load test,
on SQLite with one bot process and, when TEST_DATABASE_URL names a PostgreSQL server,
with two bot processes on a fresh schema that is dropped afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.databases import TEST_DATABASE_URL, postgres_only
from tools.bot_process import ROOT, no_proxy_env

BENCH_TIMEOUT_S = 300


def run_bench(script: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    completed = subprocess.run(
        [sys.executable, f"bench/{script}", *args, "--json", str(out)],
        cwd=ROOT,
        env=no_proxy_env(),
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def schema_exists(url: str) -> bool:
    schema = make_url(url).query["search_path"]

    async def ask() -> bool:
        engine = create_async_engine(
            make_url(TEST_DATABASE_URL).difference_update_query(["search_path"]),
            poolclass=NullPool,
        )
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}
                )
                return found.first() is not None
        finally:
            await engine.dispose()

    return asyncio.run(ask())


def assert_flash_sale(result: dict[str, Any], buyers: int, stock: int) -> None:
    assert result["ok"], result["checks"]
    assert result["orders_ok"] == stock
    assert result["sold_out"] == buyers - stock
    assert result["database"]["units_ordered"] == stock
    assert result["database"]["variant_stock"] == 0
    assert result["echo_burst_before"]["answered"] == buyers
    assert result["echo_burst_after"]["answered"] == buyers
    assert result["max_x_echo_burst"] > 0
    assert "slowest 确认 answer / echo burst" in result["markdown"].lower()


def test_flash_sale_on_sqlite(tmp_path: Path) -> None:
    result = run_bench("flash_sale.py", tmp_path, "--buyers", "12", "--stock", "3")
    assert result["database_kind"] == "sqlite"
    assert_flash_sale(result, 12, 3)


@postgres_only
def test_flash_sale_with_two_processes_on_postgres(tmp_path: Path) -> None:
    result = run_bench(
        "flash_sale.py",
        tmp_path,
        "--buyers",
        "16",
        "--stock",
        "4",
        "--processes",
        "2",
        "--database-url",
        TEST_DATABASE_URL,
    )
    assert result["database_kind"] == "postgresql"
    assert result["processes"] == 2
    assert_flash_sale(result, 16, 4)
    # Counted per process (which one wins how many is up to the scheduler, so not
    # asserted here; tests/e2e/test_two_processes_e2e.py races them deliberately).
    assert len(result["orders_ok_per_process"]) == 2
    assert sum(result["orders_ok_per_process"]) == 4
    assert not schema_exists(result["database_url"])


@pytest.mark.parametrize("processes", [1, pytest.param(2, marks=postgres_only)], ids=["one", "two"])
def test_load(tmp_path: Path, processes: int) -> None:
    args = ["--scale", "0.01", "--processes", str(processes)]
    if processes > 1:
        args += ["--database-url", TEST_DATABASE_URL]
    result = run_bench("load.py", tmp_path, *args)
    assert result["processes"] == processes
    assert result["tracebacks_in_logs"] == {"shop": 0, "echo": 0}
    for name, cell in result["cells"].items():
        assert cell["ok"] == cell["total"] > 0, name
    assert result["cells"]["order@10"]["orders_placed"] == 10
    if processes > 1:
        assert not schema_exists(result["database_url"])
