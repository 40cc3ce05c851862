"""Shipment tracking: carrier names, tracking numbers, and the providers that fetch a
shipment's events.

Two providers share one interface (`TrackingProvider`): `manual`, where staff enter the
events with /物流更新 and the provider never has anything to add, and `kuaidi100`, the
real-time query API (https://api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc).
A provider raises only the errors defined here, so the poll job can decide per error
whether to retry, give up on a shipment, or warn the owner about the settings."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import httpx

from .errors import ShopError
from .http import KeptClient

KUAIDI100_QUERY_URL = "https://poll.kuaidi100.com/poll/query.do"
KUAIDI100_TIMEZONE = ZoneInfo("Asia/Shanghai")  # the zone of kuaidi100's `time`/`ftime`
KUAIDI100_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# --- errors -----------------------------------------------------------------------------


@dataclass
class UnknownCarrier(ShopError):
    """The carrier name matches none of the known carriers (`known`: their display names)."""

    text: str
    known: tuple[str, ...]


@dataclass
class InvalidTrackingNumber(ShopError):
    text: str


class TrackingProviderError(Exception):
    """Base of the errors a provider's `query` may raise. Not a ShopError: no customer or
    staff member caused it and no chat reply shows it; the tracking clock logs it."""


@dataclass
class TrackingUnavailable(TrackingProviderError):
    """The provider could not answer now (network, timeout, busy server, garbled answer).
    `detail` is for logs only."""

    retry: bool = True
    detail: str = ""


@dataclass
class TrackingRejected(TrackingProviderError):
    """The provider refuses this shipment for good (bad number/carrier, phone check failed):
    polling it again will not help. `code` is the provider's code, e.g. "400" or "408"."""

    code: str
    message: str


@dataclass
class TrackingConfigError(TrackingProviderError):
    """The shop's provider settings are wrong (bad key, quota used up, missing settings).
    `code` is the provider's code ("503", "601") or "config" for our own checks."""

    code: str
    message: str


class FailureKind(StrEnum):
    """What went wrong with a poll, as staff are told about it (services.shipping)."""

    BAD_KEY = "bad_key"  # kuaidi100 503: the sign check failed (KUAIDI100_KEY / CUSTOMER)
    QUOTA = "quota"  # kuaidi100 601: the key expired or the balance is used up
    CONFIG = "config"  # our own check: the provider's settings are missing or unknown
    REJECTED = "rejected"  # this shipment only, for good (bad carrier/number, phone check)
    UNAVAILABLE = "unavailable"  # network, timeout, busy server: may pass by itself


# A failure of the provider's settings: every query fails the same way until the owner
# fixes it, so staff hear about it at once. A shipment's rejection is about that parcel
# alone; being unavailable may pass by itself.
SETTINGS_FAILURES = frozenset({FailureKind.BAD_KEY, FailureKind.QUOTA, FailureKind.CONFIG})


def failure_kind(error: TrackingProviderError) -> FailureKind:
    if isinstance(error, TrackingConfigError):
        return {"503": FailureKind.BAD_KEY, "601": FailureKind.QUOTA}.get(
            error.code, FailureKind.CONFIG
        )
    if isinstance(error, TrackingRejected):
        return FailureKind.REJECTED
    return FailureKind.UNAVAILABLE


# --- carriers and numbers ---------------------------------------------------------------


@dataclass(frozen=True)
class Carrier:
    name: str  # Chinese display name
    code: str  # kuaidi100 company code


SHUNFENG = Carrier("顺丰", "shunfeng")
ZHONGTONG = Carrier("中通", "zhongtong")
YUANTONG = Carrier("圆通", "yuantong")
YUNDA = Carrier("韵达", "yunda")
SHENTONG = Carrier("申通", "shentong")
JITU = Carrier("极兔", "jtexpress")
YOUZHENG = Carrier("邮政", "youzhengguonei")
EMS = Carrier("EMS", "ems")
JD = Carrier("京东", "jd")
DEBANG = Carrier("德邦", "debangkuaidi")

CARRIERS: tuple[Carrier, ...] = (
    SHUNFENG,
    ZHONGTONG,
    YUANTONG,
    YUNDA,
    SHENTONG,
    JITU,
    YOUZHENG,
    EMS,
    JD,
    DEBANG,
)
KNOWN_CARRIER_NAMES: tuple[str, ...] = tuple(carrier.name for carrier in CARRIERS)

# Spellings besides each carrier's display name and code (both always accepted).
_EXTRA_ALIASES: dict[Carrier, tuple[str, ...]] = {
    SHUNFENG: ("顺丰速运", "顺丰快递", "SF"),
    ZHONGTONG: ("中通快递", "ZTO"),
    YUANTONG: ("圆通速递", "YTO"),
    YUNDA: ("韵达快递",),
    SHENTONG: ("申通快递", "STO"),
    JITU: ("极兔速递", "极兔快递", "J&T"),
    YOUZHENG: ("中国邮政", "邮政快递包裹"),
    EMS: (),
    JD: ("京东快递", "京东物流"),
    DEBANG: ("德邦快递",),
}


def _fold(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a carrier name."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


_ALIASES: dict[str, Carrier] = {
    _fold(alias): carrier
    for carrier in CARRIERS
    for alias in (carrier.name, carrier.code, *_EXTRA_ALIASES[carrier])
}


def normalise_carrier(text: str) -> Carrier:
    """`顺丰速运`, `SF`, `ｓｆ`, `shunfeng`… → the shunfeng carrier. A carrier's display name
    and its code are accepted too, so a stored name or code always maps back."""
    carrier = _ALIASES.get(_fold(text))
    if carrier is None:
        raise UnknownCarrier(text, KNOWN_CARRIER_NAMES)
    return carrier


_TRACKING_NUMBER = re.compile(r"[A-Za-z0-9]{6,30}")


def check_tracking_number(text: str) -> str:
    """A tracking number: 6–30 letters and digits (full-width tolerated), upper-cased."""
    number = unicodedata.normalize("NFKC", text).strip()
    if not number.isascii() or _TRACKING_NUMBER.fullmatch(number) is None:
        raise InvalidTrackingNumber(text)
    return number.upper()


# --- states, events, results ------------------------------------------------------------


class TrackingState(StrEnum):
    IN_TRANSIT = "in_transit"  # kuaidi100 0 在途
    PICKED_UP = "picked_up"  # 1 揽收
    PROBLEM = "problem"  # 2 疑难
    SIGNED = "signed"  # 3 签收
    RETURN_SIGNED = "return_signed"  # 4 退签
    DELIVERING = "delivering"  # 5 派件
    RETURNING = "returning"  # 6 退回
    REJECTED = "rejected"  # 14 拒签

    @classmethod
    def from_kuaidi100(cls, code: str | int) -> TrackingState:
        """kuaidi100's state code → state; codes we do not track (customs, 转投…) are
        in transit."""
        state = _state_from_code(code)
        return cls.IN_TRANSIT if state is None else state


# The parcel is going back to the shop (or was refused): it will never reach the
# customer, so the order must not complete by itself; staff handle it (refund, resend).
NOT_ARRIVING = frozenset(
    {TrackingState.RETURN_SIGNED, TrackingState.RETURNING, TrackingState.REJECTED}
)


def state_name(value: str) -> str:
    """The Chinese name of a stored tracking state; an unknown value is shown as it is."""
    try:
        return TRACKING_STATE_NAMES[TrackingState(value)]
    except (ValueError, KeyError):
        return value


TRACKING_STATE_NAMES: dict[TrackingState, str] = {
    TrackingState.IN_TRANSIT: "在途",
    TrackingState.PICKED_UP: "揽收",
    TrackingState.PROBLEM: "疑难",
    TrackingState.SIGNED: "签收",
    TrackingState.RETURN_SIGNED: "退签",
    TrackingState.DELIVERING: "派件",
    TrackingState.RETURNING: "退回",
    TrackingState.REJECTED: "拒签",
}

KUAIDI100_STATE_CODES: dict[str, TrackingState] = {
    "0": TrackingState.IN_TRANSIT,
    "1": TrackingState.PICKED_UP,
    "2": TrackingState.PROBLEM,
    "3": TrackingState.SIGNED,
    "4": TrackingState.RETURN_SIGNED,
    "5": TrackingState.DELIVERING,
    "6": TrackingState.RETURNING,
    "14": TrackingState.REJECTED,
}

_STATES_BY_NAME = {name: state for state, name in TRACKING_STATE_NAMES.items()}


def _state_from_code(code: object) -> TrackingState | None:
    """A main state code ("3"), or a detailed one of the resultv2=4 answers ("301" 本人签收,
    "1002" 干线 → 0, "1401" → 14); None when it names no state we track."""
    text = str(code).strip()
    if text in KUAIDI100_STATE_CODES:
        return KUAIDI100_STATE_CODES[text]
    if len(text) == 3 and text.isdigit() and text[1] == "0":
        return KUAIDI100_STATE_CODES.get(text[0])
    if len(text) == 4 and text.isdigit() and text[2] == "0" and text[:2] in {"10", "14"}:
        return KUAIDI100_STATE_CODES["0" if text[:2] == "10" else "14"]
    return None


def from_kuaidi100(code: str | int) -> TrackingState:
    """Same as `TrackingState.from_kuaidi100`."""
    return TrackingState.from_kuaidi100(code)


@dataclass(frozen=True)
class TrackingEvent:
    at: datetime  # aware, UTC
    text: str
    state: TrackingState | None = None

    @property
    def key(self) -> str:
        """Identifies the event across polls, so each one is stored once."""
        return f"{self.at.astimezone(UTC).isoformat()}|{self.text}"


@dataclass(frozen=True)
class TrackingResult:
    state: TrackingState
    events: list[TrackingEvent]  # oldest first

    @property
    def signed(self) -> bool:
        return self.state is TrackingState.SIGNED


# --- providers --------------------------------------------------------------------------


@runtime_checkable
class TrackingProvider(Protocol):
    name: str

    async def query(
        self, carrier: Carrier, number: str, phone: str | None = None
    ) -> TrackingResult | None:
        """The shipment's state and all its events, or None when there is nothing (new)
        to tell yet. Raises only TrackingProviderError subclasses."""
        ...

    async def aclose(self) -> None:
        """Releases what the provider holds open (connections); it stays usable."""
        ...


class ManualProvider:
    """Staff enter the events with /物流更新; polling never finds anything."""

    name = "manual"

    async def query(
        self, carrier: Carrier, number: str, phone: str | None = None
    ) -> TrackingResult | None:
        return None

    async def aclose(self) -> None:
        return None


# kuaidi100 `returnCode`s of failed queries.
_NO_RESULT_YET = {"500"}
_REJECTED = {"400", "408"}
_BUSY = {"501", "502"}
_BAD_CONFIG = {"503", "601"}


class Kuaidi100Provider:
    """kuaidi100's real-time query API (实时快递查询)."""

    name = "kuaidi100"

    def __init__(
        self,
        customer: str,
        key: str,
        url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.customer = customer
        self.key = key
        self.url = url or KUAIDI100_QUERY_URL
        self.timeout = timeout
        self.transport = transport
        self._http = KeptClient(timeout, transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    def sign(self, param: str) -> str:
        return hashlib.md5((param + self.key + self.customer).encode("utf-8")).hexdigest().upper()

    @staticmethod
    def build_param(carrier: Carrier, number: str, phone: str | None = None) -> str:
        """The `param` JSON exactly as it is signed and sent. Only the phone's last four
        digits go out (SF and a few others check them)."""
        digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone or "") if ch.isdigit())
        return json.dumps(
            {
                "com": carrier.code,
                "num": number,
                "phone": digits[-4:],
                "resultv2": "1",
                "show": "0",
                "order": "asc",
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    async def query(
        self, carrier: Carrier, number: str, phone: str | None = None
    ) -> TrackingResult | None:
        try:
            param = self.build_param(carrier, number, phone)
            form = {"customer": self.customer, "param": param, "sign": self.sign(param)}
            async with asyncio.timeout(self.timeout):  # the whole exchange, not each read
                response = await self._http.get().post(self.url, data=form)
                body = response.content
        # httpx errors, timeouts, socket errors, and anything odd: never let it reach
        # the poll job as something else than "try again later".
        except Exception as error:
            raise TrackingUnavailable(detail=f"{type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise TrackingUnavailable(detail=f"HTTP {response.status_code}")
        try:
            payload = json.loads(body)
        except ValueError as error:
            raise TrackingUnavailable(detail="invalid JSON") from error
        if not isinstance(payload, dict):
            raise TrackingUnavailable(detail="answer is not a JSON object")
        try:
            return _parse_answer(payload)
        except TrackingProviderError:
            raise
        except Exception as error:  # a shape we did not foresee
            raise TrackingUnavailable(detail=f"unreadable answer: {error}") from error


def _parse_answer(payload: dict[str, Any]) -> TrackingResult | None:
    return_code = payload.get("returnCode")
    if payload.get("result") is False or (return_code is not None and str(return_code) != "200"):
        code = str(return_code or "")
        message = str(payload.get("message") or "")
        if code in _NO_RESULT_YET:
            return None
        if code in _REJECTED:
            raise TrackingRejected(code, message)
        if code in _BAD_CONFIG:
            raise TrackingConfigError(code, message)
        raise TrackingUnavailable(detail=f"returnCode {code}: {message}")
    data = payload.get("data")
    if str(payload.get("status")) != "200" or not isinstance(data, list):
        raise TrackingUnavailable(detail="unexpected answer")
    events = _parse_events(data)
    if not events:
        return None
    return TrackingResult(TrackingState.from_kuaidi100(payload.get("state", "0")), events)


def _parse_events(data: list[Any]) -> list[TrackingEvent]:
    """Events oldest first, each once. Malformed entries are skipped: one bad line must
    not hide the rest of the shipment."""
    events: dict[str, TrackingEvent] = {}
    for item in data:
        if not isinstance(item, dict):
            continue
        at = _parse_time(item.get("ftime") or item.get("time"))
        text = item.get("context")
        if at is None or not isinstance(text, str) or not text.strip():
            continue
        state = _state_from_code(item.get("statusCode", ""))
        if state is None:
            state = _STATES_BY_NAME.get(str(item.get("status", "")).strip())
        event = TrackingEvent(at, text.strip(), state)
        events.setdefault(event.key, event)
    return sorted(events.values(), key=lambda event: event.at)  # stable: keeps same-time order


def _parse_time(value: object) -> datetime | None:
    """'YYYY-MM-DD HH:MM:SS' in Shanghai time → aware UTC."""
    if not isinstance(value, str):
        return None
    try:
        local = datetime.strptime(value.strip(), KUAIDI100_TIME_FORMAT)
    except ValueError:
        return None
    return local.replace(tzinfo=KUAIDI100_TIMEZONE).astimezone(UTC)


def make_provider(
    name: str,
    *,
    customer: str = "",
    key: str = "",
    url: str = "",
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 10.0,
) -> TrackingProvider:
    """The provider named by TRACKING_PROVIDER."""
    match name.strip().lower():
        case "manual":
            return ManualProvider()
        case "kuaidi100":
            if not customer or not key:
                raise TrackingConfigError("config", "KUAIDI100_CUSTOMER 和 KUAIDI100_KEY 必须设置")
            return Kuaidi100Provider(
                customer, key, url or KUAIDI100_QUERY_URL, timeout=timeout, transport=transport
            )
    raise TrackingConfigError("config", f"未知的物流查询方式：{name}（可选 manual 或 kuaidi100）")
