"""The shop's clocks and the outbox dispatcher.

Clock jobs (APScheduler through nonebot-plugin-apscheduler) wake every
CLOCK_TICK_SECONDS and derive their work from the database, so a restart or a long
downtime only delays them. The outbox dispatcher is a background task: it sends due
rows through a connected bot, paced (SEND_INTERVAL_SECONDS with jitter, at most
SEND_PER_MINUTE), and wakes early when a command has just queued a notice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import nonebot
from nonebot import get_driver, logger, require
from nonebot.adapters.onebot.v11 import Bot
from nonebot.plugin import PluginMetadata

from config import load_settings
from models.types import utcnow
from plugins._common.runtime import ShopRuntime, before_close, current_runtime
from services import aftersales, checkout, leases, outbox, shipping
from services.aftersales import TicketClockSettings
from services.clock import OrderClockSettings, run_order_clocks
from services.context import reload_drafts
from services.media import load_image
from services.tracking import ManualProvider, TrackingConfigError, TrackingProvider, make_provider

require("nonebot_plugin_apscheduler")
from nonebot_plugin_apscheduler import scheduler  # noqa: E402

__plugin_meta__ = PluginMetadata(
    name="店铺时钟与发件箱",
    description="超时取消、付款提醒、自动同意退款；主动消息按节奏发送，断线重启不丢",
    usage="无命令，自动运行",
)

driver = get_driver()
_dispatcher_task: asyncio.Task[None] | None = None
_tick_running = asyncio.Lock()
_lease_holder = leases.holder_name()
_holding_lease: bool | None = None  # None until the first tick: its outcome is logged either way


async def tick() -> None:
    """One run of every clock job; safe to run twice at the same moment."""
    try:
        async with _tick_running:
            await _tick()
    except asyncio.CancelledError:
        # The bot is shutting down mid-tick (the scheduler cancels its running jobs):
        # every job is idempotent and the next start catches up, so this is no error
        # worth a traceback in the log.
        logger.info("clocks: tick cancelled by shutdown; the next start catches up")


async def _tick() -> None:
    runtime = current_runtime()
    if runtime is None:
        return
    now = utcnow()
    # Each job on its own: one that fails (a bug, a broken row) must not stop the others
    # on every tick from then on. The failure is logged with its traceback. The lease is
    # renewed before each job, so a long one (a large tracking sweep) never outlives it.
    for job in (_order_clocks, _tracking_clocks, _ticket_clocks, _purge_summaries):
        if not await _hold_clock_lease(runtime, utcnow()):
            return
        try:
            await job(runtime, now)
        except Exception:
            logger.exception(
                f"clocks: {job.__name__} failed; the other jobs ran, it is retried next tick"
            )


async def _order_clocks(runtime: ShopRuntime, now: datetime) -> None:
    settings = runtime.settings
    report = await run_order_clocks(
        runtime.database,
        OrderClockSettings(settings.unpaid_timeout, settings.refund_auto_approve),
        now,
    )
    if report.expired or report.reminded or report.auto_approved:
        logger.info(
            f"clocks: expired {report.expired}, reminded {report.reminded}, auto-approved {report.auto_approved}"
        )
        runtime.shop.notices_committed.set()


async def _tracking_clocks(runtime: ShopRuntime, now: datetime) -> None:
    settings = runtime.settings
    polled = await shipping.poll_due(
        runtime.database, _provider(runtime), now, timedelta(minutes=settings.tracking_poll_minutes)
    )
    completed = await shipping.auto_confirm_due(
        runtime.database,
        now,
        timedelta(days=settings.auto_confirm_days),
        timedelta(days=settings.auto_confirm_days_after_ship),
    )
    if polled.failures:
        logger.warning(
            f"tracking: {len(polled.failures)} shipments could not be polled: {polled.failures[:10]}"
        )
    if polled.new_events or polled.delivered or completed:
        logger.info(
            f"tracking: {polled.new_events} new events, delivered {polled.delivered}, auto-completed {completed}"
        )
        runtime.shop.notices_committed.set()


async def _ticket_clocks(runtime: ShopRuntime, now: datetime) -> None:
    settings = runtime.settings
    tickets = await aftersales.run_ticket_clocks(
        runtime.database,
        runtime.access.owners,
        TicketClockSettings(
            timedelta(hours=settings.ticket_remind_hours),
            timedelta(hours=settings.ticket_escalate_hours),
        ),
        now,
    )
    if tickets.reminded or tickets.escalated or tickets.expired_returns:
        logger.info(
            f"tickets: reminded {tickets.reminded}, escalated {tickets.escalated}, returns closed {tickets.expired_returns}"
        )
        runtime.shop.notices_committed.set()


async def _purge_summaries(runtime: ShopRuntime, now: datetime) -> None:
    async with runtime.database.write() as session:
        purged = await checkout.purge_expired(session, now)
    if purged:
        await reload_drafts(runtime.shop)


async def _hold_clock_lease(runtime: ShopRuntime, now: datetime) -> bool:
    """Takes or renews the clocks' lease: of several bot processes sharing the database,
    one runs the clocks. Logs only when this process gains or loses it."""
    global _holding_lease
    length = leases.lease_length(timedelta(seconds=runtime.settings.clock_tick_seconds))
    async with runtime.database.write() as session:
        held = await leases.acquire(session, leases.CLOCKS, _lease_holder, now, length)
    if held != _holding_lease:
        if held:
            logger.info(f"clocks: this process ({_lease_holder}) runs the shop's clocks")
        else:
            logger.info("clocks: another bot process runs the shop's clocks; this one stands by")
    _holding_lease = held
    return held


_providers: dict[str, TrackingProvider] = {}


def _provider(runtime: ShopRuntime) -> TrackingProvider:
    """TRACKING_PROVIDER, built once; a misconfigured kuaidi100 falls back to manual
    (logged) rather than stopping the other clocks."""
    settings = runtime.settings
    name = settings.tracking_provider
    if name not in _providers:
        try:
            _providers[name] = make_provider(
                name,
                customer=settings.kuaidi100_customer,
                key=settings.kuaidi100_key,
                url=settings.kuaidi100_query_url,
            )
        except TrackingConfigError as error:
            logger.error(
                f"TRACKING_PROVIDER={name} is not usable ({error}); tracking falls back to manual updates"
            )
            _providers[name] = ManualProvider()
    return _providers[name]


def _connected_bot() -> Bot | None:
    for bot in nonebot.get_bots().values():
        if isinstance(bot, Bot):
            return bot
    return None


def _materialise(segments: list[dict[str, Any]], runtime: ShopRuntime) -> list[dict[str, Any]]:
    """Stored images travel as base64 (works when the OneBot implementation runs on
    another machine than the bot)."""
    out = []
    for segment in segments:
        path = segment.get("data", {}).get("data_path") if segment.get("type") == "image" else None
        if path is None:
            out.append(segment)
            continue
        data = load_image(path, runtime.shop.data_dir)
        if data is not None:
            out.append(
                {"type": "image", "data": {"file": "base64://" + base64.b64encode(data).decode()}}
            )
    return out


async def dispatch_once(
    runtime: ShopRuntime, pacer: outbox.Pacer, bot: Bot | None, *, batch: int = 20
) -> int:
    """Sends up to `batch` due rows (paced); returns how many were sent. Each row is
    claimed just before its own send, never a batch ahead: a claim runs out after
    outbox.CLAIM_SECONDS, and another process must not find a row still waiting here
    behind the pacing and send it too."""
    sent = 0
    for _ in range(batch):
        async with runtime.database.write() as session:
            claimed = await outbox.claim_due(session, utcnow(), 1)
        if not claimed:
            break
        [message] = claimed
        if bot is None:
            async with runtime.database.write() as session:
                await outbox.release_unsent(session, message, utcnow())
            break
        wait = pacer.wait_time(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        params: dict[str, Any] = {"message": _materialise(outbox.decode(message), runtime)}
        # The dedicated actions (not send_msg, which direct replies use) keep the shop's own
        # notices distinguishable from answers in OneBot logs and in the simulator.
        if message.target_type == outbox.TargetKind.GROUP:
            action = "send_group_msg"
            params["group_id"] = message.target_id
        else:
            action = "send_private_msg"
            params["user_id"] = message.target_id
        try:
            await bot.call_api(action, **params)
        except Exception as error:  # the adapter raises many kinds; every one means "retry"
            pacer.record(time.monotonic())
            async with runtime.database.write() as session:
                gave_up = await outbox.mark_failed(session, message, repr(error), utcnow())
            if gave_up:
                logger.error(
                    f"outbox {message.id} to {message.target_type} {message.target_id} given up: {error!r}"
                )
            continue
        pacer.record(time.monotonic())
        async with runtime.database.write() as session:
            await outbox.mark_sent(session, message.id or 0, utcnow())
        sent += 1
    return sent


async def _dispatcher_loop() -> None:
    pacer: outbox.Pacer | None = None
    while True:
        runtime = current_runtime()
        if runtime is None:
            await asyncio.sleep(1)
            continue
        if pacer is None:
            pacer = outbox.Pacer(
                runtime.settings.send_interval_seconds, runtime.settings.send_per_minute
            )
        try:
            sent = await dispatch_once(runtime, pacer, _connected_bot())
        except Exception:
            logger.exception("outbox dispatcher failed; retrying")
            sent = 0
        if sent:
            continue  # more may be due right away
        runtime.shop.notices_committed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                runtime.shop.notices_committed.wait(),
                timeout=min(runtime.settings.clock_tick_seconds, 5.0),
            )


@driver.on_startup
async def _start_clocks() -> None:
    global _dispatcher_task
    # A first run right after start-up catches up on whatever fell due while the bot was down.
    scheduler.add_job(
        tick,
        "interval",
        seconds=load_settings().clock_tick_seconds,
        id="shop_clocks",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC) + timedelta(seconds=1),
    )
    _dispatcher_task = asyncio.create_task(_dispatcher_loop())


async def _stop_clocks() -> None:
    """Before the database closes: no new ticks, let a running one finish, stop sending."""
    global _dispatcher_task
    with contextlib.suppress(Exception):
        scheduler.remove_job("shop_clocks")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            async with _tick_running:
                pass
    if _dispatcher_task is not None:
        _dispatcher_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await _dispatcher_task
        _dispatcher_task = None
    for provider in _providers.values():
        with contextlib.suppress(Exception):
            await provider.aclose()
    await _release_clock_lease()


async def _release_clock_lease() -> None:
    """So that another process takes the clocks over at its next tick, not after the
    lease runs out."""
    global _holding_lease
    runtime = current_runtime()
    if runtime is None or not _holding_lease:
        return
    try:
        async with runtime.database.write() as session:
            await leases.release(session, leases.CLOCKS, _lease_holder, utcnow())
    except Exception as error:  # the lease simply runs out instead
        logger.warning(f"clocks: could not release the lease: {error}")
    _holding_lease = False


before_close(_stop_clocks)
