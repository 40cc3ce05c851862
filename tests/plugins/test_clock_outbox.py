"""The clocks plugin: tick() (unpaid expiry, payment reminders, automatic approval of
cancellation requests, expired summaries, EPay reconciliation against the fake gateway
over real HTTP) and dispatch_once() (the paced outbox sender) against a fake OneBot v11
bot with nonebug's app.test_api()."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID
from tests.fake import SELF_ID, Says, private
from tests.plugins.helpers import (
    OFFICE,
    attempts_of,
    converse,
    drafts_of,
    get_order_row,
    orders_of,
    outbox_rows,
    outbox_texts,
    pay_order,
    png_bytes,
    rows_of,
    save_address,
    seed_demo,
    seed_order,
    set_order_fields,
    stock_of,
)
from tools.bot_process import free_port
from tools.fake_epay import KEY, PID, FakeEpay, NotifyMode

if TYPE_CHECKING:
    from plugins._common.runtime import ShopRuntime


@pytest.fixture(autouse=True)
async def _shop_ready(shop: ShopRuntime) -> None:
    from plugins._common.runtime import FloodGuard

    shop.flood = FloodGuard(10_000, 10.0)
    await seed_demo(shop)


def now() -> Any:
    from models.types import utcnow

    return utcnow()


async def tick() -> None:
    from plugins.clocks import tick as run

    await run()


async def dispatch(shop: ShopRuntime, bot: Any) -> int:
    from plugins.clocks import dispatch_once
    from services.outbox import Pacer

    return await dispatch_once(shop, Pacer(0, 1000), bot)


@asynccontextmanager
async def fake_bot(app: App) -> Any:
    """A connected OneBot v11 bot whose API calls nonebug checks (ctx.should_call_api)."""
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    async with app.test_api() as ctx:
        adapter = ctx.create_adapter(base=Adapter)
        bot = ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SELF_ID))
        yield ctx, bot


def private_call(user_id: int, text: str) -> dict[str, Any]:
    return {
        "message": [{"type": "text", "data": {"text": text}}],
        "user_id": user_id,
    }


async def expire(shop: ShopRuntime, code: str, minutes_ago: float = 1) -> None:
    """Moves an unpaid order into the past so its payment time is over."""
    moment = now() - timedelta(minutes=minutes_ago)
    await set_order_fields(
        shop, code, created_at=moment - shop.settings.unpaid_timeout, expires_at=moment
    )


async def unsent(shop: ShopRuntime) -> list[Any]:
    return [r for r in await outbox_rows(shop) if r.sent_at is None]


# --- tick() ----------------------------------------------------------------------------


async def test_tick_cancels_an_expired_unpaid_order_once(shop: ShopRuntime) -> None:
    from models.tables import OrderEvent

    code = await seed_order(shop, CUSTOMER_ID, ((5, 3, 3),))
    keep = await seed_order(shop, CUSTOMER_ID)
    assert await stock_of(shop, 5, 3) == 0
    await expire(shop, code)
    await tick()
    order = await get_order_row(shop, code)
    assert (order.status, order.expires_at) == ("cancelled", None)
    assert await stock_of(shop, 5, 3) == 3
    assert (await get_order_row(shop, keep)).status == "pending_payment"
    [event] = [e for e in await rows_of(shop, OrderEvent) if e.action == "expired"]
    assert (event.actor, event.from_status, event.to_status) == (
        "system",
        "pending_payment",
        "cancelled",
    )
    rows = await outbox_rows(shop)
    assert [(r.target_type, r.target_id, r.dedupe_key) for r in rows] == [
        ("private", CUSTOMER_ID, f"order:{code}:expired")
    ]
    assert outbox_texts(rows) == [
        f"订单号：{code} 超时未付款，已自动取消，库存已释放。需要的话请重新下单。"
    ]
    assert shop.shop.notices_committed.is_set()
    # A second run (or a second process) finds nothing left to do.
    await tick()
    assert len(await outbox_rows(shop)) == 1
    assert await stock_of(shop, 5, 3) == 3


async def test_tick_runs_only_in_the_process_holding_the_clock_lease(shop: ShopRuntime) -> None:
    """Another bot process on the same database holds the lease: this one's tick does
    nothing; once that process releases it (or its lease runs out) this one takes over,
    and at its shutdown releases it for the next."""
    from plugins.clocks import _stop_clocks
    from services import leases

    code = await seed_order(shop, CUSTOMER_ID)
    await expire(shop, code)
    async with shop.database.write() as session:
        assert await leases.acquire(
            session, leases.CLOCKS, "other-process", now(), timedelta(minutes=5)
        )
    await tick()
    assert (await get_order_row(shop, code)).status == "pending_payment"
    assert await outbox_rows(shop) == []

    async with shop.database.write() as session:
        await leases.release(session, leases.CLOCKS, "other-process", now())
    await tick()
    assert (await get_order_row(shop, code)).status == "cancelled"
    async with shop.database.read() as session:
        holder = await leases.current_holder(session, leases.CLOCKS, now())
    assert holder is not None and holder != "other-process"

    await _stop_clocks()
    async with shop.database.read() as session:
        assert await leases.current_holder(session, leases.CLOCKS, now()) is None


async def test_tick_reminds_once_at_half_time(shop: ShopRuntime) -> None:
    code = await seed_order(shop, CUSTOMER_ID, at=now() - timedelta(minutes=20))
    await tick()
    order = await get_order_row(shop, code)
    assert order.status == "pending_payment" and order.reminded_at is not None
    rows = await outbox_rows(shop)
    assert [r.dedupe_key for r in rows] == [f"order:{code}:remind"]
    assert outbox_texts(rows) == [
        f"订单号：{code} 还未付款（¥39.90），约 10 分钟后自动取消。付款方式：/付款 {code}"
    ]
    await tick()
    assert len(await outbox_rows(shop)) == 1


async def test_tick_leaves_fresh_and_paid_orders_alone(shop: ShopRuntime) -> None:
    fresh = await seed_order(shop, CUSTOMER_ID)
    paid = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, paid)
    await set_order_fields(shop, paid, created_at=now() - timedelta(days=3))
    await tick()
    assert (await get_order_row(shop, fresh)).status == "pending_payment"
    assert (await get_order_row(shop, paid)).status == "paid"
    assert await outbox_rows(shop) == []


async def test_tick_auto_approves_an_old_cancellation_request(shop: ShopRuntime) -> None:
    from sqlalchemy import update

    from models.tables import OrderRequest
    from services.orders import Actor, cancel, get_order

    code = await seed_order(shop, CUSTOMER_ID, ((3, 1, 1),))
    await pay_order(shop, code)
    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        await cancel(session, order, Actor("customer", CUSTOMER_ID), "不要了", now())
        await session.execute(
            update(OrderRequest).values(
                requested_at=now() - shop.settings.refund_auto_approve - timedelta(minutes=1)
            )
        )
    await tick()
    order = await get_order_row(shop, code)
    assert (order.status, order.refunded_fen) == ("refunded", 12800)
    assert await stock_of(shop, 3) == 8
    [request] = await rows_of(shop, OrderRequest)
    assert (request.status, request.decision_reason) == ("approved", "超时未处理，系统自动同意")
    texts = outbox_texts(await outbox_rows(shop))
    assert (
        f"订单号：{code} 的取消订单申请已同意。已全额退款 ¥128.00。说明：超时未处理，系统自动同意"
        in texts
    )


async def test_tick_auto_approves_a_cancellation_followed_by_an_address_request(
    shop: ShopRuntime,
) -> None:
    """Regression: the clock swallowed the error of the later address request inside the
    open transaction: refund committed, no notice, the address request pending for ever."""
    from sqlalchemy import update

    from models.tables import OrderRequest
    from services.addresses import AddressSnapshot
    from services.orders import Actor, amend_address, cancel, get_order

    await save_address(shop, CUSTOMER_ID)
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    customer = Actor("customer", CUSTOMER_ID)
    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        await cancel(session, order, customer, "不要了", now())
        await amend_address(session, order, AddressSnapshot(*OFFICE), customer, now())
        await session.execute(
            update(OrderRequest).values(
                requested_at=now() - shop.settings.refund_auto_approve - timedelta(minutes=1)
            )
        )
    await tick()
    assert (await get_order_row(shop, code)).status == "refunded"
    texts = outbox_texts(await outbox_rows(shop))
    assert any("取消订单申请已同意" in t for t in texts), texts
    assert all(r.status != "pending" for r in await rows_of(shop, OrderRequest))


async def test_tick_purges_expired_summaries_and_confirm_is_then_ignored(
    app: App, shop: ShopRuntime
) -> None:
    from sqlalchemy import update

    from models.tables import CheckoutDraft

    await save_address(shop, CUSTOMER_ID)
    buy = private("/下单 2", CUSTOMER_ID)
    await converse(app, (buy, Says(buy, '回复"确认"提交订单')))
    async with shop.database.write() as session:
        await session.execute(update(CheckoutDraft).values(expires_at=now() - timedelta(seconds=1)))
    await tick()
    assert await drafts_of(shop) == []
    assert not shop.drafts
    confirm = private("确认", CUSTOMER_ID)
    # Nothing waits any more: the private chat says so, and no order is placed.
    stale = "没有等待确认的订单：已经提交或已超时。发 /订单 查看你的订单。"
    await converse(app, (confirm, Says(confirm, exact=stale)))
    assert await orders_of(shop) == []


async def test_a_failing_clock_job_does_not_stop_the_others(
    app: App, shop: ShopRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracking provider breaks in a way nobody foresaw: the tracking job fails (and
    is logged), while the jobs after it (expired summaries here) still run."""
    from sqlalchemy import update

    import plugins.clocks
    from models.tables import CheckoutDraft
    from services.tracking import Carrier

    class BrokenProvider:
        name = "kuaidi100"

        async def query(self, carrier: Carrier, number: str, phone: str | None = None) -> None:
            raise RuntimeError("provider exploded")

        async def aclose(self) -> None:
            return None

    monkeypatch.setattr(plugins.clocks, "_provider", lambda runtime: BrokenProvider())
    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    ship = private(f"/发货 {code} 顺丰 SF1234567890", OWNER_ID)
    await converse(app, (ship, Says(ship, "已发货")))
    await save_address(shop, CUSTOMER_ID)
    buy = private("/下单 2", CUSTOMER_ID)
    await converse(app, (buy, Says(buy, '回复"确认"提交订单')))
    async with shop.database.write() as session:
        await session.execute(update(CheckoutDraft).values(expires_at=now() - timedelta(seconds=1)))
    await tick()
    assert await drafts_of(shop) == []


async def test_a_tick_cancelled_by_shutdown_ends_quietly(shop: ShopRuntime) -> None:
    """At shutdown the scheduler cancels a running tick; that must not end in a traceback
    (APScheduler would log one): the jobs are idempotent and the next start catches up."""
    import asyncio

    import plugins.clocks

    async with plugins.clocks._tick_running:  # a tick is under way: the next one waits
        waiting = asyncio.create_task(plugins.clocks.tick())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        waiting.cancel()
        assert await waiting is None


async def test_tick_without_a_running_shop_does_nothing(
    shop: ShopRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plugins.clocks

    code = await seed_order(shop, CUSTOMER_ID)
    await expire(shop, code)
    monkeypatch.setattr(plugins.clocks, "current_runtime", lambda: None)
    await tick()
    assert (await get_order_row(shop, code)).status == "pending_payment"


# --- tick(): EPay reconciliation --------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    from nonebot import logger

    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO")
    yield lines
    logger.remove(sink)


async def started_payment(shop: ShopRuntime, code: str) -> str:
    """The customer asked /付款 for the order: its out_trade_no at the gateway."""
    from services.actors import Caller
    from services.staff import Role
    from services.usecases import buying
    from services.usecases.epay import PaymentLink

    link = await buying.pay_order(shop.shop, Caller(CUSTOMER_ID, None, Role.CUSTOMER), code)
    assert isinstance(link, PaymentLink)
    return link.out_trade_no


async def attempts_due_now(shop: ShopRuntime) -> None:
    """EPAY_RECONCILE_MINUTES have passed: every live attempt is due for a check."""
    from sqlalchemy import update

    from models.tables import PaymentAttempt

    async with shop.database.write() as session:
        await session.execute(
            update(PaymentAttempt)
            .where(PaymentAttempt.state == "live")  # type: ignore[arg-type]
            .values(next_check_at=now() - timedelta(seconds=1))
        )


async def test_tick_finds_a_lost_notify_and_the_customer_is_told(
    app: App, shop: ShopRuntime, epay: FakeEpay, log_lines: list[str]
) -> None:
    from models.tables import Payment

    code = await seed_order(shop, CUSTOMER_ID)
    out_trade_no = await started_payment(shop, code)
    epay.pay(out_trade_no, NotifyMode.DROP)  # paid; the notify never arrives
    await tick()  # not due for a check yet
    assert (await get_order_row(shop, code)).status == "pending_payment"
    await attempts_due_now(shop)
    await tick()
    order = await get_order_row(shop, code)
    assert (order.status, order.paid_fen) == ("paid", 3990)
    [payment] = await rows_of(shop, Payment)
    assert (payment.provider, payment.reference) == ("epay", epay.payments[out_trade_no].trade_no)
    [attempt] = await attempts_of(shop, code)
    assert (attempt.state, attempt.next_check_at) == ("paid", None)
    [line] = [line for line in log_lines if "payments:" in line]
    assert f"recorded ['{code}']" in line and KEY not in line
    # The customer hears through the outbox, staff get an order to ship.
    customer = f"订单号：{code} 已确认收款 ¥39.90，我们会尽快发货。"
    staff = f"订单号：{code} 已付款 ¥39.90，顾客 {CUSTOMER_ID}，请尽快发货：/发货 {code} <快递公司> <运单号>"
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api(
            "send_private_msg", private_call(CUSTOMER_ID, customer), result={"message_id": 1}
        )
        ctx.should_call_api(
            "send_private_msg", private_call(OWNER_ID, staff), result={"message_id": 2}
        )
        assert await dispatch(shop, bot) == 2
    await tick()  # asked once: nothing more happens
    assert len(await rows_of(shop, Payment)) == 1 and len(await outbox_rows(shop)) == 2


async def test_an_unreachable_gateway_stops_no_other_clock_job(
    shop: ShopRuntime, epay: FakeEpay, log_lines: list[str]
) -> None:
    from services.epay import EpayGateway

    code = await seed_order(shop, CUSTOMER_ID)
    await started_payment(shop, code)
    await attempts_due_now(shop)
    stale = await seed_order(shop, CUSTOMER_ID)
    await expire(shop, stale)
    live = shop.shop.payment_gateway
    dead = EpayGateway(f"http://127.0.0.1:{free_port()}/", PID, KEY, timeout=2.0)
    shop.shop.payment_gateway = dead
    try:
        await tick()
    finally:
        shop.shop.payment_gateway = live
        await dead.aclose()
    assert (await get_order_row(shop, stale)).status == "cancelled"  # the order clock ran
    [attempt] = await attempts_of(shop, code)
    assert attempt.state == "live" and attempt.next_check_at > now()  # asked again later
    [line] = [line for line in log_lines if "payments:" in line]
    assert "unreachable 1" in line
    assert all(KEY not in line for line in log_lines)


async def test_a_failing_clock_job_does_not_stop_reconciliation(
    shop: ShopRuntime, epay: FakeEpay, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plugins.clocks

    async def exploded(runtime: Any, moment: Any) -> None:
        raise RuntimeError("order clock exploded")

    monkeypatch.setattr(plugins.clocks, "_order_clocks", exploded)
    code = await seed_order(shop, CUSTOMER_ID)
    epay.pay(await started_payment(shop, code), NotifyMode.DROP)
    await attempts_due_now(shop)
    await tick()
    assert (await get_order_row(shop, code)).status == "paid"


# --- dispatch_once() -----------------------------------------------------------------------


async def test_dispatch_sends_a_private_notice_exactly_once(app: App, shop: ShopRuntime) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await expire(shop, code)
    await tick()
    text = f"订单号：{code} 超时未付款，已自动取消，库存已释放。需要的话请重新下单。"
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api(
            "send_private_msg", private_call(CUSTOMER_ID, text), result={"message_id": 1}
        )
        assert await dispatch(shop, bot) == 1
        [row] = await outbox_rows(shop)
        assert row.sent_at is not None and row.attempts == 1 and row.last_error == ""
        # Nothing is due any more: no second API call (nonebug fails on unexpected calls).
        assert await dispatch(shop, bot) == 0
    [row] = await outbox_rows(shop)
    assert row.sent_at is not None and row.attempts == 1


async def test_dispatch_sends_group_notices_with_a_mention(app: App, shop: ShopRuntime) -> None:
    code = await seed_order(shop, CUSTOMER_ID, group_id=GROUP_ID)
    await expire(shop, code)
    await tick()
    expected = {
        "message": [
            {"type": "at", "data": {"qq": str(CUSTOMER_ID)}},
            {
                "type": "text",
                "data": {
                    "text": f" 订单号：{code} 超时未付款，已自动取消，库存已释放。需要的话请重新下单。"
                },
            },
        ],
        "group_id": GROUP_ID,
    }
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api("send_group_msg", expected, result={"message_id": 7})
        assert await dispatch(shop, bot) == 1
    assert await unsent(shop) == []


async def test_dispatch_sends_oldest_first(app: App, shop: ShopRuntime) -> None:
    from services import outbox

    async with shop.database.write() as session:
        for n in range(3):
            await outbox.enqueue(
                session,
                outbox.Target("private", OWNER_ID),
                [outbox.text(f"第{n}条")],
                f"test:{n}",
                now() - timedelta(minutes=3 - n),
            )
    async with fake_bot(app) as (ctx, bot):
        for n in range(3):
            ctx.should_call_api(
                "send_private_msg", private_call(OWNER_ID, f"第{n}条"), result={"message_id": n}
            )
        assert await dispatch(shop, bot) == 3
    assert await unsent(shop) == []


async def test_rows_waiting_behind_the_pacing_are_not_claimed(shop: ShopRuntime) -> None:
    """Another bot process may dispatch too: a row claimed long before its turn would run
    out of claim while it waits, be taken by the other process and go out twice. So each
    row is claimed only just before its own send."""
    from plugins.clocks import dispatch_once
    from services import outbox

    async with shop.database.write() as session:
        for n in range(3):
            await outbox.enqueue(
                session,
                outbox.Target("private", OWNER_ID),
                [outbox.text(f"第{n}条")],
                f"test:{n}",
                now() - timedelta(minutes=3 - n),
            )
    seen: list[tuple[str, list[int]]] = []

    class RecordingBot:
        self_id = str(SELF_ID)

        async def call_api(self, action: str, **params: Any) -> dict[str, int]:
            attempts = sorted(r.attempts for r in await outbox_rows(shop) if r.sent_at is None)
            seen.append((params["message"][0]["data"]["text"], attempts))
            return {"message_id": len(seen)}

    assert await dispatch_once(shop, outbox.Pacer(0, 1000), RecordingBot()) == 3  # type: ignore[arg-type]
    # While each one was being sent, it alone was claimed (attempts 1); the rest were not.
    assert seen == [("第0条", [0, 0, 1]), ("第1条", [0, 1]), ("第2条", [1])]


async def test_no_bot_keeps_rows_without_counting_attempts(app: App, shop: ShopRuntime) -> None:
    code = await seed_order(shop, CUSTOMER_ID)
    await expire(shop, code)
    await tick()
    assert await dispatch(shop, None) == 0
    assert await dispatch(shop, None) == 0
    [row] = await outbox_rows(shop)
    assert (row.sent_at, row.failed_at, row.attempts) == (None, None, 0)
    assert row.next_attempt_at <= now()  # still due: sent as soon as a bot connects
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api(
            "send_private_msg",
            private_call(CUSTOMER_ID, outbox_texts([row])[0]),
            result={"message_id": 1},
        )
        assert await dispatch(shop, bot) == 1
    [row] = await outbox_rows(shop)
    assert row.sent_at is not None and row.attempts == 1


@pytest.mark.parametrize("error", ["action-failed", "network"])
async def test_failed_send_backs_off_and_is_retried(
    app: App, shop: ShopRuntime, error: str
) -> None:
    from nonebot.adapters.onebot.v11.exception import ActionFailed, NetworkError

    from services.outbox import BACKOFF_BASE_SECONDS

    exception = (
        ActionFailed(retcode=1200, msg="risk control")
        if error == "action-failed"
        else NetworkError("gone")
    )
    code = await seed_order(shop, CUSTOMER_ID)
    await expire(shop, code)
    await tick()
    text = outbox_texts(await outbox_rows(shop))[0]
    before = now()
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api(
            "send_private_msg", private_call(CUSTOMER_ID, text), exception=exception
        )
        assert await dispatch(shop, bot) == 0
        [row] = await outbox_rows(shop)
        assert (row.sent_at, row.failed_at, row.attempts) == (None, None, 1)
        assert row.last_error == repr(exception)
        wait = (row.next_attempt_at - before).total_seconds()
        assert BACKOFF_BASE_SECONDS - 1 <= wait <= BACKOFF_BASE_SECONDS + 5
        # Not due yet: nothing is sent now.
        assert await dispatch(shop, bot) == 0
    await set_next_attempt(shop, now() - timedelta(seconds=1))
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api(
            "send_private_msg", private_call(CUSTOMER_ID, text), result={"message_id": 2}
        )
        assert await dispatch(shop, bot) == 1
    [row] = await outbox_rows(shop)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error == ""


async def set_next_attempt(shop: ShopRuntime, moment: Any) -> None:
    from sqlalchemy import update

    from models.tables import OutboxMessage

    async with shop.database.write() as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=moment))


async def test_backoff_grows_and_the_row_is_given_up_at_last(app: App, shop: ShopRuntime) -> None:
    from sqlalchemy import update

    from models.tables import OutboxMessage
    from services.outbox import MAX_ATTEMPTS, Target, enqueue, text

    async with shop.database.write() as session:
        await enqueue(session, Target("private", OWNER_ID), [text("你好")], "test:retry", now())
    waits = []
    async with fake_bot(app) as (ctx, bot):
        for _ in range(3):
            ctx.should_call_api(
                "send_private_msg", private_call(OWNER_ID, "你好"), exception=RuntimeError("boom")
            )
            before = now()
            assert await dispatch(shop, bot) == 0
            [row] = await outbox_rows(shop)
            waits.append(round((row.next_attempt_at - before).total_seconds()))
            await set_next_attempt(shop, now() - timedelta(seconds=1))
        assert waits == [10, 20, 40]
        async with shop.database.write() as session:
            await session.execute(update(OutboxMessage).values(attempts=MAX_ATTEMPTS - 1))
        ctx.should_call_api(
            "send_private_msg", private_call(OWNER_ID, "你好"), exception=RuntimeError("boom")
        )
        assert await dispatch(shop, bot) == 0
        [row] = await outbox_rows(shop)
        assert row.failed_at is not None and row.sent_at is None
        await set_next_attempt(shop, now() - timedelta(seconds=1))
        assert await dispatch(shop, bot) == 0  # given up: never sent again


async def test_stored_images_travel_as_base64(app: App, shop: ShopRuntime) -> None:
    from pathlib import Path

    from services import outbox
    from services.media import store_image

    path = store_image(png_bytes(), Path(shop.settings.data_dir))
    async with shop.database.write() as session:
        await outbox.enqueue(
            session,
            outbox.Target("group", GROUP_ID),
            [
                outbox.text("新品上架"),
                outbox.image_file(path),
                outbox.image_file("media/missing.png"),
            ],
            "test:image",
            now(),
        )
    expected = {
        "message": [
            {"type": "text", "data": {"text": "新品上架"}},
            {
                "type": "image",
                "data": {"file": "base64://" + base64.b64encode(png_bytes()).decode()},
            },
        ],
        "group_id": GROUP_ID,
    }
    async with fake_bot(app) as (ctx, bot):
        ctx.should_call_api("send_group_msg", expected, result={"message_id": 3})
        assert await dispatch(shop, bot) == 1


async def test_no_false_shipped_notice_for_a_refunded_order(shop: ShopRuntime) -> None:
    """Regression: 48 h after a full refund the customer was told the cancellation was
    refused because the order had shipped."""
    from sqlalchemy import update

    from models.tables import OrderRequest
    from services.orders import Actor, cancel, get_order, refund

    code = await seed_order(shop, CUSTOMER_ID)
    await pay_order(shop, code)
    async with shop.database.write() as session:
        order = await get_order(session, shop.shop_id, code)
        await cancel(session, order, Actor("customer", CUSTOMER_ID), "不要了", now())
        await refund(session, order, None, "", Actor("owner", OWNER_ID), now())
        await session.execute(
            update(OrderRequest).values(
                requested_at=now() - shop.settings.refund_auto_approve - timedelta(minutes=1)
            )
        )
    await tick()
    texts = outbox_texts(await outbox_rows(shop))
    assert not any("已发货" in t or "未通过" in t for t in texts), texts
    # The refund settled the request; the clock found nothing left to decide.
    assert [(r.kind, r.status) for r in await rows_of(shop, OrderRequest)] == [
        ("cancel", "approved")
    ]
    assert (await get_order_row(shop, code)).status == "refunded"


# --- several QQ accounts -------------------------------------------------------------------

SECOND_ID = 2854196311


async def reach_rows(shop: ShopRuntime) -> set[tuple[int, str, int]]:
    from sqlalchemy import select

    from models.tables import AccountReach

    async with shop.database.read() as session:
        rows = (await session.execute(select(AccountReach))).scalars()
        return {(r.account_id, r.target_type, r.target_id) for r in rows}


async def test_a_group_notice_goes_out_through_the_account_in_that_group(
    app: App, shop: ShopRuntime
) -> None:
    """Two accounts connected to this process: on connect each lists its groups; a
    notice for a group only the second account is in goes out through that account,
    and the first account is never asked to send it."""
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    from plugins.clocks import account_connected, dispatch_bots
    from services import outbox

    async with app.test_api() as ctx:
        first_adapter = ctx.create_adapter(base=Adapter)
        second_adapter = ctx.create_adapter(base=Adapter)
        first = ctx.create_bot(base=Bot, adapter=first_adapter, self_id=str(SELF_ID))
        second = ctx.create_bot(base=Bot, adapter=second_adapter, self_id=str(SECOND_ID))
        ctx.should_call_api("get_group_list", {}, result=[], adapter=first_adapter)
        await account_connected(shop, first)
        ctx.should_call_api(
            "get_group_list",
            {},
            result=[{"group_id": GROUP_ID, "group_name": "店铺群"}],
            adapter=second_adapter,
        )
        await account_connected(shop, second)
        assert await reach_rows(shop) == {(SECOND_ID, "group", GROUP_ID)}
        async with shop.database.write() as session:
            await outbox.enqueue(
                session, outbox.Target.group(GROUP_ID), [outbox.text("上新啦")], "test:g", now()
            )
        ctx.should_call_api(
            "send_group_msg",
            {"group_id": GROUP_ID, "message": [{"type": "text", "data": {"text": "上新啦"}}]},
            result={"message_id": 9},
            adapter=second_adapter,
        )
        bots = {SELF_ID: first, SECOND_ID: second}
        assert await dispatch_bots(shop, bots, {}) == 1  # type: ignore[dict-item]
    assert await unsent(shop) == []


async def test_an_unreadable_group_list_keeps_what_was_learned(app: App, shop: ShopRuntime) -> None:
    from nonebot.adapters.onebot.v11 import Adapter, Bot
    from nonebot.adapters.onebot.v11.exception import ActionFailed
    from sqlalchemy import select

    from models.tables import AccountPresence
    from plugins.clocks import account_connected

    async with app.test_api() as ctx:
        adapter = ctx.create_adapter(base=Adapter)
        bot = ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SECOND_ID))
        ctx.should_call_api("get_group_list", {}, result=[{"group_id": GROUP_ID}])
        await account_connected(shop, bot)
        ctx.should_call_api("get_group_list", {}, exception=ActionFailed(retcode=1, msg="busy"))
        await account_connected(shop, bot)
    assert await reach_rows(shop) == {(SECOND_ID, "group", GROUP_ID)}
    async with shop.database.read() as session:
        present = (await session.execute(select(AccountPresence.account_id))).scalars()
        assert list(present) == [SECOND_ID]


async def test_replies_come_from_the_account_that_received_the_command(
    app: App, shop: ShopRuntime
) -> None:
    """With two accounts in one process, the answer goes through the account the
    command came in on; the router also learns (in memory, written by the dispatcher)
    which account is in the group."""
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    from services.usecases import accounts
    from tests.fake import group
    from tests.plugins.helpers import enable_group

    await enable_group(shop)
    event = group("/帮助", CUSTOMER_ID, GROUP_ID).model_copy(update={"self_id": SECOND_ID})
    async with app.test_matcher() as ctx:
        adapter = nonebot.get_adapter(Adapter)
        ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SELF_ID))
        second = ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SECOND_ID))
        ctx.receive_event(second, event)
        ctx.should_call_send(event, Says(event, "帮助"), bot=second)
    assert await reach_rows(shop) == set()  # nothing written on the reply path
    await accounts.flush(shop.shop, [])
    assert await reach_rows(shop) == {(SECOND_ID, "group", GROUP_ID)}
