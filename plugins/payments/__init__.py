"""The payment gateway's door: EPay (易支付) notifies arrive over HTTP on NoneBot's own
FastAPI app, at `/pay/epay/notify` (GET query or POST form). Each is handed to one use
case (services.usecases.epay.handle_notify); the answer is the plain text `success` or
`fail`, and one log line says which payment and what happened, never the signature or
the key. No cookies, no session: only the signed fields count.

The shop's EPay gateway client belongs to the shop (`ShopContext.payment_gateway`, built
by `open_shop` from the settings); `epay_gateway()` reads it."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from typing import Any

# FastAPI is NoneBot's driver here (bot.py); imported at module level because FastAPI
# resolves the endpoints' (postponed) annotations in this module's namespace.
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from nonebot import get_driver, logger
from nonebot.drivers import ASGIMixin
from nonebot.plugin import PluginMetadata

from config import PaymentProvider, load_settings
from plugins._common.runtime import current_runtime
from services.context import EPAY_NOTIFY_PATH, EPAY_RETURN_PATH
from services.epay import EpayGateway
from services.usecases.epay import CheckResult, PaymentCheck, handle_notify

__plugin_meta__ = PluginMetadata(
    name="支付回调",
    description="易支付（EPay）付款通知：验签后自动确认收款，异常付款提醒店员",
    usage="无命令",
)

NOTIFY_PATH = EPAY_NOTIFY_PATH
RETURN_PATH = EPAY_RETURN_PATH  # the page the payer's browser comes back to
MAX_NOTIFY_BYTES = 16 * 1024  # a notify is a dozen short fields
RETURN_PAGE_TEXT = "付款结果以 QQ 里的通知为准，请回到 QQ 查看订单。"

driver = get_driver()


# --- the gateway client ----------------------------------------------------------------


def epay_gateway() -> EpayGateway | None:
    """The running shop's EPay gateway client (built by `open_shop`, closed by
    `close_shop`), or None when PAYMENT_PROVIDER is not epay, no gateway is configured
    (a demo before its fake gateway runs), or the shop is not running."""
    runtime = current_runtime()
    if runtime is None or runtime.settings.payment_provider is not PaymentProvider.EPAY:
        return None
    return runtime.shop.payment_gateway


async def _close_gateway() -> None:
    """Drops the gateway client's pooled connections (it reconnects on next use); the
    shop closes it for good at shutdown (services.context.close_shop)."""
    gateway = epay_gateway()
    if gateway is not None:
        with contextlib.suppress(Exception):
            await gateway.aclose()


# --- the demo's gateway ----------------------------------------------------------------

# `tools.fake_epay.FakeEpay` while the demo runs one in this process.
_demo_gateway: Any = None


def _start_demo_gateway() -> None:
    """A demo shop set to epay with no gateway (`PAYMENT_PROVIDER=epay ./run demo`): the
    fake gateway of tools/fake_epay.py serves on 127.0.0.1 in this process and NoneBot's
    config points EPAY_API_URL, EPAY_PID and EPAY_KEY at it, so the shop opens with a
    gateway and a newcomer can pay a demo order (simulator: `:pay <订单号>`). Done when
    this plugin is imported, not in a start-up hook: NoneBot runs start-up hooks in
    plugin load order, which is not fixed, and the router's hook opens the shop with
    the settings as they are then."""
    global _demo_gateway
    try:
        settings = load_settings()
    except Exception:
        return  # the router's start-up names the bad setting
    if not settings.epay_demo_gateway:
        return
    from tools.fake_epay import FakeEpay

    fake = FakeEpay()
    url = fake.start()
    for name, value in (("epay_api_url", url), ("epay_pid", fake.pid), ("epay_key", fake.key)):
        setattr(driver.config, name, value)
    _demo_gateway = fake
    logger.info(
        f"demo: a fake EPay gateway serves at {url} (pid {fake.pid}); after /付款 <订单号>, "
        "type :pay <订单号> in the simulator to pay"
    )


async def _stop_demo_gateway() -> None:
    global _demo_gateway
    fake, _demo_gateway = _demo_gateway, None
    if fake is not None:
        await asyncio.to_thread(fake.stop)  # waits for its serve loop: not on the event loop


_start_demo_gateway()
driver.on_shutdown(_stop_demo_gateway)


# --- the notify endpoint ---------------------------------------------------------------


def _log_line(check: PaymentCheck) -> str:
    what = f"epay notify {check.out_trade_no!r}"
    if check.order_code:
        what += f" (order {check.order_code})"
    outcome = check.result.value + (f": {check.alert.value}" if check.alert else "")
    if check.revived:
        outcome += " (order revived)"
    return f"{what}: {outcome} -> {check.answer}"


def _register_routes() -> None:
    if not isinstance(driver, ASGIMixin) or not isinstance(driver.server_app, FastAPI):
        logger.warning("payments: the driver is not FastAPI; the EPay notify URL is not served")
        return
    app = driver.server_app

    async def epay_notify(request: Request) -> PlainTextResponse:
        params = dict(request.query_params)
        if request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_NOTIFY_BYTES:
                    logger.warning("epay notify refused: body too large")
                    return PlainTextResponse("fail", status_code=413)
            form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update(form)
        runtime = current_runtime()
        if runtime is None:
            logger.warning("epay notify before the shop is ready: fail (the gateway retries)")
            return PlainTextResponse("fail", status_code=503)
        try:
            check = await handle_notify(runtime.shop, params)
        except Exception:
            logger.exception(
                f"epay notify {params.get('out_trade_no', '')[:64]!r}: error -> fail (the gateway retries)"
            )
            return PlainTextResponse("fail", status_code=500)
        if check.result is CheckResult.REJECTED or check.alert is not None:
            logger.warning(_log_line(check))
        else:
            logger.info(_log_line(check))
        return PlainTextResponse(check.answer)

    async def epay_return() -> PlainTextResponse:
        return PlainTextResponse(RETURN_PAGE_TEXT)

    app.add_api_route(NOTIFY_PATH, epay_notify, methods=["GET", "POST"], include_in_schema=False)
    app.add_api_route(RETURN_PATH, epay_return, methods=["GET"], include_in_schema=False)


_register_routes()
