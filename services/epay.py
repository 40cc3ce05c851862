"""The EPay (易支付) protocol: signing, money format, and the gateway client.

EPay-compatible aggregators (彩虹易支付 and its forks) share one protocol: a merchant id
(`pid`), a key, and a base URL under which `mapi.php` creates a payment and `api.php`
answers queries. Signing: drop `sign`, `sign_type` and empty values, sort the keys by
ASCII, join `k=v` with `&` (raw, not URL-encoded), append the key, MD5, lower-case hex.

The key travels in `api.php` query URLs, so no URL of this module is ever logged, and
httpx's own request log line (INFO, logger "httpx") has its `key=` value masked here."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from models.tables import PayType

from .errors import PaymentGatewayError
from .http import KeptClient

# How people name the methods (/付款 <订单号> 支付宝); the chat door parses and shows these.
PAY_TYPE_NAMES: dict[PayType, str] = {
    PayType.ALIPAY: "支付宝",
    PayType.WXPAY: "微信",
    PayType.QQPAY: "QQ",
}

SIGN_TYPE = "MD5"
TRADE_SUCCESS = "TRADE_SUCCESS"  # the only trade_status that means paid
_UNSIGNED_FIELDS = frozenset({"sign", "sign_type"})


# --- signing ---------------------------------------------------------------------------


def signing_string(params: Mapping[str, str]) -> str:
    """`k=v&k=v` of the signed fields, sorted by key (ASCII), raw."""
    fields = sorted(
        (key, str(value))
        for key, value in params.items()
        if key not in _UNSIGNED_FIELDS and value is not None and str(value) != ""
    )
    return "&".join(f"{key}={value}" for key, value in fields)


def sign(params: Mapping[str, str], key: str) -> str:
    """The MD5 signature (lower-case hex) of `params` with the merchant key."""
    return hashlib.md5((signing_string(params) + key).encode("utf-8")).hexdigest()


def verify(params: Mapping[str, str], key: str, pid: str) -> bool:
    """Whether `params` (a notify) come from our gateway: our pid, an MD5 sign type (when
    given) and a signature that matches, compared in constant time."""
    given = params.get("sign")
    if not key or not given or str(params.get("pid", "")) != str(pid):
        return False
    if params.get("sign_type", SIGN_TYPE).upper() != SIGN_TYPE:
        return False
    expected = sign(params, key)
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


# --- money -----------------------------------------------------------------------------

_MONEY = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")


def fen_to_money(fen: int) -> str:
    """1000 -> "10.00", the gateway's money format."""
    if fen < 0:
        raise ValueError("negative amount")
    return f"{fen // 100}.{fen % 100:02d}"


def money_to_fen(money: str) -> int:
    """The gateway's money as fen: "10.00", "10.0" or "10" -> 1000. Anything else (more
    decimals, signs, exponents, blanks) raises ValueError."""
    text = money.strip()
    if _MONEY.fullmatch(text) is None:
        raise ValueError(f"malformed money {money!r}")
    return int(Decimal(text) * 100)


def money_matches(money: str, fen: int) -> bool:
    """Whether the gateway's `money` is exactly `fen`, compared as decimals ("10.0" is
    1000 fen; "10.001" is not)."""
    try:
        value = Decimal(money.strip())
    except (InvalidOperation, AttributeError):
        return False
    return value.is_finite() and value == Decimal(fen) / 100


# --- the gateway client ----------------------------------------------------------------


@dataclass(frozen=True)
class CreatedPayment:
    """What mapi.php answered: at least one of the three ways to pay."""

    payurl: str = ""
    qrcode: str = ""
    urlscheme: str = ""
    trade_no: str | None = None

    @property
    def link(self) -> str:
        """What the customer opens."""
        return self.payurl or self.urlscheme or self.qrcode

    @property
    def qr_text(self) -> str:
        """What the QR code encodes: the gateway's QR content, else the link."""
        return self.qrcode or self.payurl or self.urlscheme


@dataclass(frozen=True)
class QueryResult:
    paid: bool
    trade_no: str | None
    money: str  # as the gateway wrote it; compare with `money_matches`
    type: str

    @property
    def money_fen(self) -> int | None:
        try:
            return money_to_fen(self.money)
        except ValueError:
            return None


class _MaskKeyInUrls(logging.Filter):
    """httpx logs every request URL at INFO; api.php URLs carry the key."""

    _KEY = re.compile(r"([?&]key=)[^&\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "key=" in message:
            record.msg = self._KEY.sub(r"\1***", message)
            record.args = ()
        return True


def _mask_httpx_urls() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskKeyInUrls) for f in httpx_logger.filters):
        httpx_logger.addFilter(_MaskKeyInUrls())


_mask_httpx_urls()


class EpayGateway:
    """One merchant account at an EPay gateway. Keeps one httpx client (building one
    costs more than a request) until `aclose`.

    `notify_url`/`return_url` are where this shop wants the gateway to send notifies and
    the payer; callers pass them to `create` (they depend on PUBLIC_BASE_URL)."""

    def __init__(
        self,
        api_url: str,
        pid: str,
        key: str,
        *,
        notify_url: str = "",
        return_url: str = "",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.pid = pid
        self._key = key
        self.notify_url = notify_url
        self.return_url = return_url
        self.timeout = timeout
        self.transport = transport
        self._http = KeptClient(timeout, transport)

    def __repr__(self) -> str:  # never the key
        return f"EpayGateway(api_url={self.api_url!r}, pid={self.pid!r})"

    @property
    def key(self) -> str:
        """The merchant key, for verifying notifies."""
        return self._key

    async def aclose(self) -> None:
        await self._http.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One request; the answer's JSON object. Network trouble, HTTP errors and bodies
        that are not a JSON object are PaymentGatewayError with an empty reason."""
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._http.get().request(method, self.api_url + path, **kwargs)
                body = response.content
        except Exception as error:
            # str(error) of some httpx errors holds the URL (and so the key): scrubbed.
            raise PaymentGatewayError(
                "", self._scrub(f"{path}: {type(error).__name__}: {error}")
            ) from None
        if response.status_code != 200:
            raise PaymentGatewayError("", f"{path}: HTTP {response.status_code}")
        try:
            payload = json.loads(body)
        except ValueError:
            raise PaymentGatewayError("", f"{path}: the answer is not JSON") from None
        if not isinstance(payload, dict):
            raise PaymentGatewayError("", f"{path}: the answer is not a JSON object")
        return payload

    @staticmethod
    def _refusal(payload: dict[str, Any], path: str) -> PaymentGatewayError:
        message = str(payload.get("msg") or "").strip()[:200]
        return PaymentGatewayError(
            message or "支付平台拒绝了请求", f"{path}: code {payload.get('code')}"
        )

    async def create(
        self,
        out_trade_no: str,
        type: PayType,
        name: str,
        money_fen: int,
        notify_url: str,
        return_url: str,
        clientip: str,
    ) -> CreatedPayment:
        """Creates a payment at the gateway (`mapi.php`)."""
        form = {
            "pid": self.pid,
            "type": PayType(type).value,
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "return_url": return_url,
            "name": name,
            "money": fen_to_money(money_fen),
            "clientip": clientip,
        }
        form["sign"] = sign(form, self._key)
        form["sign_type"] = SIGN_TYPE
        payload = await self._call("POST", "mapi.php", data=form)
        if str(payload.get("code")) != "1":
            raise self._refusal(payload, "mapi.php")
        created = CreatedPayment(
            payurl=str(payload.get("payurl") or ""),
            qrcode=str(payload.get("qrcode") or ""),
            urlscheme=str(payload.get("urlscheme") or ""),
            trade_no=str(payload["trade_no"]) if payload.get("trade_no") else None,
        )
        if not created.link:
            raise PaymentGatewayError("", "mapi.php: code 1 without payurl, qrcode or urlscheme")
        return created

    async def query(self, out_trade_no: str) -> QueryResult:
        """The gateway's view of one payment (`api.php?act=order`). The key goes in the
        URL (the protocol's choice): this URL is never logged."""
        params = {"act": "order", "pid": self.pid, "key": self._key, "out_trade_no": out_trade_no}
        payload = await self._call("GET", "api.php", params=params)
        if str(payload.get("code")) != "1":
            raise self._refusal(payload, "api.php")
        return QueryResult(
            paid=str(payload.get("status")) == "1",
            trade_no=str(payload["trade_no"]) if payload.get("trade_no") else None,
            money=str(payload.get("money") or ""),
            type=str(payload.get("type") or ""),
        )
