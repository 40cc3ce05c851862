"""The payment gateway's door: EPay (易支付) notifies arrive over HTTP on NoneBot's own
FastAPI app, at `/pay/epay/notify` (GET query or POST form). Each is handed to one use
case (services.usecases.epay.handle_notify); the answer is the plain text `success` or
`fail`, and one log line says which payment and what happened, never the signature or
the key. No cookies, no session: only the signed fields count.

It also keeps the shop's one EPay gateway client (`epay_gateway()`), built on first use
from the settings and closed at shutdown, for /付款, /对账 and the reconciliation clock."""

from __future__ import annotations

import contextlib
import urllib.parse

# FastAPI is NoneBot's driver here (bot.py); imported at module level because FastAPI
# resolves the endpoints' (postponed) annotations in this module's namespace.
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from nonebot import get_driver, logger
from nonebot.drivers import ASGIMixin
from nonebot.plugin import PluginMetadata

from config import PaymentProvider, ShopSettings
from plugins._common.runtime import before_close, current_runtime
from services.epay import EpayGateway
from services.usecases.epay import CheckResult, PaymentCheck, handle_notify

__plugin_meta__ = PluginMetadata(
    name="支付回调",
    description="易支付（EPay）付款通知：验签后自动确认收款，异常付款提醒店员",
    usage="无命令",
)

NOTIFY_PATH = "/pay/epay/notify"
RETURN_PATH = "/pay/epay/return"  # the page the payer's browser comes back to
MAX_NOTIFY_BYTES = 16 * 1024  # a notify is a dozen short fields
RETURN_PAGE_TEXT = "付款结果以 QQ 里的通知为准，请回到 QQ 查看订单。"

driver = get_driver()


# --- the gateway client ----------------------------------------------------------------

_gateway: EpayGateway | None = None
_gateway_settings: ShopSettings | None = None
_retired: list[EpayGateway] = []  # replaced after a settings change; closed at shutdown


def _bot_base_url(settings: ShopSettings) -> str:
    """Where the gateway reaches this bot: PUBLIC_BASE_URL, else the address NoneBot
    listens on (only a gateway on this machine, the demo's fake, can reach that; a real
    one then never notifies and reconciliation finds the payments)."""
    if settings.public_base_url:
        return settings.public_base_url
    host = str(driver.config.host)
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{driver.config.port}"


def epay_gateway() -> EpayGateway | None:
    """The shop's EPay gateway client, or None when PAYMENT_PROVIDER is not epay, no gateway
    is configured (a demo), or the shop is not running."""
    global _gateway, _gateway_settings
    runtime = current_runtime()
    if runtime is None:
        return None
    settings = runtime.settings
    if settings.payment_provider is not PaymentProvider.EPAY or not settings.epay_api_url:
        return None
    if _gateway is None or _gateway_settings is not settings:
        if _gateway is not None:
            _retired.append(_gateway)
        base = _bot_base_url(settings)
        _gateway = EpayGateway(
            settings.epay_api_url,
            settings.epay_pid,
            settings.epay_key.get_secret_value(),
            notify_url=base + NOTIFY_PATH,
            return_url=base + RETURN_PATH,
        )
        _gateway_settings = settings
    return _gateway


async def _close_gateway() -> None:
    global _gateway, _gateway_settings
    gateways = [*_retired, *([_gateway] if _gateway is not None else [])]
    _gateway, _gateway_settings = None, None
    _retired.clear()
    for gateway in gateways:
        with contextlib.suppress(Exception):
            await gateway.aclose()


before_close(_close_gateway)


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
