"""Throughput and latency over the real protocol: the shop bot vs a bare echo bot.

Starts `python bot.py` (a throw-away shop, SHOP_DEMO=true, flood guard off: a SQLite file,
or with `--database-url postgresql+asyncpg://...` a fresh schema on that PostgreSQL
server, dropped afterwards) and
`python bench/echo_bot.py` (one `/echo` command), each on a free port of 127.0.0.1,
and drives both over the OneBot v11 reverse WebSocket with tools/onebot_sim/. For
1, 10 and 100 concurrent users (private chats, distinct user ids) it measures:

  echo floor   `/echo hi` on the echo bot (simulator `run_load`)
  /商品        the catalog page (simulator `run_load`)
  /详情 1      one item with its variants (simulator `run_load`)
  order flow   `/下单 <N> 1` → summary, then `确认` → `下单成功` (a custom loop per user:
               the users' addresses are added first, untimed; N is an item created by
               the owner with `/新品 压测商品 1 1000000`, so stock never runs out)

Latency is the simulator's: the event leaves the simulator → the bot's send call for
that user arrives. Throughput is answered commands per second over the cell. Each
cell's p50 and throughput are divided by the echo floor's at the same concurrency.
Both bots and the simulator share the machine's cores, so the figures include the
load generator's own CPU; the bot's CPU per command is reported separately.

With `--processes 2` the shop runs as two bot processes on the one database (meant for
PostgreSQL), each with its own simulator connection; the users of a cell are split
between them (user i → process i mod N). The shop cells are then driven by one loop per
user (send, wait for that user's answer, repeat: the same measure as the simulator's
`run_load`, which drives one connection only); the echo floor stays one process.

    python bench/load.py [--json out.json] [--rounds 1] [--scale 1.0]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    OWNER,
    BotProcess,
    Door,
    MachineCpu,
    PostgresCpu,
    bounded_gather,
    code_state,
    database_kind,
    latency_summary,
    machine_info,
    process_cpu_seconds,
    shown_url,
    start_shops,
    throwaway_database,
    write_json,
)

CONCURRENCY = (1, 10, 100)
# commands per user, so that each cell takes a few seconds on a 2-core machine
COMMANDS = {1: 200, 10: 50, 100: 10}
ADDRESS = "/地址 添加 张三 13800001111 浙江省杭州市西湖区文三路 1 号"
SCENARIOS = ("echo", "商品", "详情", "order")
LABELS = {
    "echo": "echo bot `/echo hi` (floor)",
    "商品": "shop `/商品`",
    "详情": "shop `/详情 1`",
    "order": "shop order flow `/下单` + `确认`",
}


class Cell:
    """Bot CPU (all the bot's processes) over a measured stretch (from /proc, so no
    cooperation from the bot), the simulator's CPU, and how busy the machine was."""

    def __init__(self, bots: list[BotProcess]) -> None:
        self.bots = bots

    def __enter__(self) -> Cell:
        self.cpu0 = [process_cpu_seconds(bot.pid) for bot in self.bots]
        self.client0 = time.process_time()
        self.server = PostgresCpu()
        self.machine = MachineCpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bot_cpu = sum(
            process_cpu_seconds(bot.pid) - cpu0
            for bot, cpu0 in zip(self.bots, self.cpu0, strict=True)
        )
        self.client_cpu = time.process_time() - self.client0
        self.server_cpu = self.server.seconds()
        self.machine_busy = self.machine.busy_fraction()

    def figures(self, answered: int) -> dict[str, float]:
        return {
            "bot_cpu_ms_per_cmd": round(self.bot_cpu / max(1, answered) * 1000, 3),
            "client_cpu_ms_per_cmd": round(self.client_cpu / max(1, answered) * 1000, 3),
            # every postgres process's CPU (an estimate; meaningful on PostgreSQL only)
            "postgres_cpu_ms_per_cmd": round(self.server_cpu / max(1, answered) * 1000, 3),
            "machine_cpu_busy": self.machine_busy,
        }


def door_of(doors: list[Door], user_id: int, base: int) -> Door:
    """User `base + i` talks to process i mod N, for the whole run."""
    return doors[(user_id - base) % len(doors)]


async def simple_cell(
    doors: list[Door], users: int, commands: int, message: str, base: int
) -> dict[str, Any]:
    with Cell([door.bot for door in doors]) as cell:
        if len(doors) == 1:
            result = await doors[0].sim.run_load(
                users, commands, message, None, timeout=30.0, base_user_id=base
            )
        else:
            result = await split_cell(doors, users, commands, message, base)
    result.update(cell.figures(result["ok"]))
    return result


async def split_cell(
    doors: list[Door], users: int, commands: int, message: str, base: int
) -> dict[str, Any]:
    """`run_load` over several processes: each user sends, waits for its answer, repeats."""
    latencies: list[float] = []
    timeouts = 0

    async def user_loop(user_id: int) -> None:
        nonlocal timeouts
        door = door_of(doors, user_id, base)
        for _ in range(commands):
            try:
                _sent, ms = await door.ask(user_id, message)
            except TimeoutError:
                timeouts += 1
                continue
            latencies.append(ms)

    started = time.perf_counter()
    await asyncio.gather(*(user_loop(base + i) for i in range(users)))
    duration = time.perf_counter() - started
    return {
        "users": users,
        "commands_per_user": commands,
        "total": users * commands,
        "ok": len(latencies),
        "timeouts": timeouts,
        "duration_s": round(duration, 4),
        "throughput_cmd_s": round(len(latencies) / duration, 2) if duration > 0 else 0.0,
        "latency_ms": latency_summary(latencies),
    }


async def add_addresses(doors: list[Door], user_ids: list[int], base: int) -> None:
    async def one(user_id: int) -> None:
        sent, _ = await door_of(doors, user_id, base).ask(user_id, ADDRESS)
        if "地址" not in sent.text:
            raise RuntimeError(f"address for {user_id} not added: {sent.text!r}")

    await bounded_gather(20, [lambda u=u: one(u) for u in user_ids])


async def order_cell(
    doors: list[Door], users: int, orders: int, item: int, base: int
) -> dict[str, Any]:
    """`orders` times per user: /下单 → summary, 确认 → order; users run concurrently."""
    buy: list[float] = []
    confirm: list[float] = []
    failures: list[str] = []

    async def user_loop(user_id: int) -> None:
        door = door_of(doors, user_id, base)
        for _ in range(orders):
            try:
                sent, ms = await door.ask(user_id, f"/下单 {item} 1")
                if "请确认订单" not in sent.text:
                    failures.append(f"下单: {sent.text[:60]!r}")
                    continue
                buy.append(ms)
                sent, ms = await door.ask(user_id, "确认")
                if "下单成功" not in sent.text:
                    failures.append(f"确认: {sent.text[:60]!r}")
                    continue
                confirm.append(ms)
            except TimeoutError:
                failures.append("timeout")

    with Cell([door.bot for door in doors]) as cell:
        started = time.perf_counter()
        await asyncio.gather(*(user_loop(base + i) for i in range(users)))
        duration = time.perf_counter() - started
    answered = len(buy) + len(confirm)
    both = buy + confirm
    return {
        "users": users,
        "orders_per_user": orders,
        "total": users * orders * 2,
        "ok": answered,
        "orders_placed": len(confirm),
        "failures": len(failures),
        "failure_samples": failures[:5],
        "duration_s": round(duration, 4),
        "throughput_cmd_s": round(answered / duration, 2) if duration > 0 else 0.0,
        "orders_s": round(len(confirm) / duration, 2) if duration > 0 else 0.0,
        "latency_ms": latency_summary(both),
        "latency_下单_ms": latency_summary(buy),
        "latency_确认_ms": latency_summary(confirm),
        **cell.figures(answered),
    }


async def create_item(door: Door) -> int:
    reply = await door.sim.ask_private(OWNER, "/新品 压测商品 1 1000000", timeout=30)
    match = re.search(r"商品编号：(\d+)", reply.text)
    if match is None:
        raise RuntimeError(f"/新品 failed: {reply.text!r}")
    return int(match.group(1))


def median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median p50 (all of its figures kept together)."""
    ordered = sorted(runs, key=lambda r: r["latency_ms"]["p50"])
    chosen = dict(ordered[len(ordered) // 2])
    if len(runs) > 1:
        chosen["rounds"] = [
            {
                "p50": r["latency_ms"]["p50"],
                "p99": r["latency_ms"]["p99"],
                "throughput_cmd_s": r["throughput_cmd_s"],
            }
            for r in runs
        ]
    return chosen


async def run(rounds: int, scale: float, server_url: str | None, processes: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    async with throwaway_database(server_url, workdir / "shop") as database_url:
        results = await measure(rounds, scale, workdir, database_url, processes)
    results["database_kind"] = database_kind(database_url)
    results["database_url"] = shown_url(database_url)
    results["processes"] = processes
    add_ratios(results)
    return results


async def measure(
    rounds: int, scale: float, workdir: Path, database_url: str, processes: int
) -> dict[str, Any]:
    echo = Door(BotProcess("bench/echo_bot.py", workdir / "echo"))
    echo.bot.start()
    shops: list[Door] = []
    results: dict[str, Any] = {
        "machine": machine_info(),
        "code": code_state(),
        "rounds": rounds,
        "cells": {},
    }
    try:
        shops = await start_shops(processes, workdir, database_url)
        await echo.connect()
        item = await create_item(shops[0])
        results["order_item_id"] = item
        commands = {c: max(1, round(k * scale)) for c, k in COMMANDS.items()}
        # Distinct users per (cell, round): base ids never overlap.
        bases = {
            (name, c, r): 100_000 + 10_000 * i
            for i, (name, c, r) in enumerate(
                (n, c, r) for n in SCENARIOS for c in CONCURRENCY for r in range(rounds)
            )
        }
        t = time.perf_counter()
        for c in CONCURRENCY:
            for r in range(rounds):
                base = bases["order", c, r]
                await add_addresses(shops, [base + i for i in range(c)], base)
        results["address_setup_s"] = round(time.perf_counter() - t, 2)
        # Warm-up (not reported): caches, statement compilation, first connections; on
        # every process.
        await echo.sim.run_load(10, 10, "/echo hi", base_user_id=900_000)
        warm_base = 900_200
        for index, shop in enumerate(shops):
            await shop.sim.run_load(10, 10, "/商品", base_user_id=900_000 + 1000 * index)
            await shop.sim.run_load(10, 10, "/详情 1", base_user_id=900_100 + 1000 * index)
        warm = list(range(warm_base, warm_base + 10 * len(shops)))
        await add_addresses(shops, warm, warm_base)
        await order_cell(shops, len(warm), 1, item, warm_base)

        raw: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for r in range(rounds):
            for c in CONCURRENCY:
                k = commands[c]
                cells = {
                    "echo": lambda c=c, k=k, r=r: simple_cell(
                        [echo], c, k, "/echo hi", bases["echo", c, r]
                    ),
                    "商品": lambda c=c, k=k, r=r: simple_cell(
                        shops, c, k, "/商品", bases["商品", c, r]
                    ),
                    "详情": lambda c=c, k=k, r=r: simple_cell(
                        shops, c, k, "/详情 1", bases["详情", c, r]
                    ),
                    "order": lambda c=c, k=k, r=r: order_cell(
                        shops, c, max(1, k // 2), item, bases["order", c, r]
                    ),
                }
                for name in SCENARIOS:
                    result = await cells[name]()
                    raw.setdefault((name, c), []).append(result)
                    lat = result["latency_ms"]
                    print(
                        f"  round {r + 1} {name:<5} users {c:>3}: {result['ok']}/{result['total']} ok, "
                        f"{result['throughput_cmd_s']:>7.1f} cmd/s, p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                        f"bot CPU {result['bot_cpu_ms_per_cmd']:.2f} ms/cmd",
                        flush=True,
                    )
        for (name, c), runs in raw.items():
            results["cells"][f"{name}@{c}"] = median_cell(runs)
    finally:
        for door in [*shops, echo]:
            await door.close()
    results["tracebacks_in_logs"] = {
        "shop": sum(door.bot.tracebacks() for door in shops),
        "echo": echo.bot.tracebacks(),
    }
    return results


def ratio(value: float, floor: float) -> float:
    """value / floor, 0.0 when the floor measured 0 (CPU comes in 10 ms ticks: a tiny
    `--scale` can measure none)."""
    return round(value / floor, 2) if floor else 0.0


def add_ratios(results: dict[str, Any]) -> None:
    cells = results["cells"]
    for c in CONCURRENCY:
        floor = cells[f"echo@{c}"]
        for name in SCENARIOS:
            cell = cells[f"{name}@{c}"]
            cell["p50_x_echo"] = ratio(cell["latency_ms"]["p50"], floor["latency_ms"]["p50"])
            cell["throughput_x_echo"] = ratio(cell["throughput_cmd_s"], floor["throughput_cmd_s"])
            cell["bot_cpu_x_echo"] = ratio(cell["bot_cpu_ms_per_cmd"], floor["bot_cpu_ms_per_cmd"])


def markdown_table(results: dict[str, Any]) -> str:
    rows = [
        f"Shop database: {results['database_kind']}, {results['processes']} bot "
        f"process{'es' if results['processes'] > 1 else ''}; the echo bot one process.",
        "",
        "| users | scenario | commands | cmd/s | p50 ms | p99 ms | max ms | bot CPU ms/cmd | p50 × echo | cmd/s × echo |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONCURRENCY:
        for name in SCENARIOS:
            cell = results["cells"][f"{name}@{c}"]
            lat = cell["latency_ms"]
            rows.append(
                f"| {c} | {LABELS[name]} | {cell['ok']}/{cell['total']} | {cell['throughput_cmd_s']:.0f} | "
                f"{lat['p50']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | {cell['bot_cpu_ms_per_cmd']:.2f} | "
                f"{cell['p50_x_echo']:.2f} | {cell['throughput_x_echo']:.2f} |"
            )
    busy = [cell.get("machine_cpu_busy", 0.0) for cell in results["cells"].values()]
    rows.append("")
    rows.append(f"Machine CPU busy during the cells: {min(busy):.0%}–{max(busy):.0%}.")
    if results["database_kind"] == "postgresql":
        parts = [
            f"{LABELS[name]} at {c}: {results['cells'][f'{name}@{c}']['postgres_cpu_ms_per_cmd']:.2f}"
            for c in CONCURRENCY
            for name in SCENARIOS[1:]
        ]
        rows.append(
            "PostgreSQL server CPU ms per command (all postgres processes, an estimate): "
            + "; ".join(parts)
            + "."
        )
    rows.append("")
    rows.append("Order flow split by step (p50 / p99 ms):")
    rows.append("")
    rows.append("| users | `/下单` p50 | `/下单` p99 | `确认` p50 | `确认` p99 | orders/s |")
    rows.append("|---:|---:|---:|---:|---:|---:|")
    for c in CONCURRENCY:
        cell = results["cells"][f"order@{c}"]
        b, k = cell["latency_下单_ms"], cell["latency_确认_ms"]
        rows.append(
            f"| {c} | {b['p50']:.1f} | {b['p99']:.1f} | {k['p50']:.1f} | {k['p99']:.1f} | {cell['orders_s']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds; each cell keeps its median"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the commands per user")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql+asyncpg://...): the shop gets a fresh schema "
        "there, dropped afterwards; default a throw-away SQLite file",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="shop bot processes on the one database"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    started = time.perf_counter()
    results = asyncio.run(run(args.rounds, args.scale, args.database_url, args.processes))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["markdown"] = markdown_table(results)
    print(results["markdown"])
    print(f"wall {results['wall_s']} s; tracebacks in logs: {results['tracebacks_in_logs']}")
    write_json(args.json, results)
    failed = any(cell["ok"] != cell["total"] for cell in results["cells"].values())
    if failed or any(results["tracebacks_in_logs"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
