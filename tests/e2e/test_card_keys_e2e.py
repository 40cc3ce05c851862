"""Card keys over the real protocol: staff make an item virtual and import keys in a
private chat, a customer with no address buys in a group, /收款 delivers the key by
private message only, /提货 shows it again; no key ever reaches the group or the log."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess

CODE = re.compile(r"订单号：([0-9A-Z]{10})")
ITEM = re.compile(r"商品编号：(\d+)")
GROUP = 778000
KEYS = ("E2E-GIFT-0001-AAAA", "E2E-GIFT-0002-BBBB")


def _match(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    assert found, text
    return found.group(1)


async def test_a_group_customer_buys_a_card_key_and_gets_it_privately(tmp_path: Path) -> None:
    from tools.onebot_sim import OneBotSimulator

    bot = BotProcess(
        tmp_path,
        extra_env={"CARD_KEY_SECRET": "e2e card key secret", "SEND_INTERVAL_SECONDS": "0.1"},
    )
    bot.start()
    try:
        customer = 40101
        async with OneBotSimulator(bot.url, access_token=E2E_TOKEN) as sim:
            await sim.ask_group(GROUP, E2E_OWNER, "/启用本群", role="owner")
            reply = await sim.ask_private(E2E_OWNER, "/新品 视频会员月卡 15 0 会员")
            item = _match(ITEM, reply.text)
            reply = await sim.ask_private(E2E_OWNER, f"/虚拟 {item} 开")
            assert "已设为虚拟商品" in reply.text
            reply = await sim.ask_private(E2E_OWNER, f"/卡密 导入 {item}\n" + "\n".join(KEYS))
            assert "导入 2 个卡密" in reply.text and "现有库存 2" in reply.text
            reply = await sim.ask_group(GROUP, customer, f"/下单 {item}")
            assert "无需收货地址" in reply.text
            reply = await sim.ask_group(GROUP, customer, "确认")
            code = _match(CODE, reply.text)
            mark = sim.mark()
            reply = await sim.ask_private(E2E_OWNER, f"/收款 {code}")
            assert "卡密已自动私聊发给顾客" in reply.text
            private = await sim.wait_for_send(
                lambda m: m.target_id == customer and KEYS[0] in m.text, since=mark, timeout=20
            )
            assert private.action == "send_private_msg" and code in private.text
            in_group = await sim.wait_for_send(
                lambda m: m.action == "send_group_msg" and "卡密已私聊发送" in m.text,
                since=mark,
                timeout=20,
            )
            assert f"/提货 {code}" in in_group.text
            reply = await sim.ask_private(customer, f"/提货 {code}")
            assert KEYS[0] in reply.text and KEYS[1] not in reply.text
            reply = await sim.ask_group(GROUP, customer, f"/提货 {code}")
            assert "私聊" in reply.text and KEYS[0] not in reply.text
            reply = await sim.ask_private(E2E_OWNER, f"/卡密 {item}")
            assert "已售出 1 个" in reply.text and "E2E-GIFT" not in reply.text
            group_texts = [
                m.text
                for m in await sim.collect(
                    lambda m: m.action == "send_group_msg", within=0.5, since=0
                )
            ]
            assert all("E2E-GIFT" not in text for text in group_texts)
    finally:
        bot.stop()
    log = bot.log()
    assert "Traceback" not in log, log[-4000:]
    assert f"/虚拟 {item} 开" in log  # NoneBot logs incoming messages in full...
    assert "卡密命令，内容不记入日志" in log  # ...except /卡密 ones
    assert "E2E-GIFT" not in log
    # Encrypted at rest (SQLite runs: the file and its write-ahead log; PostgreSQL has none).
    for name in ("shop.db", "shop.db-wal"):
        path = tmp_path / name
        if path.exists():
            assert b"E2E-GIFT" not in path.read_bytes()
