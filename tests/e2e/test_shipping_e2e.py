"""Shipping over the real protocol: staff ship, the bot polls kuaidi100 (a local fake
server speaking its real-time query API), each new state reaches the customer exactly
once, signing moves the order to delivered, and the customer confirms receipt."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_OWNER, E2E_TOKEN, BotProcess
from tests.services.fake_kuaidi100 import CUSTOMER, KEY, FakeKuaidi100

CODE = re.compile(r"订单号：([0-9A-Z]{10})")
ADDRESS = "张三 13800001111 浙江省杭州市西湖区文三路 1 号"
PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)


async def _paid_order(sim: Any, customer: int) -> str:
    await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")
    await sim.ask_private(customer, "/下单 2")
    reply = await sim.ask_private(customer, "确认")
    code = CODE.search(reply.text).group(1)  # type: ignore[union-attr]
    assert "已确认收款" in (await sim.ask_private(E2E_OWNER, f"/收款 {code}")).text
    return code


async def test_kuaidi100_tracking_reaches_the_customer_once_each(tmp_path: Path) -> None:
    from tools.onebot_sim import OneBotSimulator

    fake = FakeKuaidi100()
    with fake.running():
        bot = BotProcess(
            tmp_path,
            extra_env={
                "TRACKING_PROVIDER": "kuaidi100",
                "KUAIDI100_CUSTOMER": CUSTOMER,
                "KUAIDI100_KEY": KEY,
                "KUAIDI100_QUERY_URL": fake.url,
                "TRACKING_POLL_MINUTES": "0.02",
                "CLOCK_TICK_SECONDS": "0.5",
                "SEND_INTERVAL_SECONDS": "0.1",
                "FLOOD_MAX_COMMANDS": "100",
                **{name: "" for name in PROXY_VARIABLES},
            },
        )
        bot.start()
        try:
            async with OneBotSimulator(bot.url, access_token=E2E_TOKEN) as sim:
                transit = await _paid_order(sim, 60001)
                signed = await _paid_order(sim, 60002)
                assert (
                    "已发货"
                    in (await sim.ask_private(E2E_OWNER, f"/发货 {transit} 中通 TRANSIT001")).text
                )
                assert (
                    "已发货"
                    in (await sim.ask_private(E2E_OWNER, f"/发货 {signed} SF SIGNED0001")).text
                )

                update = await sim.wait_for_send(
                    lambda m: m.target_id == 60001 and "物流更新" in m.text, timeout=20
                )
                assert transit in update.text
                delivered = await sim.wait_for_send(
                    lambda m: m.target_id == 60002 and "已签收" in m.text, timeout=20
                )
                assert signed in delivered.text
                await asyncio.sleep(3)  # several more polls happen meanwhile
                assert (
                    len([m for m in sim.sent if m.target_id == 60001 and "物流更新" in m.text]) == 1
                )
                assert (
                    len([m for m in sim.sent if m.target_id == 60002 and "已签收" in m.text]) == 1
                )

                reply = await sim.ask_private(60001, f"/物流 {transit}")
                assert "中通 TRANSIT001" in reply.text and reply.text.count("\n") >= 4
                reply = await sim.ask_private(60002, f"/确认收货 {signed}")
                assert "已确认收货" in reply.text
                reply = await sim.ask_private(60002, f"/订单 {signed}")
                assert "状态：已完成" in reply.text and "签收（系统）" in reply.text
        finally:
            bot.stop()
        assert "Traceback" not in bot.log()
    assert fake.requests, "the bot never queried the kuaidi100 server"


async def test_manual_tracking_and_announcement_in_groups(sim: Any) -> None:
    group = 888000
    await sim.ask_group(group, E2E_OWNER, "/启用本群", role="owner")
    code = await _paid_order(sim, 60003)
    await sim.ask_private(E2E_OWNER, f"/发货 {code} 圆通 YT9876543210")
    await sim.ask_private(E2E_OWNER, f"/物流更新 {code} 已到达杭州转运中心")
    update = await sim.wait_for_send(
        lambda m: m.target_id == 60003 and "已到达杭州转运中心" in m.text, timeout=15
    )
    assert code in update.text
    await sim.ask_private(E2E_OWNER, f"/物流更新 {code} 门卫代收 签收")
    await sim.wait_for_send(lambda m: m.target_id == 60003 and "已签收" in m.text, timeout=15)
    reply = await sim.ask_private(E2E_OWNER, "/公告 今晚 8 点上新 [CQ:at,qq=all]")
    assert "1 个群" in reply.text
    announcement = await sim.wait_for_send(
        lambda m: m.target_type == "group" and "公告" in m.text, timeout=15
    )
    assert [s["type"] for s in announcement.segments] == ["text"]
    assert "[CQ:at,qq=all]" in announcement.text and announcement.mentions == []
