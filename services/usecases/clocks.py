"""The shop's clock jobs, one use case each. Every job finds its work in the database (so
it catches up after downtime), owns its transactions, queues its own notices and is
idempotent: a second run at the same moment, or in a second process, does nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from config import PaymentProvider
from services import aftersales, checkout, leases, notices, shipping
from services.aftersales import TicketClockReport, TicketClockSettings
from services.clock import ClockReport, OrderClockSettings, run_order_clocks
from services.context import ShopContext, reload_drafts
from services.reports import DailyReport
from services.tracking import FailureKind, TrackingConfigError, TrackingProvider, make_provider
from services.usecases.epay import ReconcileReport, reconcile
from services.usecases.reports import send_daily_report


async def order_clocks(shop: ShopContext, now: datetime) -> ClockReport:
    """Unpaid orders expire (stock released), a reminder at half-time, undecided
    cancellation requests of paid orders approved after REFUND_AUTO_APPROVE_HOURS."""
    settings = shop.settings
    return await run_order_clocks(
        shop.database,
        OrderClockSettings(settings.unpaid_timeout, settings.refund_auto_approve),
        now,
    )


@dataclass(frozen=True)
class TrackingClockReport:
    polled: shipping.PollReport
    auto_completed: list[str]
    # TRACKING_PROVIDER names a provider that cannot be built (kuaidi100 without its
    # settings), so `provider` is the manual stand-in: why, as staff were told.
    unusable: str = ""


async def tracking_clocks(
    shop: ShopContext, provider: TrackingProvider, now: datetime
) -> TrackingClockReport:
    """Shipments due for a poll are asked about (new events stored once and pushed; staff
    told privately of parcels going back and of a failing provider), and delivered or
    long-shipped orders are confirmed received."""
    settings = shop.settings
    alerts = shipping.StaffAlerts(shop.owners, settings.timezone)
    unusable = await _tell_unusable_provider(shop, provider, alerts, now)
    polled = await shipping.poll_due(
        shop.database,
        provider,
        now,
        timedelta(minutes=settings.tracking_poll_minutes),
        alerts=alerts,
    )
    completed = await shipping.auto_confirm_due(
        shop.database,
        now,
        timedelta(days=settings.auto_confirm_days),
        timedelta(days=settings.auto_confirm_days_after_ship),
    )
    return TrackingClockReport(polled, completed, unusable)


async def _tell_unusable_provider(
    shop: ShopContext, provider: TrackingProvider, alerts: shipping.StaffAlerts, now: datetime
) -> str:
    """The clock plugin stands the manual provider in for a TRACKING_PROVIDER it could not
    build (its settings are missing): nothing is polled then, so staff must hear why, once
    a day like any failure of the settings. Returns the reason ("" when all is well)."""
    settings = shop.settings
    if provider.name != "manual" or settings.tracking_provider == "manual":
        return ""
    try:
        built = make_provider(
            settings.tracking_provider,
            customer=settings.kuaidi100_customer,
            key=settings.kuaidi100_key,
            url=settings.kuaidi100_query_url,
        )
    except TrackingConfigError as error:
        body = notices.tracking_settings_failed_for_staff(FailureKind.CONFIG, error.message)
        async with shop.database.write() as session:
            await shipping.tell_provider_failure(
                session, shop.shop_id, alerts, FailureKind.CONFIG, body, now
            )
        return error.message
    await built.aclose()  # a usable provider the caller chose not to use: nothing to tell
    return ""


async def ticket_clocks(shop: ShopContext, now: datetime) -> TicketClockReport:
    """Staff reminded of old tickets, the owner told later, unreturned returns closed."""
    settings = shop.settings
    return await aftersales.run_ticket_clocks(
        shop.database,
        shop.owners,
        TicketClockSettings(
            timedelta(hours=settings.ticket_remind_hours),
            timedelta(hours=settings.ticket_escalate_hours),
        ),
        now,
    )


async def reconcile_payments(shop: ShopContext, now: datetime) -> ReconcileReport | None:
    """Payments the EPay gateway took that no notify told us about (lost, or no public
    URL): live attempts due for a check are asked about, and a paid one is recorded
    exactly as its notify would have been. None when there is no gateway to ask
    (PAYMENT_PROVIDER=manual)."""
    gateway = shop.payment_gateway
    if gateway is None or shop.settings.payment_provider is not PaymentProvider.EPAY:
        return None
    return await reconcile(shop, gateway, now)


async def daily_report(shop: ShopContext, now: datetime) -> DailyReport | None:
    """The owners' daily report once DAILY_REPORT_TIME has passed, once per day
    (services/usecases/reports.py); None when nothing was due."""
    return await send_daily_report(shop, now)


async def purge_summaries(shop: ShopContext, now: datetime) -> int:
    """Order summaries nobody confirmed in time go, and the draft index with them."""
    async with shop.database.write() as session:
        purged = await checkout.purge_expired(session, now)
    if purged:
        await reload_drafts(shop)
    return purged


async def hold_clock_lease(shop: ShopContext, holder: str, now: datetime) -> bool:
    """Takes or renews the clocks' lease: of several bot processes sharing the database,
    one runs the clocks."""
    length = leases.lease_length(timedelta(seconds=shop.settings.clock_tick_seconds))
    async with shop.database.write() as session:
        return await leases.acquire(session, leases.CLOCKS, holder, now, length)


async def release_clock_lease(shop: ShopContext, holder: str, now: datetime) -> None:
    """At shutdown, so another process takes the clocks over at its next tick."""
    async with shop.database.write() as session:
        await leases.release(session, leases.CLOCKS, holder, now)
