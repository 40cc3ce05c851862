"""EPay notify throughput: N orders each with a live payment attempt are paid by N signed
notifies fired at the bot's `/pay/epay/notify` by 50 concurrent HTTP clients.

A fresh shop (`python bot.py`, throw-away SQLite, flood guard off, LOG_LEVEL=INFO so the
one log line per notify is written as in production) with PAYMENT_PROVIDER=epay pointed
at the fake gateway of tools/fake_epay.py, served by this process. Setup (not timed): the
owner creates an item with stock N; N customers each add an address, order one unit,
confirm and ask `/付款` (the bot creates the attempt at the fake's mapi.php). Then the
gateway's side: every payment is marked paid at the fake and its signed notify (POST
form, as 彩虹易支付 sends it) is fired by 50 concurrent clients (httpx.AsyncClient, one
pooled connection each), then every notify again (a gateway's retries).

Checked (the script exits 1 otherwise): every answer is `success`; after the first
round every order is paid with exactly one Payment row and one pending_payment → paid
event; the replay changes no row (payments, events, outbox, attempts); no traceback in
the bot log. Reported: notifies/s, latency p50/p99/max (request sent → answer read)
and the bot's CPU per notify, for the first round and the replay.

    python bench/epay_notify.py [--orders 1000] [--concurrency 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
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

from tools.fake_epay import KEY, PID, FakeEpay
from tools.onebot_sim import OneBotSimulator

ADDRESS = "/地址 添加 张三 13800001111 浙江省杭州市西湖区文三路 1 号"
BASE_USER = 700_001
SETUP_CONCURRENCY = 50
NOTIFY_PATH = "/pay/epay/notify"
CODE = re.compile(r"订单号：([0-9A-Z]{10})")


async def fire(url: str, notifies: list[dict[str, str]], concurrency: int) -> dict[str, Any]:
    """POSTs every notify, `concurrency` clients at a time; answers and latencies."""
    latencies: list[float] = []
    answers: dict[str, int] = {}
    load_before = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    queue = iter(notifies)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=60, limits=limits) as http:

        async def client() -> None:
            for params in queue:  # the shared iterator hands each notify to one client
                t0 = time.perf_counter()
                try:
                    response = await http.post(url, data=params)
                    answer = response.text
                except httpx.HTTPError as error:
                    answer = f"error: {type(error).__name__}"
                latencies.append((time.perf_counter() - t0) * 1000)
                answers[answer] = answers.get(answer, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    generator_cpu = usage.ru_utime + usage.ru_stime - cpu0
    return {
        "notifies": len(notifies),
        "answers": answers,
        "wall_s": round(wall, 3),
        "notifies_per_s": round(len(notifies) / wall, 1) if wall else 0.0,
        "latency_ms": latency_summary(latencies),
        # The clients run on the same cores as the bot: their CPU is part of the picture.
        "generator_cpu_ms_per_notify": round(generator_cpu / max(1, len(notifies)) * 1000, 3),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
    }


def snapshot(path: Path) -> dict[str, int]:
    """What a notify may change, read from the SQLite file (WAL: the bot may be running)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        return {
            "payments": one("SELECT COUNT(*) FROM payment"),
            "order_events": one("SELECT COUNT(*) FROM order_event"),
            "outbox_rows": one("SELECT COUNT(*) FROM outbox"),
            "attempts_paid": one("SELECT COUNT(*) FROM payment_attempt WHERE state = 'paid'"),
            "orders_paid": one("SELECT COUNT(*) FROM shop_order WHERE status = 'paid'"),
            "paid_fen": one("SELECT COALESCE(SUM(paid_fen), 0) FROM shop_order"),
        }


def per_order(path: Path, codes: list[str]) -> dict[str, Any]:
    """Each order: paid, exactly one Payment row of its amount, one paid event."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT o.code, o.status, o.paid_fen, o.total_fen, "
            "(SELECT COUNT(*) FROM payment p WHERE p.order_id = o.id), "
            "(SELECT COALESCE(SUM(p.amount_fen), 0) FROM payment p WHERE p.order_id = o.id), "
            "(SELECT COUNT(*) FROM order_event e WHERE e.order_id = o.id "
            " AND e.from_status = 'pending_payment' AND e.to_status = 'paid') "
            "FROM shop_order o"
        ).fetchall()
    by_code = {row[0]: row[1:] for row in rows}
    wanted = [by_code.get(code) for code in codes]
    return {
        "orders": len(codes),
        "paid": sum(1 for r in wanted if r and r[0] == "paid" and r[1] == r[2]),
        "one_payment_each": sum(1 for r in wanted if r and r[3] == 1 and r[4] == r[2]),
        "one_paid_event_each": sum(1 for r in wanted if r and r[5] == 1),
    }


async def run(orders: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    fake = FakeEpay()
    fake_url = fake.start()
    bot = BotProcess(
        "bot.py",
        workdir,
        shop_env(
            workdir,
            SHOP_NAME="收款小店",
            LOG_LEVEL="INFO",
            CONFIRM_TIMEOUT_SECONDS="1800",
            UNPAID_TIMEOUT_MINUTES="600",
            PAYMENT_PROVIDER="epay",
            EPAY_API_URL=fake_url,
            EPAY_PID=PID,
            EPAY_KEY=KEY,
            # Reconciliation stays out of the measurement: only notifies pay here.
            EPAY_RECONCILE_MINUTES="600",
        ),
    )
    bot.env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{bot.port}"
    notify_url = f"http://127.0.0.1:{bot.port}{NOTIFY_PATH}"
    database = workdir / "shop.db"
    bot.start()
    sim = OneBotSimulator(bot.url, access_token=TOKEN)
    result: dict[str, Any] = {"orders": orders, "concurrency": concurrency}
    codes: list[str] = []
    try:
        await sim.connect(timeout=90)
        replies = PrivateReplies(sim)
        reply = await sim.ask_private(OWNER, f"/新品 收款压测商品 9.9 {orders}", timeout=30)
        match = re.search(r"商品编号：(\d+)", reply.text)
        if match is None:
            raise RuntimeError(f"/新品 failed: {reply.text!r}")
        item = int(match.group(1))

        async def prepare(user_id: int) -> str:
            sent, _ = await ask(sim, replies, user_id, ADDRESS, timeout=60)
            sent, _ = await ask(sim, replies, user_id, f"/下单 {item} 1", timeout=60)
            if "请确认订单" not in sent.text:
                raise RuntimeError(f"summary of {user_id}: {sent.text!r}")
            sent, _ = await ask(sim, replies, user_id, "确认", timeout=60)
            found = CODE.search(sent.text)
            if found is None or "下单成功" not in sent.text:
                raise RuntimeError(f"order of {user_id}: {sent.text!r}")
            sent, _ = await ask(sim, replies, user_id, f"/付款 {found.group(1)}", timeout=60)
            if "付款链接" not in sent.text:
                raise RuntimeError(f"/付款 of {user_id}: {sent.text!r}")
            return found.group(1)

        t = time.perf_counter()
        users = [BASE_USER + i for i in range(orders)]
        codes = await bounded_gather(SETUP_CONCURRENCY, [lambda u=u: prepare(u) for u in users])
        result["setup_s"] = round(time.perf_counter() - t, 2)
        missing = [code for code in codes if f"{code}-1" not in fake.payments]
        if missing:
            raise RuntimeError(f"no attempt at the gateway for {missing[:5]}")
        # The gateway's side: paid, and each payment's signed notify.
        notifies = [fake.notify_params(fake.mark_paid(f"{code}-1").out_trade_no) for code in codes]
        await asyncio.sleep(2.0)  # let the bot settle (outbox, logging) before the burst

        cpu0 = process_cpu_seconds(bot.pid)
        result["first"] = await fire(notify_url, notifies, concurrency)
        result["first"]["bot_cpu_ms_per_notify"] = round(
            (process_cpu_seconds(bot.pid) - cpu0) / orders * 1000, 3
        )
        result["after_first"] = snapshot(database)

        cpu0 = process_cpu_seconds(bot.pid)
        result["replay"] = await fire(notify_url, notifies, concurrency)
        result["replay"]["bot_cpu_ms_per_notify"] = round(
            (process_cpu_seconds(bot.pid) - cpu0) / orders * 1000, 3
        )
        result["after_replay"] = snapshot(database)
        replies.close()
    finally:
        await sim.close()
        bot.stop()
        fake.stop()
    result["tracebacks_in_log"] = bot.tracebacks()
    result["key_in_log"] = KEY in bot.log()
    result["notify_log_lines"] = bot.log().count("epay notify ")
    result["database"] = per_order(database, codes)
    return result


def checks(result: dict[str, Any]) -> dict[str, bool]:
    n = result["orders"]
    db = result["database"]
    first, replay = result["first"], result["replay"]
    return {
        f"first round: {n} × success": first["answers"] == {"success": n},
        f"replay: {n} × success": replay["answers"] == {"success": n},
        f"every order paid ({n})": db["paid"] == n,
        "exactly one Payment row each, of the order's amount": db["one_payment_each"] == n,
        "exactly one pending_payment → paid event each": db["one_paid_event_each"] == n,
        "the replay changed no row": result["after_first"] == result["after_replay"],
        f"{n} payments in all": result["after_replay"]["payments"] == n,
        "one log line per notify": result["notify_log_lines"] == 2 * n,
        "the key never reached the log": not result["key_in_log"],
        "no traceback in the bot log": result["tracebacks_in_log"] == 0,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        f"| round ({result['concurrency']} concurrent clients) | notifies | notifies/s | "
        "p50 ms | p90 ms | p99 ms | max ms | bot CPU ms/notify | clients' CPU ms/notify | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, key in (("first: pays every order", "first"), ("replay: changes nothing", "replay")):
        r = result[key]
        lat = r["latency_ms"]
        rows.append(
            f"| {label} | {r['notifies']} | {r['notifies_per_s']:.0f} | {lat['p50']:.1f} | "
            f"{lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | {r['bot_cpu_ms_per_notify']:.2f} | "
            f"{r['generator_cpu_ms_per_notify']:.2f} | {r['loadavg_before']:.1f} → {r['loadavg_after']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-epay-"))
    result = asyncio.run(run(args.orders, args.concurrency, workdir))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["checks"] = checks(result)
    result["ok"] = all(result["checks"].values())
    result["markdown"] = markdown(result)
    print(
        f"epay notify: {args.orders} orders, {args.concurrency} concurrent clients; "
        f"setup {result['setup_s']} s"
    )
    print(result["markdown"])
    print(f"database: {result['database']}; after replay: {result['after_replay']}")
    for name, passed in result["checks"].items():
        print(f"  {'ok ' if passed else 'FAIL'} {name}")
    write_json(args.json, result)
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
