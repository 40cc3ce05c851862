"""The shop's clocks and the outbox dispatcher.

Clock jobs (APScheduler through nonebot-plugin-apscheduler) wake every
CLOCK_TICK_SECONDS and derive their work from the database, so a restart or a long
downtime only delays them. The outbox dispatcher is a background task: it sends due
rows through the connected QQ accounts, each row through an account that can reach its
target (in that group, or the one the customer talked to; services/accounts.py), paced
per account (SEND_INTERVAL_SECONDS with jitter, at most SEND_PER_MINUTE), and wakes early
when a command has just queued a notice. It also reads each new connection's group
list and heartbeats the connected accounts for the other bot processes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import nonebot
from nonebot import get_driver, logger, require
from nonebot.adapters.onebot.v11 import Bot
from nonebot.plugin import PluginMetadata

from config import load_settings
from models.types import utcnow
from plugins._common.runtime import ShopRuntime, before_close, current_runtime
from services import leases
from services.accounts import GROUP_LIST_REFRESH_SECONDS
from services.outbox import Segment, Target, TargetKind, request_flag
from services.tracking import ManualProvider, TrackingConfigError, TrackingProvider, make_provider
from services.usecases import accounts as accounts_usecases
from services.usecases import clocks
from services.usecases.delivery import (
    Account,
    Pacer,
    Sender,
    dispatch_accounts,
    pacer_for,
    wait_for_notices,
)

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
    # Reconciliation last: a slow or unreachable gateway delays no other job.
    jobs = (
        _order_clocks,
        _tracking_clocks,
        _ticket_clocks,
        _purge_summaries,
        _daily_report,
        _reconcile_payments,
    )
    for job in jobs:
        if not await _hold_clock_lease(runtime, utcnow()):
            return
        try:
            await job(runtime, now)
        except Exception:
            logger.exception(
                f"clocks: {job.__name__} failed; the other jobs ran, it is retried next tick"
            )


async def _order_clocks(runtime: ShopRuntime, now: datetime) -> None:
    report = await clocks.order_clocks(runtime.shop, now)
    if report.expired or report.reminded or report.auto_approved:
        logger.info(
            f"clocks: expired {report.expired}, reminded {report.reminded}, "
            f"auto-approved {report.auto_approved}"
        )


async def _tracking_clocks(runtime: ShopRuntime, now: datetime) -> None:
    report = await clocks.tracking_clocks(runtime.shop, _provider(runtime), now)
    polled = report.polled
    if report.unusable:
        logger.warning(f"tracking: provider unusable ({report.unusable}); staff alerted once a day")
    if polled.failures:
        # Staff hear of these through the outbox (services.shipping: once per kind and day,
        # a rejected shipment once); the log keeps every sweep's detail.
        logger.warning(
            f"tracking: {len(polled.failures)} shipments could not be polled: {polled.failures[:10]}"
            + (f"; staff alerts: {sorted(set(polled.alerts))}" if polled.alerts else "")
        )
    if polled.coming_back:
        logger.info(f"tracking: parcels going back (staff told once): {polled.coming_back[:10]}")
    if polled.new_events or polled.delivered or report.auto_completed:
        logger.info(
            f"tracking: {polled.new_events} new events, delivered {polled.delivered}, "
            f"auto-completed {report.auto_completed}"
        )


async def _ticket_clocks(runtime: ShopRuntime, now: datetime) -> None:
    tickets = await clocks.ticket_clocks(runtime.shop, now)
    if tickets.reminded or tickets.escalated or tickets.expired_returns:
        logger.info(
            f"tickets: reminded {tickets.reminded}, escalated {tickets.escalated}, "
            f"returns closed {tickets.expired_returns}"
        )


async def _purge_summaries(runtime: ShopRuntime, now: datetime) -> None:
    await clocks.purge_summaries(runtime.shop, now)


async def _daily_report(runtime: ShopRuntime, now: datetime) -> None:
    report = await clocks.daily_report(runtime.shop, now)
    if report is not None:
        logger.info(f"clocks: daily report of {report.day} queued for the owners")


async def _reconcile_payments(runtime: ShopRuntime, now: datetime) -> None:
    report = await clocks.reconcile_payments(runtime.shop, now)
    if report is None or not report.checks:
        return
    # Counts and order codes only: never a gateway URL (api.php URLs carry the key).
    counts = (
        f"payments: asked the gateway about {len(report.checks)}: "
        f"recorded {[c.order_code for c in report.recorded]}, "
        f"staff alerted {[c.order_code for c in report.alerts]}, "
        f"expired {len(report.expired)}, unreachable {len(report.unreachable)}"
    )
    if report.unreachable:
        logger.warning(counts)
    else:
        logger.info(counts)


async def _hold_clock_lease(runtime: ShopRuntime, now: datetime) -> bool:
    """Logs only when this process gains or loses the clocks' lease."""
    global _holding_lease
    held = await clocks.hold_clock_lease(runtime.shop, _lease_holder, now)
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


def _account_id(bot: Bot) -> int:
    """The QQ number of a connection (OneBot self_id)."""
    return int(bot.self_id) if str(bot.self_id).isdigit() else 0


def _connected_bots() -> dict[int, Bot]:
    """Every connected QQ account of this process, by QQ number."""
    return {_account_id(bot): bot for bot in nonebot.get_bots().values() if isinstance(bot, Bot)}


def _bot_sender(bot: Bot) -> Sender:
    async def send(target: Target, segments: list[Segment]) -> None:
        # The dedicated actions (not send_msg, which direct replies use) keep the shop's own
        # notices distinguishable from answers in OneBot logs and in the simulator.
        if target.kind is TargetKind.FRIEND_REQUEST:
            flag = request_flag(segments)
            await bot.call_api("set_friend_add_request", flag=flag, approve=True)
        elif target.kind is TargetKind.GROUP:
            await bot.call_api("send_group_msg", group_id=target.id, message=segments)
        else:
            await bot.call_api("send_private_msg", user_id=target.id, message=segments)

    return send


def _given_up(message_id: int, target: Target, error: str) -> None:
    logger.error(f"outbox {message_id} to {target.kind} {target.id} given up: {error}")


async def dispatch_bots(
    runtime: ShopRuntime, bots: Mapping[int, Bot], pacers: dict[int, Pacer], *, batch: int = 20
) -> int:
    """Sends up to `batch` due rows, each through the connected account that can reach
    its target, paced per account (`pacers` keeps each account's pacing between calls)."""
    accounts = [
        Account(
            account_id, _bot_sender(bot), pacers.setdefault(account_id, pacer_for(runtime.shop))
        )
        for account_id, bot in bots.items()
    ]
    return await dispatch_accounts(runtime.shop, accounts, batch=batch, on_given_up=_given_up)


async def dispatch_once(
    runtime: ShopRuntime, pacer: Pacer, bot: Bot | None, *, batch: int = 20
) -> int:
    """Sends up to `batch` due rows through `bot` (None: no QQ account connected)."""
    bots = {} if bot is None else {_account_id(bot): bot}
    pacers = {} if bot is None else {_account_id(bot): pacer}
    return await dispatch_bots(runtime, bots, pacers, batch=batch)


async def account_connected(runtime: ShopRuntime, bot: Bot, *, again: bool = False) -> None:
    """A new connection (or `again`, every GROUP_LIST_REFRESH_SECONDS): the account is
    present, and in the groups its OneBot implementation lists (a failed list keeps what
    was learned before)."""
    account_id = _account_id(bot)
    group_ids: list[int] | None
    try:
        groups = await bot.call_api("get_group_list")
        group_ids = [int(group["group_id"]) for group in groups or []]
    except Exception as error:  # the notices still go out, routed by what is known
        logger.warning(f"outbox: the group list of {account_id} could not be read: {error!r}")
        group_ids = None
    await accounts_usecases.account_connected(runtime.shop, account_id, group_ids)
    if group_ids is not None and not again:
        logger.info(f"outbox: account {account_id} connected, in {len(group_ids)} groups")


async def _dispatcher_loop() -> None:
    pacers: dict[int, Pacer] = {}
    known: dict[int, Bot] = {}  # connections whose group list was read
    listed_at: dict[int, float] = {}  # when (monotonic) each one's list was read
    while True:
        runtime = current_runtime()
        if runtime is None:
            await asyncio.sleep(1)
            continue
        try:
            bots = _connected_bots()
            # Learned here rather than in an on_bot_connect hook: before this account's
            # first dispatch round, and never concurrently with it.
            for account_id, bot in bots.items():
                if known.get(account_id) is not bot:
                    await account_connected(runtime, bot)
                    known[account_id] = bot
                    listed_at[account_id] = time.monotonic()
                elif time.monotonic() - listed_at[account_id] >= GROUP_LIST_REFRESH_SECONDS:
                    # Groups joined or left since (an account removed from a group must
                    # stop being the one that answers there).
                    await account_connected(runtime, bot, again=True)
                    listed_at[account_id] = time.monotonic()
            for account_id in set(known) - set(bots):
                del known[account_id]
                # Where it answered in groups, the next present account answers now.
                # (Not a disconnect hook: NoneBot runs those in its lifespan's task group.)
                accounts_usecases.account_lost(runtime.shop, account_id)
                logger.info(f"outbox: account {account_id} disconnected")
            sent = await dispatch_bots(runtime, bots, pacers)
        except Exception:
            logger.exception("outbox dispatcher failed; retrying")
            sent = 0
        if sent:
            continue  # more may be due right away
        await wait_for_notices(runtime.shop)


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
    await _withdraw_presence()


async def _withdraw_presence() -> None:
    """After the dispatcher stopped (no heartbeat follows): other processes take this
    one's accounts over within a minute, not after outbox.ACCOUNT_GONE_SECONDS."""
    runtime = current_runtime()
    if runtime is None:
        return
    try:
        gone = await accounts_usecases.leaving(runtime.shop)
    except Exception as error:  # their presence simply runs out instead
        logger.warning(f"outbox: could not withdraw the accounts' presence: {error}")
        return
    if gone:
        logger.info(f"outbox: withdrew the presence of {gone} account(s)")


async def _release_clock_lease() -> None:
    """So that another process takes the clocks over at its next tick, not after the
    lease runs out."""
    global _holding_lease
    runtime = current_runtime()
    if runtime is None or not _holding_lease:
        return
    try:
        await clocks.release_clock_lease(runtime.shop, _lease_holder, utcnow())
    except Exception as error:  # the lease simply runs out instead
        logger.warning(f"clocks: could not release the lease: {error}")
    _holding_lease = False


before_close(_stop_clocks)
