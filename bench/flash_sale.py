"""Flash sale over the real protocol: 1,000 buyers send 确认 at once for 100 units.

A fresh shop (`python bot.py`, throw-away SQLite, flood guard off). The owner creates an
item with stock 100. Each of 1,000 simulated buyers adds an address and gets an order
summary with `/下单 <item> 1` (setup, bounded concurrency, not timed). Then all 1,000
send `确认` at the same moment. Exactly 100 must answer `下单成功` and 900 `库存不足`;
`/详情` must show the variant 售罄; and after the bot stops, the database must hold
stock 0 and exactly 100 units ordered (zero oversell), with no summary left over.

Reported: latency of the 确认 answers (the event leaves the simulator → the answer
arrives) p50/p99/max, split by outcome, and the wall time from the first 确认 sent to
the last answer.

    python bench/flash_sale.py [--buyers 1000] [--stock 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
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
    process_cpu_seconds,
    shop_env,
    write_json,
)

from tools.onebot_sim import OneBotSimulator

ADDRESS = "/地址 添加 张三 13800001111 浙江省杭州市西湖区文三路 1 号"
BASE_USER = 500_001
VIEWER = 599_999  # a customer who only looks
SETUP_CONCURRENCY = 50


async def sale(buyers: int, stock: int, workdir: Path) -> dict[str, Any]:
    bot = BotProcess(
        "bot.py",
        workdir,
        shop_env(workdir, CONFIRM_TIMEOUT_SECONDS="1800", SHOP_NAME="秒杀小店"),
    )
    bot.start()
    sim = OneBotSimulator(bot.url, access_token=TOKEN)
    result: dict[str, Any] = {"buyers": buyers, "stock": stock}
    try:
        await sim.connect(timeout=90)
        replies = PrivateReplies(sim)
        reply = await sim.ask_private(OWNER, f"/新品 秒杀商品 9.9 {stock}", timeout=30)
        match = re.search(r"商品编号：(\d+)", reply.text)
        if match is None:
            raise RuntimeError(f"/新品 failed: {reply.text!r}")
        item = int(match.group(1))
        result["item_id"] = item
        users = [BASE_USER + i for i in range(buyers)]

        async def prepare(user_id: int) -> None:
            sent, _ = await ask(sim, replies, user_id, ADDRESS, timeout=60)
            if "地址" not in sent.text:
                raise RuntimeError(f"address of {user_id}: {sent.text!r}")
            sent, _ = await ask(sim, replies, user_id, f"/下单 {item} 1", timeout=60)
            if "请确认订单" not in sent.text:
                raise RuntimeError(f"summary of {user_id}: {sent.text!r}")

        t = time.perf_counter()
        await bounded_gather(SETUP_CONCURRENCY, [lambda u=u: prepare(u) for u in users])
        result["setup_s"] = round(time.perf_counter() - t, 2)
        await asyncio.sleep(1.0)  # let the bot settle (outbox, logging) before the burst

        # The burst: every future is registered first, then all 确认 leave at once.
        futures = {u: replies.expect(u) for u in users}
        sent_at: dict[int, float] = {}

        async def send(user_id: int) -> None:
            sent_at[user_id] = time.perf_counter()
            await sim.send_private(user_id, "确认", f"压测{user_id}")

        cpu0 = process_cpu_seconds(bot.pid)
        first = time.perf_counter()
        await asyncio.gather(*(send(u) for u in users))
        all_sent = time.perf_counter()
        _done, pending = await asyncio.wait(futures.values(), timeout=180)
        bot_cpu = process_cpu_seconds(bot.pid) - cpu0
        answers = {u: f.result() for u, f in futures.items() if f.done()}
        last = max((a.mono for a in answers.values()), default=all_sent)
        outcome: dict[str, list[float]] = {"ok": [], "sold_out": [], "other": []}
        others: list[str] = []
        for user_id, answer in answers.items():
            ms = (answer.mono - sent_at[user_id]) * 1000
            if "下单成功" in answer.text:
                outcome["ok"].append(ms)
            elif "库存不足" in answer.text:
                outcome["sold_out"].append(ms)
            else:
                outcome["other"].append(ms)
                others.append(answer.text[:80])
        # in which order did the answers come: by send order or not?
        by_arrival = sorted(answers.items(), key=lambda kv: kv[1].mono)
        winners_send_rank = sorted(
            sorted(sent_at, key=sent_at.__getitem__).index(u)
            for u, a in by_arrival
            if "下单成功" in a.text
        )
        result.update(
            {
                "answered": len(answers),
                "unanswered": len(pending),
                "orders_ok": len(outcome["ok"]),
                "sold_out": len(outcome["sold_out"]),
                "other_answers": len(outcome["other"]),
                "other_samples": others[:5],
                "send_burst_s": round(all_sent - first, 3),
                "wall_first_sent_to_last_answer_s": round(last - first, 3),
                "confirms_per_s": round(len(answers) / (last - first), 1) if last > first else 0.0,
                "latency_ms": latency_summary(
                    outcome["ok"] + outcome["sold_out"] + outcome["other"]
                ),
                "latency_ok_ms": latency_summary(outcome["ok"]),
                "latency_sold_out_ms": latency_summary(outcome["sold_out"]),
                "bot_cpu_s_during_burst": round(bot_cpu, 3),
                "bot_cpu_ms_per_confirm": round(bot_cpu / max(1, len(answers)) * 1000, 3),
                "winners_send_rank_max": max(winners_send_rank, default=-1),
            }
        )
        # Asked as a customer: the owner's chat also receives the new-order notices.
        detail, _ = await ask(sim, replies, VIEWER, f"/详情 {item}", timeout=30)
        result["detail_text"] = detail.text
        line = next((row for row in detail.text.splitlines() if row.startswith(f"{item}")), "")
        result["detail_variant_line"] = line
        replies.close()
    finally:
        await sim.close()
        bot.stop()
    result["tracebacks_in_log"] = bot.tracebacks()
    result["database"] = check_database(workdir / "shop.db", result.get("item_id", -1))
    return result


def check_database(path: Path, item_id: int) -> dict[str, Any]:
    """Read the shop's SQLite file directly once the bot has stopped."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        stock, sold = conn.execute(
            "SELECT stock, sold FROM variant WHERE item_id = ?", (item_id,)
        ).fetchone()
        ordered_units, orders = conn.execute(
            "SELECT COALESCE(SUM(l.quantity), 0), COUNT(DISTINCT l.order_id) FROM order_line l "
            "JOIN shop_order o ON o.id = l.order_id WHERE l.item_id = ? AND o.status != 'cancelled'",
            (item_id,),
        ).fetchone()
        drafts = conn.execute("SELECT COUNT(*) FROM checkout_draft").fetchone()[0]
        max_per_user = conn.execute(
            "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM shop_order GROUP BY user_id)"
        ).fetchone()[0]
    return {
        "variant_stock": stock,
        "variant_sold_column": sold,
        "units_ordered": ordered_units,
        "orders": orders,
        "drafts_left": drafts,
        "max_orders_per_user": max_per_user,
    }


def checks(result: dict[str, Any]) -> dict[str, bool]:
    db = result["database"]
    stock, buyers = result["stock"], result["buyers"]
    return {
        f"every buyer answered ({buyers})": result["answered"] == buyers,
        f"exactly {stock} 下单成功": result["orders_ok"] == stock,
        f"exactly {buyers - stock} 库存不足": result["sold_out"] == buyers - stock,
        "/详情 shows the variant 售罄": "售罄" in result["detail_variant_line"],
        "database: stock 0": db["variant_stock"] == 0,
        f"database: {stock} units in {stock} orders (zero oversell)": db["units_ordered"] == stock
        and db["orders"] == stock,
        "database: no summary left": db["drafts_left"] == 0,
        "database: at most one order per buyer": db["max_orders_per_user"] <= 1,
        "no traceback in the bot log": result["tracebacks_in_log"] == 0,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        "| answers | count | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key, count in (
        ("`下单成功`", "latency_ok_ms", result["orders_ok"]),
        ("`库存不足`", "latency_sold_out_ms", result["sold_out"]),
        ("all 确认 answers", "latency_ms", result["answered"]),
    ):
        lat = result[key]
        rows.append(
            f"| {label} | {count} | {lat['p50']:.0f} | {lat['p99']:.0f} | {lat['max']:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-flash-"))
    result = asyncio.run(sale(args.buyers, args.stock, workdir))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["checks"] = checks(result)
    result["ok"] = all(result["checks"].values())
    result["markdown"] = markdown(result)
    print(f"flash sale: {args.buyers} buyers, stock {args.stock}; setup {result['setup_s']} s")
    print(result["markdown"])
    print(
        f"all {result['answered']} 确认 sent within {result['send_burst_s']} s; first sent → last answer "
        f"{result['wall_first_sent_to_last_answer_s']} s ({result['confirms_per_s']} 确认/s); "
        f"bot CPU {result['bot_cpu_ms_per_confirm']} ms per 确认"
    )
    print(f"/详情: {result['detail_variant_line']!r}; database: {result['database']}")
    for name, passed in result["checks"].items():
        print(f"  {'ok ' if passed else 'FAIL'} {name}")
    write_json(args.json, result)
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
