"""Throughput and latency over the real protocol: the shop bot vs a bare echo bot.

Starts `python bot.py` (a throw-away SQLite shop, SHOP_DEMO=true, flood guard off) and
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

    python bench/load.py [--json out.json] [--rounds 1] [--scale 1.0]
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
    TOKEN,
    BotProcess,
    PrivateReplies,
    ask,
    bounded_gather,
    latency_summary,
    machine_info,
    process_cpu_seconds,
    shop_env,
    write_json,
)

from tools.onebot_sim import OneBotSimulator

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
    """Bot CPU over a measured stretch (from /proc, so no cooperation from the bot)."""

    def __init__(self, bot: BotProcess) -> None:
        self.bot = bot

    def __enter__(self) -> Cell:
        self.cpu0 = process_cpu_seconds(self.bot.pid)
        self.client0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bot_cpu = process_cpu_seconds(self.bot.pid) - self.cpu0
        self.client_cpu = time.process_time() - self.client0


async def simple_cell(
    sim: OneBotSimulator, bot: BotProcess, users: int, commands: int, message: str, base: int
) -> dict[str, Any]:
    with Cell(bot) as cell:
        result = await sim.run_load(users, commands, message, None, timeout=30.0, base_user_id=base)
    result["bot_cpu_ms_per_cmd"] = round(cell.bot_cpu / max(1, result["ok"]) * 1000, 3)
    result["client_cpu_ms_per_cmd"] = round(cell.client_cpu / max(1, result["ok"]) * 1000, 3)
    return result


async def add_addresses(sim: OneBotSimulator, replies: PrivateReplies, user_ids: list[int]) -> None:
    async def one(user_id: int) -> None:
        sent, _ = await ask(sim, replies, user_id, ADDRESS)
        if "地址" not in sent.text:
            raise RuntimeError(f"address for {user_id} not added: {sent.text!r}")

    await bounded_gather(20, [lambda u=u: one(u) for u in user_ids])


async def order_cell(
    sim: OneBotSimulator,
    replies: PrivateReplies,
    bot: BotProcess,
    users: int,
    orders: int,
    item: int,
    base: int,
) -> dict[str, Any]:
    """`orders` times per user: /下单 → summary, 确认 → order; users run concurrently."""
    buy: list[float] = []
    confirm: list[float] = []
    failures: list[str] = []

    async def user_loop(user_id: int) -> None:
        for _ in range(orders):
            try:
                sent, ms = await ask(sim, replies, user_id, f"/下单 {item} 1")
                if "请确认订单" not in sent.text:
                    failures.append(f"下单: {sent.text[:60]!r}")
                    continue
                buy.append(ms)
                sent, ms = await ask(sim, replies, user_id, "确认")
                if "下单成功" not in sent.text:
                    failures.append(f"确认: {sent.text[:60]!r}")
                    continue
                confirm.append(ms)
            except TimeoutError:
                failures.append("timeout")

    with Cell(bot) as cell:
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
        "bot_cpu_ms_per_cmd": round(cell.bot_cpu / max(1, answered) * 1000, 3),
        "client_cpu_ms_per_cmd": round(cell.client_cpu / max(1, answered) * 1000, 3),
    }


async def create_item(sim: OneBotSimulator) -> int:
    reply = await sim.ask_private(OWNER, "/新品 压测商品 1 1000000", timeout=30)
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


async def run(rounds: int, scale: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    shop = BotProcess("bot.py", workdir / "shop", shop_env(workdir / "shop"))
    echo = BotProcess("bench/echo_bot.py", workdir / "echo")
    shop.start()
    echo.start()
    shop_sim = OneBotSimulator(shop.url, access_token=TOKEN)
    echo_sim = OneBotSimulator(echo.url, access_token=TOKEN)
    results: dict[str, Any] = {"machine": machine_info(), "rounds": rounds, "cells": {}}
    try:
        await asyncio.gather(shop_sim.connect(timeout=90), echo_sim.connect(timeout=90))
        replies = PrivateReplies(shop_sim)
        item = await create_item(shop_sim)
        results["order_item_id"] = item
        commands = {c: max(1, round(k * scale)) for c, k in COMMANDS.items()}
        # Distinct users per (cell, round): base ids never overlap.
        bases = {
            (name, c, r): 100_000 + 10_000 * i
            for i, (name, c, r) in enumerate(
                (n, c, r) for n in SCENARIOS for c in CONCURRENCY for r in range(rounds)
            )
        }
        order_users = [
            bases["order", c, r] + i for c in CONCURRENCY for r in range(rounds) for i in range(c)
        ]
        t = time.perf_counter()
        await add_addresses(shop_sim, replies, order_users)
        results["address_setup_s"] = round(time.perf_counter() - t, 2)
        # Warm-up (not reported): caches, statement compilation, first connections.
        await echo_sim.run_load(10, 10, "/echo hi", base_user_id=900_000)
        await shop_sim.run_load(10, 10, "/商品", base_user_id=900_000)
        await shop_sim.run_load(10, 10, "/详情 1", base_user_id=900_100)
        warm = list(range(900_200, 900_210))
        await add_addresses(shop_sim, replies, warm)
        await asyncio.gather(*(ask(shop_sim, replies, u, f"/下单 {item} 1") for u in warm))
        await asyncio.gather(*(ask(shop_sim, replies, u, "确认") for u in warm))

        raw: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for r in range(rounds):
            for c in CONCURRENCY:
                k = commands[c]
                cells = {
                    "echo": lambda c=c, k=k, r=r: simple_cell(
                        echo_sim, echo, c, k, "/echo hi", bases["echo", c, r]
                    ),
                    "商品": lambda c=c, k=k, r=r: simple_cell(
                        shop_sim, shop, c, k, "/商品", bases["商品", c, r]
                    ),
                    "详情": lambda c=c, k=k, r=r: simple_cell(
                        shop_sim, shop, c, k, "/详情 1", bases["详情", c, r]
                    ),
                    "order": lambda c=c, k=k, r=r: order_cell(
                        shop_sim, replies, shop, c, max(1, k // 2), item, bases["order", c, r]
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
        replies.close()
    finally:
        await asyncio.gather(shop_sim.close(), echo_sim.close(), return_exceptions=True)
        shop.stop()
        echo.stop()
    results["tracebacks_in_logs"] = {"shop": shop.tracebacks(), "echo": echo.tracebacks()}
    add_ratios(results)
    return results


def add_ratios(results: dict[str, Any]) -> None:
    cells = results["cells"]
    for c in CONCURRENCY:
        floor = cells[f"echo@{c}"]
        for name in SCENARIOS:
            cell = cells[f"{name}@{c}"]
            cell["p50_x_echo"] = round(cell["latency_ms"]["p50"] / floor["latency_ms"]["p50"], 2)
            cell["throughput_x_echo"] = round(
                cell["throughput_cmd_s"] / floor["throughput_cmd_s"], 2
            )
            cell["bot_cpu_x_echo"] = round(
                cell["bot_cpu_ms_per_cmd"] / floor["bot_cpu_ms_per_cmd"], 2
            )


def markdown_table(results: dict[str, Any]) -> str:
    rows = [
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
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    results = asyncio.run(run(args.rounds, args.scale))
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
