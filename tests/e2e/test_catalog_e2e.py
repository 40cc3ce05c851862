"""The catalog flows over the real protocol: a merchant sets up, customers browse, a
restart keeps everything."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess

CUSTOMER = 30003
STAFF = 20002
GROUP = 555000


async def test_wrong_token_is_refused(bot_process: BotProcess) -> None:
    from tools.onebot_sim import ConnectionRejected, OneBotSimulator

    intruder = OneBotSimulator(
        bot_process.url, self_id=10999, access_token="wrong", reject_grace=0.5
    )
    with pytest.raises(ConnectionRejected):
        await intruder.connect(timeout=30)


async def test_customer_browses_demo_shop_privately(sim: Any) -> None:
    reply = await sim.ask_private(CUSTOMER, "/商品")
    assert "端到端小店 · 在售商品" in reply.text and "1. 云南小粒咖啡豆" in reply.text
    reply = await sim.ask_private(CUSTOMER, "详情 5")  # no prefix needed in private chats
    assert "5-2 20片装 ¥55.90 库存 40" in reply.text
    reply = await sim.ask_private(CUSTOMER, "/搜索 坚果")
    assert "云南小粒咖啡豆" in reply.text
    reply = await sim.ask_private(CUSTOMER, "/新品 茶 1 1")
    assert "无权限" in reply.text


async def test_group_needs_enabling_and_replies_quote_the_asker(sim: Any) -> None:
    await sim.send_group(GROUP, CUSTOMER, "/商品")
    await sim.expect_no_reply(("group", GROUP), within=1.5)
    reply = await sim.ask_group(GROUP, E2E_OWNER, "/启用本群", role="owner")
    assert "已在本群启用店铺" in reply.text
    message_id = await sim.send_group(GROUP, CUSTOMER, "/分类")
    reply = await sim.wait_for_send(lambda m: m.target_type == "group" and m.target_id == GROUP)
    assert reply.reply_to == message_id
    assert "咖啡（3 件）" in reply.text
    # Chatter costs nothing and gets no answer.
    await sim.send_group(GROUP, CUSTOMER, "今天有人拼单吗")
    await sim.expect_no_reply(("group", GROUP), within=1.0)


async def test_user_text_never_becomes_a_cq_code(sim: Any) -> None:
    reply = await sim.ask_private(E2E_OWNER, "/新品 [CQ:at,qq=all] 9.9 3")
    assert [s["type"] for s in reply.segments] == ["text"]
    assert "[CQ:at,qq=all]" in reply.text
    item_id = int(reply.text.split("商品编号：")[1].split()[0])
    reply = await sim.ask_private(CUSTOMER, f"/详情 {item_id}")
    assert [s["type"] for s in reply.segments] == ["text"]
    assert reply.mentions == []


async def test_merchant_setup_survives_a_restart(bot_process: BotProcess) -> None:
    from tools.onebot_sim import OneBotSimulator

    async with OneBotSimulator(bot_process.url, access_token=E2E_TOKEN) as sim:
        reply = await sim.ask_private(E2E_OWNER, "/新品 桂花乌龙 45 12 茶叶")
        # The next number after the demo catalog (its six items and one virtual item).
        assert "商品编号：8" in reply.text
        assert (
            "已为“桂花乌龙”添加规格 8-2"
            in (await sim.ask_private(E2E_OWNER, "/规格 8 罐装 88 5")).text
        )
        assert "已添加店员 20002" in (await sim.ask_private(E2E_OWNER, "/店员 添加 20002")).text
        assert "启用" in (await sim.ask_group(GROUP, STAFF, "/启用本群")).text
        assert "12 → 10" in (await sim.ask_private(STAFF, "/库存 8-1 -2")).text

    bot_process.stop()
    bot_process.start()

    async with OneBotSimulator(bot_process.url, access_token=E2E_TOKEN) as sim:
        reply = await sim.ask_group(GROUP, CUSTOMER, "/详情 8")
        assert "8-1 默认 ¥45.00 库存 10" in reply.text and "8-2 罐装 ¥88.00 库存 5" in reply.text
        reply = await sim.ask_private(STAFF, "/下架 8")
        assert "已下架" in reply.text
        reply = await sim.ask_group(GROUP, CUSTOMER, "/商品 茶叶")
        assert "还没有在售商品" in reply.text
