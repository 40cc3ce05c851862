"""Staff hear privately, through the outbox, what tracking alone only logged: a parcel
going back to the shop (退回, 退签, 拒签; polled from the local fake kuaidi100 server or
typed with /物流更新), once per shipment; a tracking provider that keeps failing, once
per failure kind and shop day (a rejected shipment once); and a customer of an order
from a group the shop was switched off in hears about it privately. Real migrated
databases; time is always passed in."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from models.tables import OutboxMessage, Shipment, ShopOrder, TrackingEventRow
from services import catalog, groups, notices, orders, shipping, staff
from services.actors import Caller
from services.addresses import AddressSnapshot
from services.context import ShopContext
from services.orders import Actor
from services.staff import Role
from services.tracking import (
    FailureKind,
    Kuaidi100Provider,
    ManualProvider,
    TrackingConfigError,
    TrackingRejected,
    TrackingUnavailable,
    failure_kind,
    normalise_carrier,
)
from services.usecases import clocks, fulfilment
from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID, STAFF_ID

from .fake_kuaidi100 import KEY as KUAIDI100_KEY
from .fake_kuaidi100 import FakeKuaidi100

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
TODAY = "2026-11-25"
INTERVAL = timedelta(minutes=30)  # TRACKING_POLL_MINUTES' default
SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFF = Caller(STAFF_ID, None, Role.STAFF)
OWNER = Caller(OWNER_ID, None, Role.OWNER)
SF = normalise_carrier("顺丰")
HOME = AddressSnapshot("张三", "13812345678", "浙江省杭州市西湖区文三路 100 号")
MERCHANTS = (OWNER_ID, STAFF_ID)
_names = itertools.count(1)


@pytest.fixture
async def shop(shop_context: ShopContext) -> ShopContext:
    """The shop with one staff member besides its owner."""
    async with shop_context.database.write() as session:
        await staff.add_staff(session, shop_context.shop_id, STAFF_ID, OWNER_ID, {OWNER_ID})
    return shop_context


# --- helpers -----------------------------------------------------------------------------


async def _shipped(
    shop: ShopContext, number: str = "SF1234567890", *, group: int | None = None
) -> str:
    async with shop.database.write() as session:
        _, variant = await catalog.create_item(
            session, shop.shop_id, f"商品{next(_names)}", 5900, 10
        )
        assert variant.id is not None
        order = await orders.place_order(
            session,
            shop.shop_id,
            CUSTOMER_ID,
            group,
            [(variant.id, 1)],
            HOME,
            "",
            NOW - timedelta(hours=2),
            timedelta(minutes=30),
        )
        await orders.record_payment(
            session,
            order,
            "manual",
            f"manual:{order.code}",
            order.total_fen,
            Actor("owner", OWNER_ID),
            NOW - timedelta(hours=1, minutes=50),
        )
        code = order.code
    await fulfilment.ship_order(shop, STAFF, code, SF, number, NOW - timedelta(hours=1))
    return code


async def _poll(
    shop: ShopContext, provider: Any, now: datetime = NOW, *, batch: int = 50
) -> shipping.PollReport:
    alerts = shipping.StaffAlerts(shop.owners, SHANGHAI)
    return await shipping.poll_due(
        shop.database, provider, now, INTERVAL, batch=batch, alerts=alerts
    )


async def _outbox(shop: ShopContext) -> list[OutboxMessage]:
    async with shop.database.read() as session:
        rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))  # type: ignore[arg-type]
        return list(rows.scalars())


async def _staff_alerts(shop: ShopContext, prefix: str) -> dict[int, str]:
    """Staff copies of the alerts whose key starts with `prefix`: {user: text}. Each is
    a private message to an owner or staff member."""
    found = {}
    for row in await _outbox(shop):
        if row.dedupe_key.startswith(prefix):
            assert row.target_type == "private"
            assert row.dedupe_key.endswith(f":staff:{row.target_id}")
            found[row.target_id] = _text(row)
    return found


async def _customer_notices(shop: ShopContext, code: str) -> list[OutboxMessage]:
    return [
        row
        for row in await _outbox(shop)
        if row.dedupe_key.startswith(f"order:{code}:") and ":staff:" not in row.dedupe_key
    ]


def _text(row: OutboxMessage) -> str:
    return "".join(
        s["data"].get("text", "") for s in json.loads(row.segments) if s["type"] == "text"
    )


async def _shipment(shop: ShopContext, code: str) -> Shipment:
    async with shop.database.read() as session:
        rows = await session.execute(
            select(Shipment)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
        )
        return rows.scalar_one()


async def _set_number(shop: ShopContext, code: str, number: str) -> None:
    """What the fake answers for this shipment from now on (it answers by number)."""
    shipment = await _shipment(shop, code)
    async with shop.database.write() as session:
        await session.execute(
            update(Shipment).where(Shipment.id == shipment.id).values(number=number)  # type: ignore[arg-type]
        )


async def _status(shop: ShopContext, code: str) -> str:
    async with shop.database.read() as session:
        return (await orders.get_order(session, shop.shop_id, code)).status


# --- a parcel going back, polled ------------------------------------------------------------


async def test_a_refused_parcel_is_told_to_staff_privately_once(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop, "REJECTED01")
    shipment = await _shipment(shop, code)

    report = await _poll(shop, provider)
    assert (report.polled, report.new_events, report.coming_back) == (1, 4, [code])
    assert (await _shipment(shop, code)).state == "rejected"

    told = await _staff_alerts(shop, f"parcel-back:{shipment.id}:")
    assert set(told) == set(MERCHANTS)
    # Private: the courier's text in full, phone included; carrier and number to act on.
    assert told[OWNER_ID] == (
        f"【包裹退回】订单号：{code}（顾客 {CUSTOMER_ID}）顺丰 REJECTED01 拒签："
        "收件人拒收，快件已拒签（电话：13800000000）\n"
        f"包裹不会送到顾客手里，订单也不会自动完成。请联系顾客，重新发货或 /退款 {code}。"
    )
    # The customer hears the new state as before.
    [*_, pushed] = await _customer_notices(shop, code)
    assert pushed.dedupe_key.startswith(f"order:{code}:track:rejected:")

    # The next poll gives the same answer: staff are not told again.
    count = len(await _outbox(shop))
    again = await _poll(shop, provider, NOW + INTERVAL)
    assert (again.polled, again.new_events) == (1, 0)
    assert len(await _outbox(shop)) == count
    # And it never completes by itself.
    assert (
        await shipping.auto_confirm_due(
            shop.database, NOW + timedelta(days=60), timedelta(days=7), timedelta(days=15)
        )
        == []
    )
    assert await _status(shop, code) == "shipped"


async def test_refused_then_returning_is_still_one_alert_per_shipment(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop, "REJECTED01", group=GROUP_ID)
    shipment = await _shipment(shop, code)
    await _poll(shop, provider)
    await _set_number(shop, code, "RETURNING1")
    report = await _poll(shop, provider, NOW + INTERVAL)
    assert (report.new_events, report.coming_back) == (1, [code])
    assert (await _shipment(shop, code)).state == "returning"

    rows = [r for r in await _outbox(shop) if r.dedupe_key.startswith("parcel-back:")]
    assert sorted(r.dedupe_key for r in rows) == [
        f"parcel-back:{shipment.id}:staff:{user}" for user in MERCHANTS
    ]
    # The customer's group hears each state, with no phone, no receiver, no address.
    pushed = [r for r in await _customer_notices(shop, code) if ":track:" in r.dedupe_key]
    assert [(r.target_type, r.target_id) for r in pushed] == [("group", GROUP_ID)] * 2
    assert [_text(r) for r in pushed] == [
        f" 订单号：{code} 物流更新：拒签",
        f" 订单号：{code} 物流更新：退回 · 深圳市",
    ]


async def test_a_returning_parcel_polled_first_tells_its_own_event(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop, "RETURNING1")
    await _poll(shop, provider)
    shipment = await _shipment(shop, code)
    told = await _staff_alerts(shop, f"parcel-back:{shipment.id}:")
    assert set(told) == set(MERCHANTS)
    assert "退回：快件已退回，正在返回寄件人【深圳市】" in told[STAFF_ID]


async def test_an_arriving_parcel_alerts_nobody(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop, "TRANSIT001")
    report = await _poll(shop, provider)
    assert (report.new_events, report.coming_back, report.alerts) == (3, [], [])
    assert await _staff_alerts(shop, "parcel-back:") == {}
    assert await _staff_alerts(shop, "tracking-fail:") == {}
    assert (await _shipment(shop, code)).poll_failures == 0


async def test_without_alerts_nobody_is_told(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    """poll_due without StaffAlerts (the benchmark) stores and pushes, tells no staff."""
    code = await _shipped(shop, "REJECTED01")
    await _shipped(shop, "ERROR503")
    report = await shipping.poll_due(shop.database, provider, NOW, INTERVAL)
    assert report.new_events == 4
    assert (await _shipment(shop, code)).state == "rejected"
    assert await _staff_alerts(shop, "parcel-back:") == {}
    assert await _staff_alerts(shop, "tracking-fail:") == {}


# --- a parcel going back, typed with /物流更新 ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("顾客拒签，快递员带回", "rejected"),
        ("已退签，包裹回到店里", "return_signed"),
        ("地址不详，快件退回", "returning"),
    ],
)
async def test_a_typed_parcel_back_marks_the_shipment_and_tells_the_other_staff(
    shop: ShopContext, text: str, state: str
) -> None:
    code = await _shipped(shop)
    shipment = await _shipment(shop, code)

    updated = await fulfilment.update_tracking(shop, STAFF, code, text, False, NOW)

    assert (updated.event.state, updated.coming_back, updated.signed) == (state, True, False)
    assert (await _shipment(shop, code)).state == state
    # The staff member who typed it knows; the owner hears it, privately.
    told = await _staff_alerts(shop, f"parcel-back:{shipment.id}:")
    assert list(told) == [OWNER_ID]
    assert told[OWNER_ID].startswith(
        f"【包裹退回】订单号：{code}（顾客 {CUSTOMER_ID}）顺丰 SF1234567890 "
    )
    assert f"：{text}\n" in told[OWNER_ID]
    [*_, pushed] = await _customer_notices(shop, code)
    assert (pushed.target_type, pushed.target_id) == ("private", CUSTOMER_ID)
    assert _text(pushed).endswith(f"：{text}")
    # It never completes by itself, even long after shipping.
    assert (
        await shipping.auto_confirm_due(
            shop.database, NOW + timedelta(days=60), timedelta(days=7), timedelta(days=15)
        )
        == []
    )


async def test_each_person_hears_of_a_returning_parcel_at_most_once(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop, "REJECTED01")
    shipment = await _shipment(shop, code)
    await fulfilment.update_tracking(
        shop, OWNER, code, "顾客拒收", False, NOW - timedelta(minutes=5)
    )
    prefix = f"parcel-back:{shipment.id}:"
    assert list(await _staff_alerts(shop, prefix)) == [STAFF_ID]
    again = await fulfilment.update_tracking(shop, OWNER, code, "快件退回中", False, NOW)
    assert again.coming_back is True
    assert len(await _outbox_keys(shop, prefix)) == 1
    # The courier's own word reaches the owner who typed theirs (news from the carrier),
    # the staff member who heard already is not told again.
    await _poll(shop, provider)
    await _poll(shop, provider, NOW + INTERVAL)
    assert sorted(await _outbox_keys(shop, prefix)) == [
        f"{prefix}staff:{user}" for user in MERCHANTS
    ]
    assert "收件人拒收，快件已拒签" in (await _staff_alerts(shop, prefix))[OWNER_ID]
    assert "：顾客拒收\n" in (await _staff_alerts(shop, prefix))[STAFF_ID]


async def _outbox_keys(shop: ShopContext, prefix: str) -> list[str]:
    return [r.dedupe_key for r in await _outbox(shop) if r.dedupe_key.startswith(prefix)]


async def test_ordinary_typed_events_alert_nobody_and_keep_the_state(shop: ShopContext) -> None:
    code = await _shipped(shop)
    await fulfilment.update_tracking(
        shop, STAFF, code, "顾客拒签", False, NOW - timedelta(minutes=5)
    )
    updated = await fulfilment.update_tracking(
        shop, STAFF, code, "已联系顾客，再派一次", False, NOW
    )
    assert (updated.event.state, updated.coming_back) == ("", False)
    # Words about anything else do not undo "going back": only staff decide that.
    assert (await _shipment(shop, code)).state == "rejected"
    signed = await fulfilment.update_tracking(
        shop, STAFF, code, "已放门口", True, NOW + timedelta(minutes=1)
    )
    assert (signed.event.state, signed.coming_back) == ("signed", False)
    assert await _status(shop, code) == "delivered"


async def test_a_refused_typed_event_of_a_paid_order_is_refused_and_tells_nobody(
    shop: ShopContext,
) -> None:
    from services.errors import InvalidTransition

    code = await _shipped(shop)
    async with shop.database.write() as session:
        order = await orders.get_order(session, shop.shop_id, code)
        await shipping.confirm_received(session, order, Actor("customer", CUSTOMER_ID), NOW)
    before = len(await _outbox(shop))
    with pytest.raises(InvalidTransition):
        await fulfilment.update_tracking(shop, STAFF, code, "顾客拒签", False, NOW)
    assert len(await _outbox(shop)) == before


# --- a failing provider ---------------------------------------------------------------------


def test_failure_kinds() -> None:
    assert failure_kind(TrackingConfigError("503", "")) is FailureKind.BAD_KEY
    assert failure_kind(TrackingConfigError("601", "")) is FailureKind.QUOTA
    assert failure_kind(TrackingConfigError("config", "")) is FailureKind.CONFIG
    assert failure_kind(TrackingRejected("400", "")) is FailureKind.REJECTED
    assert failure_kind(TrackingUnavailable()) is FailureKind.UNAVAILABLE


def test_failure_alerts_are_keyed_by_the_shop_day() -> None:
    key = shipping.failure_alert_key
    assert key(FailureKind.QUOTA, NOW, SHANGHAI) == f"tracking-fail:quota:{TODAY}"
    # 23:30 UTC is already the next morning in Shanghai.
    late = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert key(FailureKind.QUOTA, late, SHANGHAI) == "tracking-fail:quota:2026-11-26"
    assert key(FailureKind.QUOTA, late, ZoneInfo("UTC")) == "tracking-fail:quota:2026-11-25"


@pytest.mark.parametrize(
    ("number", "kind", "said"),
    [
        (
            "ERROR503",
            "bad_key",
            "快递100 密钥无效（验证签名失败）：请检查 KUAIDI100_CUSTOMER 和 KUAIDI100_KEY。",
        ),
        ("ERROR601", "quota", "快递100 额度用完或密钥已过期（POLL:KEY已过期或账号余额不足）"),
    ],
)
async def test_a_settings_failure_is_told_at_once_and_ends_the_sweep(
    shop: ShopContext,
    fake: FakeKuaidi100,
    provider: Kuaidi100Provider,
    number: str,
    kind: str,
    said: str,
) -> None:
    failing = await _shipped(shop, number)
    waiting = await _shipped(shop, "TRANSIT001")
    asked = len(fake.requests)

    report = await _poll(shop, provider)

    # One query: the others would fail alike, so they wait an interval, uncounted.
    assert len(fake.requests) == asked + 1
    assert (report.polled, report.failures, report.alerts) == (1, [failing], [kind])
    rest = await _shipment(shop, waiting)
    assert (rest.next_poll_at, rest.poll_failures, rest.in_transit) == (NOW + INTERVAL, 0, True)
    first = await _shipment(shop, failing)
    assert (first.next_poll_at, first.poll_failures, first.in_transit) == (NOW + INTERVAL, 1, True)

    told = await _staff_alerts(shop, f"tracking-fail:{kind}:{TODAY}:")
    assert set(told) == set(MERCHANTS)
    assert told[OWNER_ID].startswith("【物流查询失败】")
    assert said in told[OWNER_ID]
    assert told[OWNER_ID].endswith("修好之前物流不会自动更新，可用 /物流更新 手动记录。")
    assert KUAIDI100_KEY not in told[OWNER_ID]
    # The customer hears nothing of it.
    assert [r.dedupe_key for r in await _customer_notices(shop, failing)] == [
        f"order:{failing}:shipped"
    ]


async def test_a_settings_failure_is_told_once_a_day(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    await _shipped(shop, "ERROR601")
    for step in range(4):  # the rest of the day: failing on every poll
        await _poll(shop, provider, NOW + step * INTERVAL)
    assert len(await _staff_alerts(shop, "tracking-fail:")) == 2  # one per merchant
    # The next day it is told again: still failing, or failing anew after a recovery.
    next_day = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    report = await _poll(shop, provider, next_day)
    assert report.alerts == ["quota"]
    assert set(await _staff_alerts(shop, "tracking-fail:quota:2026-11-26:")) == set(MERCHANTS)
    keys = sorted(
        r.dedupe_key for r in await _outbox(shop) if r.dedupe_key.startswith("tracking-fail:")
    )
    assert keys == sorted(
        f"tracking-fail:quota:{day}:staff:{user}"
        for day in (TODAY, "2026-11-26")
        for user in MERCHANTS
    )


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("ERROR400", "快递100 不认识这个快递公司或单号（找不到对应公司）"),
        ("ERROR408", "快递100 要求核对收件人手机号，查询被拒（快递公司参数异常：验证码错误）"),
    ],
)
async def test_a_rejected_shipment_is_told_once_and_polled_no_more(
    shop: ShopContext, provider: Kuaidi100Provider, number: str, why: str
) -> None:
    code = await _shipped(shop, number)
    shipment = await _shipment(shop, code)
    report = await _poll(shop, provider)
    assert (report.failures, report.alerts) == ([code], ["rejected"])
    told = await _staff_alerts(shop, f"tracking-fail:rejected:{shipment.id}:")
    assert set(told) == set(MERCHANTS)
    assert told[STAFF_ID] == (
        f"【物流查询失败】订单号：{code} 顺丰 {number}：{why}，已停止自动查询。"
        f"请核对快递公司和单号，之后用 /物流更新 {code} <描述> 手动记录。"
    )
    assert (await _shipment(shop, code)).in_transit is False
    assert (await _poll(shop, provider, NOW + 10 * INTERVAL)).polled == 0
    # A second rejected shipment is news of its own; the sweep goes on after one.
    other = await _shipped(shop, "ERROR400")
    after = await _shipped(shop, "TRANSIT001")
    later = await _poll(shop, provider, NOW + 11 * INTERVAL)
    assert later.polled == 2
    assert (await _shipment(shop, after)).state == "in_transit"
    other_id = (await _shipment(shop, other)).id
    assert set(await _staff_alerts(shop, f"tracking-fail:rejected:{other_id}:")) == set(MERCHANTS)


@pytest.mark.parametrize("number", ["ERROR502", "HTTP500001", "BADJSON001"])
async def test_an_unreachable_provider_is_told_after_failures_in_a_row(
    shop: ShopContext, provider: Kuaidi100Provider, number: str
) -> None:
    code = await _shipped(shop, number)
    for step in range(shipping.FAILURES_BEFORE_ALERT - 1):
        report = await _poll(shop, provider, NOW + step * INTERVAL)
        assert (report.failures, report.alerts) == ([code], [])  # a hiccup is no news
    assert await _staff_alerts(shop, "tracking-fail:") == {}

    third = NOW + (shipping.FAILURES_BEFORE_ALERT - 1) * INTERVAL
    report = await _poll(shop, provider, third)
    assert report.alerts == ["unavailable"]
    told = await _staff_alerts(shop, f"tracking-fail:unavailable:{TODAY}:")
    assert set(told) == set(MERCHANTS)
    assert told[OWNER_ID] == (
        f"【物流查询失败】快递100 已连续 {shipping.FAILURES_BEFORE_ALERT} 次查询失败"
        "（网络或快递100 服务暂时不可用），物流暂时不会自动更新，会继续自动重试。一直这样的话请检查网络。"
    )
    # Still polled: it may pass by itself.
    shipment = await _shipment(shop, code)
    assert (shipment.in_transit, shipment.poll_failures) == (True, shipping.FAILURES_BEFORE_ALERT)


async def test_an_answer_ends_a_run_of_failures(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    code = await _shipped(shop, "ERROR502")
    for step in range(shipping.FAILURES_BEFORE_ALERT - 1):
        await _poll(shop, provider, NOW + step * INTERVAL)
    await _set_number(shop, code, "TRANSIT001")
    step = shipping.FAILURES_BEFORE_ALERT - 1
    await _poll(shop, provider, NOW + step * INTERVAL)
    assert (await _shipment(shop, code)).poll_failures == 0
    await _set_number(shop, code, "ERROR502")
    report = await _poll(shop, provider, NOW + (step + 1) * INTERVAL)
    assert (report.failures, report.alerts) == ([code], [])
    assert (await _shipment(shop, code)).poll_failures == 1
    assert await _staff_alerts(shop, "tracking-fail:") == {}


# --- the clock use case ---------------------------------------------------------------------


async def test_the_tracking_clock_tells_staff(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    shop.settings = shop.settings.model_copy(update={"tracking_provider": "kuaidi100"})
    back = await _shipped(shop, "RETURNING1")
    await _shipped(shop, "ERROR601")
    report = await clocks.tracking_clocks(shop, provider, NOW)
    assert report.unusable == ""
    assert report.polled.coming_back == [back]
    shipment = await _shipment(shop, back)
    assert set(await _staff_alerts(shop, f"parcel-back:{shipment.id}:")) == set(MERCHANTS)
    # The shop's own zone keys the day (SHOP_TIMEZONE, Asia/Shanghai by default).
    assert set(await _staff_alerts(shop, f"tracking-fail:quota:{TODAY}:")) == set(MERCHANTS)


async def test_a_provider_without_its_settings_is_told_once_a_day(shop: ShopContext) -> None:
    """TRACKING_PROVIDER=kuaidi100 without KUAIDI100_KEY: the clock plugin falls back to
    the manual provider, which polls nothing; staff must hear why."""
    shop.settings = shop.settings.model_copy(update={"tracking_provider": "kuaidi100"})
    await _shipped(shop, "TRANSIT001")
    first = await clocks.tracking_clocks(shop, ManualProvider(), NOW)
    assert first.unusable == "KUAIDI100_CUSTOMER 和 KUAIDI100_KEY 必须设置"
    assert first.polled.polled == 0
    told = await _staff_alerts(shop, f"tracking-fail:config:{TODAY}:")
    assert set(told) == set(MERCHANTS)
    assert told[OWNER_ID] == (
        "【物流查询失败】物流查询设置有误（KUAIDI100_CUSTOMER 和 KUAIDI100_KEY 必须设置）："
        "请检查 TRACKING_PROVIDER 和快递100 的设置。修好之前物流不会自动更新，可用 /物流更新 手动记录。"
    )
    count = len(await _outbox(shop))
    await clocks.tracking_clocks(shop, ManualProvider(), NOW + INTERVAL)
    assert len(await _outbox(shop)) == count


async def test_a_manual_shop_is_never_told_about_its_provider(shop: ShopContext) -> None:
    assert shop.settings.tracking_provider == "manual"
    await _shipped(shop, "TRANSIT001")
    report = await clocks.tracking_clocks(shop, ManualProvider(), NOW)
    assert (report.unusable, report.polled) == ("", shipping.PollReport())
    assert await _staff_alerts(shop, "tracking-fail:") == {}


# --- notices of an order from a group the shop was switched off in --------------------------


async def _switch(shop: ShopContext, enabled: bool) -> None:
    async with shop.database.write() as session:
        await groups.set_group_enabled(session, shop.shop_id, GROUP_ID, enabled, OWNER_ID)


async def test_a_disabled_groups_customer_hears_privately(shop: ShopContext) -> None:
    await _switch(shop, True)
    code = await _shipped(shop, group=GROUP_ID)
    [shipped] = await _customer_notices(shop, code)
    assert (shipped.target_type, shipped.target_id) == ("group", GROUP_ID)

    await _switch(shop, False)
    await fulfilment.update_tracking(shop, STAFF, code, "到达杭州转运中心", False, NOW)
    [_, pushed] = await _customer_notices(shop, code)
    # Private: no @-mention; the text stays the group-safe one it was written as.
    assert (pushed.target_type, pushed.target_id) == ("private", CUSTOMER_ID)
    assert json.loads(pushed.segments) == [
        {"type": "text", "data": {"text": f"订单号：{code} 物流更新：在途 · 杭州"}}
    ]

    # Switched on again: back to the group.
    await _switch(shop, True)
    await fulfilment.update_tracking(
        shop, STAFF, code, "已放门口", True, NOW + timedelta(minutes=1)
    )
    [*_, delivered] = await _customer_notices(shop, code)
    assert (delivered.target_type, delivered.target_id) == ("group", GROUP_ID)
    assert json.loads(delivered.segments)[0] == {"type": "at", "data": {"qq": str(CUSTOMER_ID)}}


async def test_a_clock_notice_of_a_disabled_group_goes_private(
    shop: ShopContext, provider: Kuaidi100Provider
) -> None:
    await _switch(shop, True)
    code = await _shipped(shop, "SIGNED0001", group=GROUP_ID)
    await _switch(shop, False)
    await _poll(shop, provider)
    [*_, delivered] = await _customer_notices(shop, code)
    assert delivered.dedupe_key == f"order:{code}:delivered"
    assert (delivered.target_type, delivered.target_id) == ("private", CUSTOMER_ID)


async def test_only_an_explicit_switch_off_redirects(shop: ShopContext) -> None:
    """A group the shop has no row for was never switched on or off: left as it is."""
    async with shop.database.write() as session:
        assert await notices.customer_group(session, shop.shop_id, GROUP_ID) == GROUP_ID
        assert await notices.customer_group(session, shop.shop_id, None) is None
        assert await groups.group_disabled(session, shop.shop_id, GROUP_ID) is False
    await _switch(shop, True)
    await _switch(shop, False)
    async with shop.database.write() as session:
        assert await notices.customer_group(session, shop.shop_id, GROUP_ID) is None
        assert await groups.group_disabled(session, shop.shop_id, GROUP_ID) is True
        # Another shop's switch is not this shop's.
        assert await groups.group_disabled(session, shop.shop_id + 1, GROUP_ID) is False


async def test_a_ticket_notice_of_a_disabled_group_goes_private(shop: ShopContext) -> None:
    """Tickets share the one decision (notices.to_chat): staff's reply on a ticket opened
    in a group the shop was switched off in since goes to the customer privately."""
    from models.tables import TicketKind
    from services.usecases import tickets

    await _switch(shop, True)
    code = await _shipped(shop, group=GROUP_ID)
    in_group = Caller(CUSTOMER_ID, GROUP_ID, Role.CUSTOMER)
    opened = await tickets.open_ticket(
        shop, in_group, code, TicketKind.COMPLAINT, "太慢了", now=NOW
    )
    await _switch(shop, False)
    await tickets.answer_ticket(shop, STAFF, opened.ticket.code, "已催快递", NOW)
    [row] = [
        r
        for r in await _outbox(shop)
        if r.dedupe_key.startswith(f"ticket:{opened.ticket.code}:message:")
    ]
    assert (row.target_type, row.target_id) == ("private", CUSTOMER_ID)
    assert _text(row) == f"工单号：{opened.ticket.code} 店家回复：已催快递"


async def test_tracking_event_rows_record_a_typed_return(shop: ShopContext) -> None:
    code = await _shipped(shop)
    await fulfilment.update_tracking(shop, STAFF, code, "顾客拒签", False, NOW)
    async with shop.database.read() as session:
        rows = await session.execute(
            select(TrackingEventRow.state, TrackingEventRow.source)
            .join(Shipment, Shipment.id == TrackingEventRow.shipment_id)
            .join(ShopOrder, ShopOrder.id == Shipment.order_id)
            .where(ShopOrder.code == code)
        )
        assert list(rows.all()) == [("rejected", "manual")]
