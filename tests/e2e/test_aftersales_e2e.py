"""After-sales over the real protocol: a customer opens a 退货 ticket with a photo,
staff and customer talk through the ticket, staff approve, the parcel comes back, staff
complete it and the money is refunded; every notice arrives once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import E2E_OWNER

ORDER = re.compile(r"订单号：([0-9A-Z]{10})")
TICKET = re.compile(r"工单号：([0-9A-Z]{10})")
ADDRESS = "张三 13800001111 浙江省杭州市西湖区文三路 1 号"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_return_ticket_from_photo_to_refund(sim: Any, tmp_path: Path) -> None:
    from tools.onebot_sim import Seg

    customer = 70001
    await sim.ask_private(customer, f"/地址 添加 {ADDRESS}")
    await sim.ask_private(customer, "/下单 3")
    order = ORDER.search((await sim.ask_private(customer, "确认")).text).group(1)  # type: ignore[union-attr]
    await sim.ask_private(E2E_OWNER, f"/收款 {order}")
    await sim.ask_private(E2E_OWNER, f"/发货 {order} 顺丰 SF1234567890")

    photo = tmp_path / "crack.png"
    photo.write_bytes(PNG)
    image = await sim.image_segment(str(photo))
    mark = sim.mark()
    reply = await sim.ask_private(customer, [Seg.text(f"/售后 {order} 退货 滤杯有裂纹"), image])
    assert "已保存 1 张图片" in reply.text
    ticket = TICKET.search(reply.text).group(1)  # type: ignore[union-attr]
    staff_notice = await sim.wait_for_send(
        lambda m: m.target_id == E2E_OWNER and ticket in m.text, since=mark, timeout=15
    )
    assert "滤杯有裂纹" in staff_notice.text

    assert "已发送给顾客" in (await sim.ask_private(E2E_OWNER, f"/回复 {ticket} 抱歉，请寄回")).text
    await sim.wait_for_send(
        lambda m: m.target_id == customer and "店家回复：抱歉，请寄回" in m.text, timeout=15
    )
    assert "等待顾客寄回" in (await sim.ask_private(E2E_OWNER, f"/同意 {ticket}")).text
    assert (
        "已记录退货物流 中通 ZT123456789"
        in (await sim.ask_private(customer, f"/退货单号 {ticket} 中通 ZT123456789")).text
    )
    detail = await sim.ask_private(customer, f"/工单 {ticket}")
    assert "退货 · 退货中" in detail.text and "[图片 1 张]" in detail.text

    reply = await sim.ask_private(E2E_OWNER, f"/完成 {ticket}")
    assert "已完成并退款 ¥128.00" in reply.text
    await sim.wait_for_send(
        lambda m: m.target_id == customer and "已完成，退款 ¥128.00" in m.text, timeout=15
    )
    await asyncio.sleep(1)
    finished = [m for m in sim.sent if m.target_id == customer and "已完成，退款" in m.text]
    assert len(finished) == 1
    reply = await sim.ask_private(customer, f"/订单 {order}")
    assert "状态：已退款" in reply.text
    # Someone else cannot read the ticket.
    other = await sim.ask_private(70002, f"/工单 {ticket}")
    assert other.text == f"没有找到工单 {ticket}。发 /售后 查看你的工单。"
