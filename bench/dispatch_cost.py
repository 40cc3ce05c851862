"""CPU cost of one incoming message: the shop vs a bare one-matcher echo bot.

Each configuration runs in its own process (NoneBot's matchers are global), feeds
OneBot v11 events straight into `nonebot.message.handle_event` with a bot whose API
calls return at once, and reports CPU time per message (process_time, all threads,
so aiosqlite's worker thread counts too) and wall time.

    python bench/dispatch_cost.py            # all scenarios, table on stdout
    python bench/dispatch_cost.py --json out.json --messages 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUP_ID = 555000
SCENARIOS = {
    # name: (bot kind, chat, text)
    "echo: /echo command": ("echo", "group", "/echo 你好"),
    "echo: group chatter": ("echo", "group", "今天天气不错，有人一起喝咖啡吗"),
    "shop: group chatter": ("shop", "group", "今天天气不错，有人一起喝咖啡吗"),
    "shop: /商品 in group": ("shop", "group", "/商品"),
    "shop: /商品 private": ("shop", "private", "/商品"),
    "shop: /详情 in group": ("shop", "group", "/详情 1"),
    "shop: /帮助 in group": ("shop", "group", "/帮助"),
}


def _event(chat: str, text: str, serial: int):  # type: ignore[no-untyped-def]
    from nonebot.adapters.onebot.v11 import GroupMessageEvent, Message, PrivateMessageEvent
    from nonebot.adapters.onebot.v11.event import Sender

    # Distinct users and message ids: the shop drops duplicates and slows down floods.
    user_id = 100_000 + serial
    message = Message(text)
    common = {
        "time": int(time.time()),
        "self_id": 10000,
        "post_type": "message",
        "user_id": user_id,
        "message_id": serial,
        "message": message,
        "original_message": message.copy(),
        "raw_message": text,
        "font": 0,
        "sender": Sender(user_id=user_id, nickname="bench"),
    }
    if chat == "group":
        return GroupMessageEvent(
            sub_type="normal", message_type="group", group_id=GROUP_ID, **common
        )
    return PrivateMessageEvent(sub_type="friend", message_type="private", to_me=True, **common)


async def _run_one(kind: str, chat: str, text: str, messages: int, warmup: int) -> dict[str, float]:
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter, Bot
    from nonebot.message import handle_event

    os.environ.setdefault("DRIVER", "~none")
    nonebot.init(driver="~none", log_level="WARNING", superusers={"10001"}, command_start={"/"})
    driver = nonebot.get_driver()
    driver.register_adapter(Adapter)
    adapter = nonebot.get_adapter(Adapter)
    sent = 0

    async def fake_call_api(bot: Bot, api: str, **data: object) -> object:
        nonlocal sent
        sent += 1
        return {"message_id": 1}

    adapter._call_api = fake_call_api  # type: ignore[method-assign]
    bot = Bot(adapter, "10000")

    if kind == "echo":
        from nonebot import on_command
        from nonebot.adapters.onebot.v11 import Message
        from nonebot.params import CommandArg

        echo = on_command("echo")

        @echo.handle()
        async def _(arg: Message = CommandArg()) -> None:  # noqa: B008
            await echo.send(arg)
    else:
        os.chdir(ROOT)
        sys.path.insert(0, str(ROOT))
        nonebot.load_from_toml("pyproject.toml")
        from config import ShopSettings
        from plugins._common.runtime import start_runtime
        from services.groups import set_group_enabled

        workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
        settings = ShopSettings(
            database_url=f"sqlite+aiosqlite:///{workdir / 'shop.db'}",
            data_dir=str(workdir / "data"),
            shop_demo=True,
            flood_max_commands=10**9,
        )
        runtime = await start_runtime(settings, {10001}, {"/"})
        async with runtime.database.write() as session:
            await set_group_enabled(session, runtime.shop_id, GROUP_ID, True, 10001)
        runtime.access.invalidate()

    for serial in range(warmup):
        await handle_event(bot, _event(chat, text, serial))
    sent_before = sent
    events = [_event(chat, text, warmup + serial) for serial in range(messages)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for event in events:
        await handle_event(bot, event)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "cpu_ms_per_message": cpu / messages * 1000,
        "wall_ms_per_message": wall / messages * 1000,
        "replies_per_message": (sent - sent_before) / messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved runs per scenario; the median is kept"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, chat, text = SCENARIOS[args.child]
        result = asyncio.run(_run_one(kind, chat, text, args.messages, args.warmup))
        print(json.dumps(result))
        return

    # Rounds are interleaved (every scenario once, then again) so a noisy neighbour hits
    # all scenarios alike; each scenario keeps its median round.
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SCENARIOS}
    for _ in range(args.rounds):
        for name in SCENARIOS:
            output = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        name,
                        "--messages",
                        str(args.messages),
                        "--warmup",
                        str(args.warmup),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            runs[name].append(json.loads(output))
    results = {
        name: sorted(rounds, key=lambda r: r["cpu_ms_per_message"])[len(rounds) // 2]
        for name, rounds in runs.items()
    }
    floor = results["echo: /echo command"]["cpu_ms_per_message"]
    print(f"{'scenario':<24} {'CPU ms/msg':>10} {'wall ms/msg':>11} {'replies':>7} {'× echo':>7}")
    for name, result in results.items():
        ratio = result["cpu_ms_per_message"] / floor
        result["ratio_to_echo_command"] = ratio
        print(
            f"{name:<24} {result['cpu_ms_per_message']:>10.3f} {result['wall_ms_per_message']:>11.3f} "
            f"{result['replies_per_message']:>7.2f} {ratio:>7.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
