"""The tracking poll job at scale: N shipments in transit swept by `services.shipping.poll_due`.

In-process against the services (no bot): a fresh SQLite database, N paid+shipped orders
inserted in bulk (each with one order line and one shipment due for a poll), then the
poll job is run the way the clock plugin runs it (`poll_due(..., batch=50)` again and
again) until nothing is due, against the local fake kuaidi100 server. Every shipment
carries the number TRANSIT001, which the fake answers with 3 events in state 在途, so the
first sweep stores 3 events and queues 1 customer notice per shipment.

Three sweeps:
  1. first  : everything due, 3 new events + 1 notice each;
  2. again  : immediately after, nothing due (the cost of an idle tick);
  3. +interval: everything due again, the provider answers the same events, so 0 new
     events and 0 new notices (idempotence at scale).

The fake server runs in its own process so that its CPU, GIL and memory are not counted
as the poll job's. Memory: peak RSS of this process (getrusage) and the tracemalloc
peak, which is measured in a separate traced pass (tracemalloc slows Python down
2-3x, so the timed sweeps run untraced).

    python bench/tracking_sweep.py [--shipments 10000] [--batch 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    PROXY_VARIABLES,
    ROOT,
    current_rss_mib,
    no_proxy_env,
    peak_rss_mib,
    process_cpu_seconds,
    write_json,
)

NUMBER = "TRANSIT001"  # the fake's canned in-transit answer: 3 events
EVENTS_PER_SHIPMENT = 3
INTERVAL = timedelta(minutes=30)  # TRACKING_POLL_MINUTES default


# --- the fake kuaidi100 server, in a child process -------------------------------------


def serve_fake() -> None:
    """Child mode: serve the fake until stdin closes; print the URL, then the request count."""
    from collections import deque

    from tests.services.fake_kuaidi100 import FakeKuaidi100

    class CountingFake(FakeKuaidi100):
        answered = 0

        def answer(self, form: dict[str, str]) -> tuple[int, bytes]:
            CountingFake.answered += 1
            return super().answer(form)

    fake = CountingFake()
    fake.requests = deque(maxlen=1)  # type: ignore[assignment]  # keep memory flat
    with fake.running() as url:
        print(url, flush=True)
        sys.stdin.read()
    print(CountingFake.answered, flush=True)


class FakeServer:
    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FakeServer:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-fake"],
            cwd=ROOT,
            env=no_proxy_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"fake kuaidi100 did not start: {self.url!r}")
        return self

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid) if self.process else 0.0

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        try:
            out, _ = self.process.communicate("", timeout=15)
            self.answered = int(out.strip().splitlines()[-1]) if out.strip() else -1
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            self.answered = -1


# --- seeding ---------------------------------------------------------------------------


async def seed(database: Any, shipments: int, now: Any) -> dict[str, Any]:
    """ensure_shop, one catalog item, then `shipments` shipped orders in big transactions."""
    from sqlalchemy import insert

    from models.tables import OrderLine, OrderStatus, Shipment, ShopOrder
    from services import catalog
    from services.shop import ensure_shop

    async with database.write() as session:
        await ensure_shop(session, "压测小店")
        item, variant = await catalog.create_item(session, 1, "压测商品", 100, 1_000_000)
    shipped_at = now - timedelta(hours=2)
    due_at = now - timedelta(minutes=1)
    chunk = 2000
    for start in range(0, shipments, chunk):
        ids = range(start + 1, min(start + chunk, shipments) + 1)
        orders = [
            {
                "id": i,
                "code": f"B{i:09d}",
                "shop_id": 1,
                "user_id": 3_000_000 + i,
                "group_id": None,
                "status": OrderStatus.SHIPPED.value,
                "total_fen": 100,
                "paid_fen": 100,
                "refunded_fen": 0,
                "receiver_name": "张三",
                "receiver_phone": "13800001111",
                "receiver_address": "浙江省杭州市西湖区文三路 1 号",
                "remark": "",
                "created_at": shipped_at - timedelta(hours=1),
                "updated_at": shipped_at,
                "expires_at": None,
                "reminded_at": None,
                "paid_at": shipped_at - timedelta(minutes=30),
                "closed_at": None,
            }
            for i in ids
        ]
        lines = [
            {
                "id": i,
                "order_id": i,
                "variant_id": variant.id,
                "item_id": item.id,
                "position": 1,
                "item_name": item.name,
                "variant_name": variant.name,
                "unit_price_fen": 100,
                "quantity": 1,
            }
            for i in ids
        ]
        parcels = [
            {
                "id": i,
                "order_id": i,
                "carrier_code": "shunfeng",
                "carrier_name": "顺丰",
                "number": NUMBER,
                "state": "",
                "shipped_at": shipped_at,
                "delivered_at": None,
                "in_transit": True,
                "next_poll_at": due_at,
                "poll_failures": 0,
                "last_error": "",
            }
            for i in ids
        ]
        async with database.write() as session:
            await session.execute(insert(ShopOrder), orders)
            await session.execute(insert(OrderLine), lines)
            await session.execute(insert(Shipment), parcels)
    return {"item_id": item.id, "variant_id": variant.id}


async def counts(database: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from models.tables import OutboxMessage, Shipment, TrackingEventRow

    async with database.read() as session:
        events = (
            await session.execute(select(func.count()).select_from(TrackingEventRow))
        ).scalar_one()
        outbox = (
            await session.execute(select(func.count()).select_from(OutboxMessage))
        ).scalar_one()
        in_transit = (
            await session.execute(
                select(func.count()).select_from(Shipment).where(Shipment.in_transit.is_(True))
            )  # type: ignore[attr-defined]
        ).scalar_one()
        failures = (
            await session.execute(
                select(func.count()).select_from(Shipment).where(Shipment.poll_failures > 0)
            )
        ).scalar_one()
    return {
        "events": events,
        "outbox": outbox,
        "in_transit": in_transit,
        "shipments_with_failures": failures,
    }


# --- sweeping --------------------------------------------------------------------------


class LoopLag:
    """Largest delay of a 5 ms timer while a sweep runs: how long the event loop was
    blocked at a stretch (a bot's commands wait that long during a clock tick). The
    main thread's own CPU during that stretch tells a busy loop (CPU ≈ stall) from a
    process that was not scheduled or waited in a system call (CPU ≈ 0). Garbage
    collector pauses are timed too."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_cpu = 0.0
        self.gc_total = 0.0
        self.gc_worst = 0.0
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            t, c = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.005)
            lag = time.perf_counter() - t - 0.005
            if lag > self.worst:
                self.worst, self.worst_cpu = lag, time.thread_time() - c

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            pause = time.perf_counter() - self._gc_started
            self.gc_total += pause
            self.gc_worst = max(self.gc_worst, pause)

    def __enter__(self) -> LoopLag:
        gc.callbacks.append(self._gc)
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._gc)
        if self._task is not None:
            self._task.cancel()


async def sweep(
    database: Any,
    provider: Any,
    now: Any,
    batch: int,
    fake: FakeServer,
    *,
    limit: int,
    trace: bool = False,
) -> dict[str, Any]:
    """poll_due(batch) again and again until a call finds nothing due or `limit`
    shipments were polled; at most ceil(limit / batch) + 2 calls."""
    from services.shipping import poll_due

    before = await counts(database)
    gc.collect()
    if trace:
        tracemalloc.start()
    fake_cpu0 = fake.cpu_seconds()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    calls = polled = new_events = 0
    failures: list[str] = []
    slowest_call = 0.0
    with LoopLag() as lag:
        for _ in range(math.ceil(limit / batch) + 2):
            if polled >= limit:
                break
            t = time.perf_counter()
            report = await poll_due(
                database, provider, now, INTERVAL, batch=min(batch, limit - polled)
            )
            slowest_call = max(slowest_call, time.perf_counter() - t)
            calls += 1
            polled += report.polled
            new_events += report.new_events
            failures.extend(report.failures)
            if report.polled == 0:
                break
        await asyncio.sleep(0)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    fake_cpu = fake.cpu_seconds() - fake_cpu0
    traced_peak = None
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        traced_peak = round(peak / 1024 / 1024, 2)
    after = await counts(database)
    result: dict[str, Any] = {
        "poll_due_calls": calls,
        "polled": polled,
        "wall_s": round(wall, 3),
        "shipments_per_s": round(polled / wall, 1) if polled and wall > 0 else 0.0,
        "ms_per_shipment": round(wall / polled * 1000, 3) if polled else 0.0,
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_shipment": round(cpu / polled * 1000, 3) if polled else 0.0,
        "fake_server_cpu_s": round(fake_cpu, 3),
        "slowest_poll_due_call_s": round(slowest_call, 3),
        "worst_event_loop_stall_ms": round(lag.worst * 1000, 1),
        "worst_stall_main_thread_cpu_ms": round(lag.worst_cpu * 1000, 1),
        "gc_pause_total_ms": round(lag.gc_total * 1000, 1),
        "gc_pause_worst_ms": round(lag.gc_worst * 1000, 1),
        "new_events": new_events,
        "events_stored": after["events"] - before["events"],
        "outbox_rows_created": after["outbox"] - before["outbox"],
        "failures": len(failures),
        "still_in_transit": after["in_transit"],
        "rss_mib_after": round(current_rss_mib(), 1),
        "peak_rss_mib_so_far": round(peak_rss_mib(), 1),
    }
    if traced_peak is not None:
        result["tracemalloc_peak_mib"] = traced_peak
    return result


def _clear_proxies() -> None:
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


async def fresh_database(prefix: str) -> tuple[Any, Path]:
    from models.db import Database

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    database = Database(f"sqlite+aiosqlite:///{workdir / 'shop.db'}")
    await database.migrate()
    return database, workdir


async def provider_sample(sample: int, batch: int) -> dict[str, Any]:
    """The provider exactly as the clock plugin builds it (a new httpx client, hence a new
    SSL context, per query) vs the same provider given one shared httpx transport, on
    the same database: `sample` shipments each, first sweep (3 new events + 1 notice)."""
    import httpx

    from models.types import utcnow
    from services.tracking import Kuaidi100Provider
    from tests.services.fake_kuaidi100 import CUSTOMER, KEY

    database, _ = await fresh_database("bench-track-sample-")
    result: dict[str, Any] = {"shipments_each": sample}
    try:
        now = utcnow()
        await seed(database, 3 * sample, now)
        with FakeServer() as fake:
            production = Kuaidi100Provider(CUSTOMER, KEY, fake.url)
            shared = Kuaidi100Provider(
                CUSTOMER, KEY, fake.url, transport=httpx.AsyncHTTPTransport()
            )
            result["production_provider"] = await sweep(
                database, production, now, batch, fake, limit=sample
            )
            result["shared_transport"] = await sweep(
                database, shared, now, batch, fake, limit=sample
            )
            result["production_provider_traced"] = await sweep(
                database, production, now, batch, fake, limit=sample, trace=True
            )
    finally:
        await database.dispose()
    return result


async def scale_run(shipments: int, batch: int) -> dict[str, Any]:
    """`shipments` in transit, swept three times with the shared-transport provider."""
    import httpx

    from models.types import utcnow
    from services.tracking import Kuaidi100Provider
    from tests.services.fake_kuaidi100 import CUSTOMER, KEY

    database, workdir = await fresh_database("bench-track-")
    result: dict[str, Any] = {"shipments": shipments}
    try:
        now = utcnow()
        t0 = time.perf_counter()
        await seed(database, shipments, now)
        result["seed_s"] = round(time.perf_counter() - t0, 3)
        result["rss_mib_after_seed"] = round(current_rss_mib(), 1)
        with FakeServer() as fake:
            provider = Kuaidi100Provider(
                CUSTOMER, KEY, fake.url, transport=httpx.AsyncHTTPTransport()
            )
            result["first"] = await sweep(database, provider, now, batch, fake, limit=shipments)
            result["again"] = await sweep(database, provider, now, batch, fake, limit=shipments)
            result["after_interval"] = await sweep(
                database, provider, now + INTERVAL, batch, fake, limit=shipments
            )
        result["fake_requests_answered"] = getattr(fake, "answered", -1)
        result["final"] = await counts(database)
        result["db_size_mib"] = round(
            sum(p.stat().st_size for p in workdir.glob("shop.db*")) / 1024 / 1024, 1
        )
    finally:
        await database.dispose()
    return result


async def run(shipments: int, batch: int, sample: int) -> dict[str, Any]:
    _clear_proxies()
    result: dict[str, Any] = {"batch": batch, "interval_minutes": INTERVAL.total_seconds() / 60}
    result["peak_rss_mib_at_start"] = round(peak_rss_mib(), 1)
    if sample:
        result["sample"] = await provider_sample(sample, batch)
        result["peak_rss_mib_after_sample"] = round(peak_rss_mib(), 1)
    scale = await scale_run(shipments, batch)
    result["scale"] = scale
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    checks = {
        "first: every shipment polled once": scale["first"]["polled"] == shipments,
        "first: 3 events per shipment": scale["first"]["events_stored"]
        == EVENTS_PER_SHIPMENT * shipments,
        "first: 1 notice per shipment": scale["first"]["outbox_rows_created"] == shipments,
        "again: nothing due": scale["again"]["polled"] == 0,
        "after interval: every shipment polled again": scale["after_interval"]["polled"]
        == shipments,
        "after interval: 0 new events": scale["after_interval"]["events_stored"] == 0,
        "after interval: 0 new notices": scale["after_interval"]["outbox_rows_created"] == 0,
        "no poll failures": scale["first"]["failures"] == 0
        and scale["after_interval"]["failures"] == 0,
        "fake answered exactly the polls": scale["fake_requests_answered"] == 2 * shipments,
    }
    if sample:
        for name, r in result["sample"].items():
            if isinstance(r, dict):
                checks[f"sample {name}: 3 events + 1 notice each"] = (
                    r["polled"] == sample
                    and r["events_stored"] == 3 * sample
                    and r["outbox_rows_created"] == sample
                )
    result["checks"] = checks
    result["ok"] = all(checks.values())
    return result


def print_result(result: dict[str, Any]) -> None:
    head = (
        f"{'sweep':<34} {'calls':>5} {'polled':>6} {'wall s':>7} {'ship/s':>7} {'ms/sh':>6} {'CPU ms/sh':>9} "
        f"{'stall ms':>8} {'events':>6} {'outbox':>6} {'RSS MiB':>7}"
    )
    print(head)
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, r in result.get("sample", {}).items():
        if isinstance(r, dict):
            rows.append((f"sample: {name}", r))
    scale = result["scale"]
    for name in ("first", "again", "after_interval"):
        rows.append((f"{scale['shipments']}: {name}", scale[name]))
    for name, r in rows:
        print(
            f"{name:<34} {r['poll_due_calls']:>5} {r['polled']:>6} {r['wall_s']:>7.2f} {r['shipments_per_s']:>7.1f} "
            f"{r['ms_per_shipment']:>6.2f} {r['cpu_ms_per_shipment']:>9.3f} {r['worst_event_loop_stall_ms']:>8.1f} "
            f"{r['events_stored']:>6} {r['outbox_rows_created']:>6} {r['rss_mib_after']:>7.1f}"
            + (
                f"  tracemalloc peak {r['tracemalloc_peak_mib']} MiB"
                if "tracemalloc_peak_mib" in r
                else ""
            )
        )
    print(
        f"seed {scale['seed_s']} s; peak RSS {result['peak_rss_mib']} MiB (at start {result['peak_rss_mib_at_start']} MiB); "
        f"db {scale['db_size_mib']} MiB"
    )
    for name, passed in result["checks"].items():
        print(f"  {'ok ' if passed else 'FAIL'} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shipments", type=int, default=10_000)
    parser.add_argument(
        "--batch", type=int, default=50, help="poll_due batch (the clock job uses 50)"
    )
    parser.add_argument(
        "--sample", type=int, default=100, help="shipments per provider sample (0: skip)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake()
        return
    os.chdir(ROOT)
    started = time.perf_counter()
    result = asyncio.run(run(args.shipments, args.batch, args.sample))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print_result(result)
    write_json(args.json, result)
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
