"""Two bot processes (two QQ accounts) on one database: the clocks run in one of them at
a time, an order's expiry notice is sent once in all, and when the holder stops the
other process takes the clocks over."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_TOKEN, BotProcess

CODE = re.compile(r"订单号：([0-9A-Z]{10})")
ADDRESS = "张三 13800001111 浙江省杭州市西湖区文三路 1 号"
HOLDS = "clocks: this process ("
STANDS_BY = "another bot process runs the shop's clocks"
FAST_CLOCKS = {
    "UNPAID_TIMEOUT_MINUTES": "0.05",
    "CLOCK_TICK_SECONDS": "0.5",
    "SEND_INTERVAL_SECONDS": "0.1",
}


async def log_says(bot: BotProcess, text: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while text not in bot.log():  # noqa: ASYNC110  (another process writes the file)
            await asyncio.sleep(0.2)


async def sent_by_either(
    sims: tuple[Any, ...],
    customer: int,
    fragment: str,
    timeout: float = 20.0,  # noqa: ASYNC109
) -> Any:
    """A notice may go out through either process's QQ account: whichever claims it first."""
    async with asyncio.timeout(timeout):
        while True:  # two simulators: no single event to wait on
            for sim in sims:
                for message in sim.sent:
                    if message.target_id == customer and fragment in message.text:
                        return message
            await asyncio.sleep(0.1)


async def place_order(sim: Any, customer: int) -> str:
    await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")
    await sim.ask_private(customer, "/下单 2 1")
    reply = await sim.ask_private(customer, "确认")
    match = CODE.search(reply.text)
    assert match, reply.text
    return match.group(1)


async def test_clocks_run_in_one_process_and_move_when_it_stops(tmp_path: Path) -> None:
    from tools.onebot_sim import OneBotSimulator

    first = BotProcess(tmp_path / "first", FAST_CLOCKS)
    # Both on the test's database (tests/e2e/conftest.py), with one data directory.
    shared = {"DATA_DIR": str(tmp_path / "first" / "data")}
    second = BotProcess(tmp_path / "second", {**FAST_CLOCKS, **shared})
    first.start()
    try:
        await log_says(first, HOLDS)
        second.start()
        await log_says(second, STANDS_BY)
        async with (
            OneBotSimulator(first.url, access_token=E2E_TOKEN) as sim_first,
            OneBotSimulator(second.url, access_token=E2E_TOKEN, self_id=2854196311) as sim_second,
        ):
            code = await place_order(sim_first, 40101)
            both = (sim_first, sim_second)
            notice = await sent_by_either(both, 40101, "超时未付款")
            assert code in notice.text
            await asyncio.sleep(2)  # a second tick in either process must not send it again
            expired = [m for sim in both for m in sim.sent if "超时未付款" in m.text]
            assert [m.text for m in expired] == [notice.text]
            assert HOLDS not in second.log()

            first.stop()  # releases the lease at shutdown
            await log_says(second, HOLDS, timeout=15)
            later = await place_order(sim_second, 40102)
            notice = await sent_by_either((sim_second,), 40102, "超时未付款")
            assert later in notice.text
    finally:
        second.stop()
        first.stop()
    for bot in (first, second):
        assert "Traceback" not in bot.log(), bot.log()[-4000:]
