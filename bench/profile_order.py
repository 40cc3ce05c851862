"""The order path in-process: CPU and SQL statements per `/下单` and per `确认`, and a
cProfile of either.

Like bench/dispatch_cost.py it feeds OneBot v11 events to `nonebot.message.handle_event`
with a bot whose API calls return at once (no network, no simulator), on a throw-away
SQLite shop (or --database-url), so what it measures is the bot's own work per message.
Every SQL statement sent to the driver is counted (SQLAlchemy `before_cursor_execute`),
split by the message that caused it; --echo prints them for one exchange.

    python bench/profile_order.py                      # CPU ms and statements per message
    python bench/profile_order.py --profile 确认 --top 30   # cProfile of the 确认 messages
    python bench/profile_order.py --echo               # the statements of one exchange
    python bench/profile_order.py --message /详情 --count 500  # any other command's cost
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OWNER = 10001
FIRST_USER = 200_000
ADDRESS = "/地址 添加 张三 13800001111 浙江省杭州市西湖区文三路 1 号"


def _event(text: str, user_id: int, serial: int) -> Any:
    from nonebot.adapters.onebot.v11 import Message, PrivateMessageEvent
    from nonebot.adapters.onebot.v11.event import Sender

    message = Message(text)
    return PrivateMessageEvent(
        time=int(time.time()),
        self_id=10000,
        post_type="message",
        sub_type="friend",
        message_type="private",
        to_me=True,
        user_id=user_id,
        message_id=serial,
        message=message,
        original_message=message.copy(),
        raw_message=text,
        font=0,
        sender=Sender(user_id=user_id, nickname="bench"),
    )


async def _run(args: argparse.Namespace) -> None:
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter, Bot
    from nonebot.message import handle_event

    nonebot.init(driver="~none", log_level="WARNING", superusers={str(OWNER)}, command_start={"/"})
    driver = nonebot.get_driver()
    driver.register_adapter(Adapter)
    adapter = nonebot.get_adapter(Adapter)
    replies: list[str] = []

    async def fake_call_api(bot: Bot, api: str, **data: object) -> object:
        message = data.get("message")
        replies.append(str(message))
        return {"message_id": 1}

    adapter._call_api = fake_call_api  # type: ignore[method-assign]
    bot = Bot(adapter, "10000")

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    nonebot.load_from_toml("pyproject.toml")
    from sqlalchemy import event as sa_event

    from config import ShopSettings
    from plugins._common.runtime import start_runtime

    workdir = Path(tempfile.mkdtemp(prefix="shop-order-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'shop.db'}"
    settings = ShopSettings(
        database_url=url,
        data_dir=str(workdir / "data"),
        shop_demo=True,
        flood_max_commands=10**9,
        # As bench/load.py: many orders per customer, none of them paid.
        max_unpaid_orders=args.max_unpaid,
    )
    runtime = await start_runtime(settings, {OWNER}, {"/"})
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    sa_event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", count)

    serial = 0

    async def say(text: str, user_id: int) -> str:
        nonlocal serial
        serial += 1
        before = len(replies)
        await handle_event(bot, _event(text, user_id, serial))
        return replies[-1] if len(replies) > before else ""

    answer = await say("/新品 压测商品 1 1000000", OWNER)
    item = next(word for word in answer.replace("：", " ").split() if word.isdigit())
    users = [FIRST_USER + n for n in range(args.users)]
    for user in users:
        await say(ADDRESS, user)

    buy = f"/下单 {item} 1"
    timings: dict[str, list[float]] = {"下单": [], "确认": [], "message": []}
    counts: dict[str, int] = {"下单": 0, "确认": 0, "message": 0}
    profiler = cProfile.Profile()

    async def step(kind: str, text: str, user: int, expect: str, measured: bool) -> None:
        first = len(statements)
        profiling = measured and args.profile == kind
        cpu = time.process_time()
        if profiling:
            profiler.enable()
        answer = await say(text, user)
        if profiling:
            profiler.disable()
        cpu = time.process_time() - cpu
        if expect not in answer:
            raise RuntimeError(f"{text}: {answer[:80]!r}")
        if measured:
            timings[kind].append(cpu)
            counts[kind] += len(statements) - first
        if args.echo and measured and len(timings[kind]) == 1:
            print(f"--- {text}: {len(statements) - first} statements")
            for sql in statements[first:]:
                print("  ", " ".join(sql.split())[:160])

    total = args.warmup + args.count
    for n in range(total):
        user = users[n % len(users)]
        measured = n >= args.warmup
        if args.message:
            await step("message", args.message, user, args.expect, measured)
            continue
        await step("下单", buy, user, "请确认订单", measured)
        await step("确认", "确认", user, "下单成功", measured)

    print(f"database: {runtime.database.engine.url.get_backend_name()}, users: {args.users}")
    for kind, values in timings.items():
        if not values:
            continue
        ms = sum(values) / len(values) * 1000
        print(
            f"{kind:<8} CPU {ms:6.3f} ms/message   "
            f"{counts[kind] / len(values):5.1f} SQL statements/message   ({len(values)} messages)"
        )
    if args.profile:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    await runtime.database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=400, help="measured exchanges")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--users", type=int, default=1, help="customers taking turns")
    parser.add_argument("--profile", choices=("下单", "确认", "message"), help="cProfile these")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumtime)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--echo", action="store_true", help="print one exchange's statements")
    parser.add_argument("--message", help="measure this message instead of /下单 + 确认")
    parser.add_argument("--expect", default="", help="with --message: text the reply holds")
    parser.add_argument("--max-unpaid", type=int, default=0, help="MAX_UNPAID_ORDERS")
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    args = parser.parse_args()
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
