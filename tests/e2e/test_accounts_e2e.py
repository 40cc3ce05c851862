"""Several QQ accounts on one shop: a notice for a group goes out through the account
that is in that group, whether both accounts are connected to one bot process or each to
its own process on the shared database. Answers to commands come from the account that
received them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess
from tests.e2e.test_two_processes_e2e import log_says

FIRST = 10000
SECOND = 2854196311
# The groups each account is in (no group has both). An announcement is queued for the
# groups in the order of their numbers: the second account's come first, so a
# dispatcher ignoring who is where would send one through the wrong account.
FIRST_GROUPS = (7003,)
SECOND_GROUPS = (7001, 7002)
FAST = {"SEND_INTERVAL_SECONDS": "0.1", "CLOCK_TICK_SECONDS": "1"}


def simulator(url: str, self_id: int, group_ids: tuple[int, ...]) -> Any:
    from tools.onebot_sim import OneBotSimulator

    sim = OneBotSimulator(url, access_token=E2E_TOKEN, self_id=self_id)
    for group_id in group_ids:
        sim.set_group(group_id, f"群{group_id}")  # what get_group_list answers
    return sim


async def announcement_in(sim: Any, group_id: int, since: int, timeout: float = 20.0) -> Any:  # noqa: ASYNC109
    # `since`: the first notice of each account goes out at once, possibly before the
    # answer to /公告 has arrived.
    return await sim.wait_for_send(
        lambda m: m.target_type == "group" and m.target_id == group_id and "公告" in m.text,
        timeout=timeout,
        since=since,
    )


async def check_routing(first: Any, second: Any) -> None:
    """Every group enabled (each through the account in it), then one announcement from
    a private chat with the first account: each group gets it through its own account."""
    for sim, group_ids in ((first, FIRST_GROUPS), (second, SECOND_GROUPS)):
        for group_id in group_ids:
            reply = await sim.ask_group(group_id, E2E_OWNER, "/启用本群")
            assert sim.sent[-1] is reply  # the answer came through the account asked
    starts = {sim: sim.mark() for sim in (first, second)}
    await first.ask_private(E2E_OWNER, "/公告 今晚 8 点上新")
    for sim, group_ids in ((first, FIRST_GROUPS), (second, SECOND_GROUPS)):
        for group_id in group_ids:
            announced = await announcement_in(sim, group_id, starts[sim])
            assert announced.action == "send_group_msg"
    await asyncio.sleep(1.5)  # nothing else goes out, through either account
    for sim, group_ids in ((first, SECOND_GROUPS), (second, FIRST_GROUPS)):
        assert [m for m in sim.sent if m.target_id in group_ids] == []
    in_groups = [m for sim in (first, second) for m in sim.sent if m.target_type == "group"]
    assert len([m for m in in_groups if "公告" in m.text]) == 3


async def test_two_accounts_in_one_process(bot_process: BotProcess) -> None:
    first = simulator(bot_process.url, FIRST, FIRST_GROUPS)
    second = simulator(bot_process.url, SECOND, SECOND_GROUPS)
    async with first, second:
        await log_says(bot_process, f"account {SECOND} connected, in 2 groups")
        await log_says(bot_process, f"account {FIRST} connected, in 1 groups")
        await check_routing(first, second)


async def test_one_account_per_process(tmp_path: Path) -> None:
    one = BotProcess(tmp_path / "one", FAST)
    # Both on the test's database (tests/e2e/conftest.py), with one data directory.
    two = BotProcess(tmp_path / "two", {**FAST, "DATA_DIR": str(tmp_path / "one" / "data")})
    one.start()
    try:
        await log_says(one, "shop ready")
        two.start()
        await log_says(two, "shop ready")
        async with (
            simulator(one.url, FIRST, FIRST_GROUPS) as first,
            simulator(two.url, SECOND, SECOND_GROUPS) as second,
        ):
            await log_says(one, f"account {FIRST} connected, in 1 groups")
            await log_says(two, f"account {SECOND} connected, in 2 groups")
            await check_routing(first, second)
    finally:
        two.stop()
        one.stop()
    for bot in (one, two):
        assert "Traceback" not in bot.log(), bot.log()[-4000:]


# --- two accounts in one group: exactly one answers -------------------------------------

SHARED_GROUP = 7100  # both accounts are in it


async def answers_in_shared_group(
    sims: tuple[Any, ...], text: str, user_id: int = 30001
) -> list[tuple[int, Any]]:
    """`text` arrives through every connection (QQ delivers a group message to every
    account in the group); the answers, by the account that sent them."""
    starts = [sim.mark() for sim in sims]
    for sim in sims:
        await sim.send_group(SHARED_GROUP, user_id, text)
    await asyncio.sleep(2.0)  # an answer takes milliseconds; a second one would be here
    return [
        (sim.self_id, m)
        for sim, start in zip(sims, starts, strict=True)
        for m in sim.sent[start:]
        if m.action == "send_msg" and m.target_id == SHARED_GROUP
    ]


async def check_one_answer(first: Any, second: Any) -> None:
    """The group is enabled and `/商品` asked through both accounts: the first account
    (the lower QQ number) answers each once, the second stays silent."""
    enabled = await answers_in_shared_group((second, first), "/启用本群", E2E_OWNER)
    assert [account for account, _m in enabled] == [FIRST]
    listed = await answers_in_shared_group((second, first), "/商品")
    assert [account for account, _m in listed] == [FIRST]
    assert "在售商品" in listed[0][1].text


async def test_two_accounts_in_one_group_of_one_process_answer_once(tmp_path: Path) -> None:
    """Then the first account's connection drops: the second answers from then on."""
    bot = BotProcess(tmp_path, FAST)
    bot.start()
    try:
        await log_says(bot, "shop ready")
        first = simulator(bot.url, FIRST, (SHARED_GROUP,))
        async with simulator(bot.url, SECOND, (SHARED_GROUP,)) as second:
            await first.connect()
            await log_says(bot, f"account {SECOND} connected, in 1 groups")
            await log_says(bot, f"account {FIRST} connected, in 1 groups")
            await check_one_answer(first, second)
            await first.close()
            await log_says(bot, f"account {FIRST} disconnected")
            listed = await answers_in_shared_group((second,), "/商品")
            assert [account for account, _m in listed] == [SECOND]
    finally:
        bot.stop()
    assert "Traceback" not in bot.log(), bot.log()[-4000:]


async def test_two_accounts_in_one_group_each_in_its_own_process_answer_once(
    tmp_path: Path,
) -> None:
    """One process per account on the shared database: both read who is in the group
    from the same tables, and only the first account answers."""
    one = BotProcess(tmp_path / "one", FAST)
    two = BotProcess(tmp_path / "two", {**FAST, "DATA_DIR": str(tmp_path / "one" / "data")})
    one.start()
    try:
        await log_says(one, "shop ready")
        two.start()
        await log_says(two, "shop ready")
        async with simulator(one.url, FIRST, (SHARED_GROUP,)) as first:
            await log_says(one, f"account {FIRST} connected, in 1 groups")
            async with simulator(two.url, SECOND, (SHARED_GROUP,)) as second:
                await log_says(two, f"account {SECOND} connected, in 1 groups")
                await check_one_answer(first, second)
    finally:
        two.stop()
        one.stop()
    for bot in (one, two):
        assert "Traceback" not in bot.log(), bot.log()[-4000:]
