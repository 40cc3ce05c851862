"""Tracking: carrier names, numbers, states, and the kuaidi100 provider against a real
local HTTP server (tests/services/fake_kuaidi100.py). No database needed."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from services.errors import ShopError
from services.tracking import (
    CARRIERS,
    KNOWN_CARRIER_NAMES,
    KUAIDI100_QUERY_URL,
    TRACKING_STATE_NAMES,
    Carrier,
    InvalidTrackingNumber,
    Kuaidi100Provider,
    ManualProvider,
    TrackingConfigError,
    TrackingEvent,
    TrackingProvider,
    TrackingProviderError,
    TrackingRejected,
    TrackingResult,
    TrackingState,
    TrackingUnavailable,
    UnknownCarrier,
    check_tracking_number,
    from_kuaidi100,
    make_provider,
    normalise_carrier,
)

from .fake_kuaidi100 import CUSTOMER, KEY, PHONE_LAST4, FakeKuaidi100

SF = Carrier("顺丰", "shunfeng")


@pytest.fixture
def provider(fake: FakeKuaidi100) -> Kuaidi100Provider:
    return Kuaidi100Provider(CUSTOMER, KEY, fake.url, timeout=5.0)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- carriers ---------------------------------------------------------------------------

SPELLINGS = {
    "shunfeng": [
        "顺丰",
        "顺丰速运",
        "顺丰快递",
        "SF",
        "sf",
        "shunfeng",
        "ＳＦ",
        "ｓｆ",
        " Sf ",
        "s f",
        "SHUNFENG",
    ],
    "zhongtong": ["中通", "中通快递", "ZTO", "zto", "zhongtong", "ＺＴＯ"],
    "yuantong": ["圆通", "圆通速递", "YTO", "yto", "yuantong"],
    "yunda": ["韵达", "韵达快递", "Yunda", "yunda", "YUNDA"],
    "shentong": ["申通", "申通快递", "STO", "sto", "shentong"],
    "jtexpress": ["极兔", "极兔速递", "极兔快递", "J&T", "j&t", "Ｊ＆Ｔ", "J & T", "jtexpress"],
    "youzhengguonei": ["邮政", "中国邮政", "邮政快递包裹", "youzhengguonei"],
    "ems": ["EMS", "ems", "Ems", "ＥＭＳ"],
    "jd": ["京东", "京东快递", "京东物流", "JD", "jd", "ＪＤ"],
    "debangkuaidi": ["德邦", "德邦快递", "debangkuaidi"],
}
NAMES = {
    "shunfeng": "顺丰",
    "zhongtong": "中通",
    "yuantong": "圆通",
    "yunda": "韵达",
    "shentong": "申通",
    "jtexpress": "极兔",
    "youzhengguonei": "邮政",
    "ems": "EMS",
    "jd": "京东",
    "debangkuaidi": "德邦",
}


@pytest.mark.parametrize(
    ("text", "code"), [(text, code) for code, texts in SPELLINGS.items() for text in texts]
)
def test_normalise_carrier(text: str, code: str) -> None:
    assert normalise_carrier(text) == Carrier(NAMES[code], code)


def test_every_carrier_is_covered_and_round_trips() -> None:
    assert {carrier.code for carrier in CARRIERS} == set(SPELLINGS)
    assert KNOWN_CARRIER_NAMES == tuple(carrier.name for carrier in CARRIERS)
    for carrier in CARRIERS:
        # A stored display name or code maps back to the same carrier.
        assert normalise_carrier(carrier.name) is carrier
        assert normalise_carrier(carrier.code) is carrier
    with pytest.raises(AttributeError):
        SF.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["火星快递", "", "   ", "UPS", "顺丰顺丰", "中通速运"])
def test_unknown_carrier(text: str) -> None:
    with pytest.raises(UnknownCarrier) as caught:
        normalise_carrier(text)
    assert caught.value.text == text
    assert caught.value.known == KNOWN_CARRIER_NAMES
    assert "顺丰" in caught.value.known and "EMS" in caught.value.known
    assert isinstance(caught.value, ShopError)


# --- tracking numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SF1234567890", "SF1234567890"),
        ("sf1234567890", "SF1234567890"),
        ("ＳＦ１２３４５６", "SF123456"),
        ("  773012345678  ", "773012345678"),
        ("123456", "123456"),
        ("A" * 30, "A" * 30),
        ("jt0012345678901", "JT0012345678901"),
    ],
)
def test_check_tracking_number(text: str, expected: str) -> None:
    assert check_tracking_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12345",
        "A" * 31,
        "SF-123456",
        "SF 123456",
        "顺丰123456",
        "123456\n7",
        "١٢٣٤٥٦",
        "12_3456",
    ],
)
def test_invalid_tracking_number(text: str) -> None:
    with pytest.raises(InvalidTrackingNumber) as caught:
        check_tracking_number(text)
    assert caught.value.text == text
    assert isinstance(caught.value, ShopError)


# --- states, events, results ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("0", TrackingState.IN_TRANSIT),
        ("1", TrackingState.PICKED_UP),
        ("2", TrackingState.PROBLEM),
        ("3", TrackingState.SIGNED),
        ("4", TrackingState.RETURN_SIGNED),
        ("5", TrackingState.DELIVERING),
        ("6", TrackingState.RETURNING),
        ("14", TrackingState.REJECTED),
        (3, TrackingState.SIGNED),
        (14, TrackingState.REJECTED),
        (" 5 ", TrackingState.DELIVERING),
        ("301", TrackingState.SIGNED),  # detailed codes (resultv2=4) map to their state
        ("1002", TrackingState.IN_TRANSIT),
        ("7", TrackingState.IN_TRANSIT),  # 转投: not tracked
        ("10", TrackingState.IN_TRANSIT),  # customs
        ("99", TrackingState.IN_TRANSIT),
        ("", TrackingState.IN_TRANSIT),
        ("abc", TrackingState.IN_TRANSIT),
    ],
)
def test_state_from_kuaidi100(code: str | int, state: TrackingState) -> None:
    assert TrackingState.from_kuaidi100(code) is state
    assert from_kuaidi100(code) is state


def test_state_names() -> None:
    assert set(TRACKING_STATE_NAMES) == set(TrackingState)
    assert TRACKING_STATE_NAMES[TrackingState.SIGNED] == "签收"
    assert TRACKING_STATE_NAMES[TrackingState.REJECTED] == "拒签"
    assert TrackingState.SIGNED == "signed"


def test_event_key_and_result() -> None:
    first = TrackingEvent(utc(2026, 11, 23, 2), "快件到达", TrackingState.IN_TRANSIT)
    same = TrackingEvent(utc(2026, 11, 23, 2), "快件到达", None)
    later = TrackingEvent(utc(2026, 11, 23, 3), "快件到达")
    assert first.key == "2026-11-23T02:00:00+00:00|快件到达"
    assert first.key == same.key != later.key
    assert TrackingResult(TrackingState.SIGNED, [first]).signed
    assert not TrackingResult(TrackingState.RETURN_SIGNED, [first]).signed


# --- kuaidi100: request ---------------------------------------------------------------


def test_sign_matches_hand_computed_md5() -> None:
    provider = Kuaidi100Provider("TESTCUSTOMER", "testkey", KUAIDI100_QUERY_URL)
    param = '{"com":"shunfeng","num":"SF1234567890","phone":"5678","resultv2":"1","show":"0","order":"asc"}'
    # printf %s "${param}testkeyTESTCUSTOMER" | md5sum
    assert provider.sign(param) == "B7CFAD34045EB5B28ABBD54F302C552B"
    assert provider.build_param(SF, "SF1234567890", "138 0000 5678") == param


@pytest.mark.parametrize(
    ("phone", "tail"),
    [
        (None, ""),
        ("", ""),
        ("13800005678", "5678"),
        ("+86 138-0000-5678", "5678"),
        ("１２３４５", "2345"),
    ],
)
def test_param_phone_tail(phone: str | None, tail: str) -> None:
    param = json.loads(Kuaidi100Provider.build_param(SF, "SF123456", phone))
    assert param == {
        "com": "shunfeng",
        "num": "SF123456",
        "phone": tail,
        "resultv2": "1",
        "show": "0",
        "order": "asc",
    }


# --- kuaidi100: answers from the local server -----------------------------------------


async def test_in_transit(fake: FakeKuaidi100, provider: Kuaidi100Provider) -> None:
    result = await provider.query(SF, "TRANSIT001")
    assert result is not None
    assert result.state is TrackingState.IN_TRANSIT and not result.signed
    assert [(event.at, event.text, event.state) for event in result.events] == [
        (utc(2026, 11, 22, 10, 30), "【深圳市】顺丰速运 已收取快件", TrackingState.PICKED_UP),
        (utc(2026, 11, 22, 18, 15), "快件已发车，下一站【上海转运中心】", TrackingState.IN_TRANSIT),
        # '2026-11-23 10:00:00' in Shanghai is 02:00 UTC
        (utc(2026, 11, 23, 2, 0), "快件到达【上海转运中心】", TrackingState.IN_TRANSIT),
    ]
    assert all(event.at.tzinfo is UTC for event in result.events)
    assert len({event.key for event in result.events}) == 3
    # What went over the wire: the form the server checked.
    form = fake.requests[-1]
    assert form["customer"] == CUSTOMER
    assert form["param"] == provider.build_param(SF, "TRANSIT001")
    assert form["sign"] == provider.sign(form["param"])
    assert json.loads(form["param"])["com"] == "shunfeng"


async def test_events_sorted_oldest_first_and_deduplicated(provider: Kuaidi100Provider) -> None:
    result = await provider.query(SF, "SHUFFLED01")  # newest first, one event twice
    assert result is not None
    times = [event.at for event in result.events]
    assert times == sorted(times) and len(times) == 3
    assert len({event.key for event in result.events}) == 3
    again = await provider.query(SF, "TRANSIT001")
    assert again is not None and [e.key for e in again.events] == [e.key for e in result.events]


async def test_signed(provider: Kuaidi100Provider) -> None:
    result = await provider.query(Carrier("中通", "zhongtong"), "SIGNED0001")
    assert result is not None
    assert result.state is TrackingState.SIGNED and result.signed
    assert len(result.events) == 5
    assert result.events[-1].state is TrackingState.SIGNED
    assert result.events[-1].at == utc(2026, 11, 24, 3, 42)
    assert result.events[-2].state is TrackingState.DELIVERING


async def test_phone_tail_is_checked(fake: FakeKuaidi100, provider: Kuaidi100Provider) -> None:
    with pytest.raises(TrackingRejected) as caught:
        await provider.query(SF, "PHONE00001", "13812341234")
    assert caught.value.code == "408"
    result = await provider.query(SF, "PHONE00001", f"138-0000-{PHONE_LAST4}")
    assert result is not None and len(result.events) == 3
    assert json.loads(fake.requests[-1]["param"])["phone"] == PHONE_LAST4


@pytest.mark.parametrize("number", ["ERROR500", "EMPTY00001", "NEVERHEARD1"])
async def test_nothing_yet(provider: Kuaidi100Provider, number: str) -> None:
    assert await provider.query(SF, number) is None


async def test_malformed_events_are_skipped(provider: Kuaidi100Provider) -> None:
    result = await provider.query(SF, "MALFORMED1")
    assert result is not None
    assert [(event.at, event.text) for event in result.events] == [
        (utc(2026, 11, 22, 10, 30), "【深圳市】顺丰速运 已收取快件"),
        (utc(2026, 11, 23, 1, 30), "只有 time 没有 ftime"),
    ]


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        ("400", TrackingRejected, "找不到对应公司"),
        ("408", TrackingRejected, "快递公司参数异常：验证码错误"),
        ("503", TrackingConfigError, "验证签名失败"),
        ("601", TrackingConfigError, "POLL:KEY已过期或账号余额不足"),
    ],
)
async def test_error_answers_with_code(
    provider: Kuaidi100Provider, code: str, error: type[TrackingProviderError], message: str
) -> None:
    with pytest.raises(error) as caught:
        await provider.query(SF, f"ERROR{code}")
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert caught.value.message == message  # type: ignore[attr-defined]


@pytest.mark.parametrize("number", ["ERROR501", "ERROR502", "ERROR700", "BADJSON001", "HTTP500001"])
async def test_unavailable(provider: Kuaidi100Provider, number: str) -> None:
    with pytest.raises(TrackingUnavailable) as caught:
        await provider.query(SF, number)
    assert caught.value.retry is True


async def test_wrong_key_or_customer_is_a_config_error(fake: FakeKuaidi100) -> None:
    for customer, key in [(CUSTOMER, "wrong-key"), ("SOMEONEELSE", KEY)]:
        provider = Kuaidi100Provider(customer, key, fake.url)
        with pytest.raises(TrackingConfigError) as caught:
            await provider.query(SF, "TRANSIT001")
        assert caught.value.code == "503"


async def test_slow_answer_times_out(fake: FakeKuaidi100) -> None:
    provider = Kuaidi100Provider(CUSTOMER, KEY, fake.url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as caught:
        await provider.query(SF, "SLOW000001")
    assert caught.value.retry is True
    assert time.monotonic() - started < 1.4


async def test_unreachable_or_bad_url() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for url in [f"http://127.0.0.1:{port}/poll/query.do", "not a url", "ftp://127.0.0.1/x"]:
        with pytest.raises(TrackingUnavailable):
            await Kuaidi100Provider(CUSTOMER, KEY, url, timeout=2).query(SF, "TRANSIT001")


async def test_explicit_transport(fake: FakeKuaidi100) -> None:
    provider = make_provider(
        "kuaidi100", customer=CUSTOMER, key=KEY, url=fake.url, transport=httpx.AsyncHTTPTransport()
    )
    result = await provider.query(SF, "TRANSIT001")
    assert result is not None and len(result.events) == 3


# --- manual provider and the factory ----------------------------------------------------


async def test_manual_provider() -> None:
    provider = ManualProvider()
    assert provider.name == "manual"
    assert isinstance(provider, TrackingProvider)
    assert await provider.query(SF, "SF123456", "13800005678") is None


def test_make_provider() -> None:
    assert isinstance(make_provider("manual"), ManualProvider)
    assert isinstance(make_provider(" Manual "), ManualProvider)
    provider = make_provider("kuaidi100", customer="C", key="K", url="http://127.0.0.1:1/q")
    assert isinstance(provider, Kuaidi100Provider) and isinstance(provider, TrackingProvider)
    assert provider.name == "kuaidi100"
    assert (provider.customer, provider.key, provider.url) == ("C", "K", "http://127.0.0.1:1/q")
    official = make_provider("kuaidi100", customer="C", key="K")
    assert isinstance(official, Kuaidi100Provider) and official.url == KUAIDI100_QUERY_URL
    for customer, key in [("", "K"), ("C", ""), ("", "")]:
        with pytest.raises(TrackingConfigError) as caught:
            make_provider("kuaidi100", customer=customer, key=key)
        assert caught.value == TrackingConfigError(
            "config", "KUAIDI100_CUSTOMER 和 KUAIDI100_KEY 必须设置"
        )
    with pytest.raises(TrackingConfigError) as unknown:
        make_provider("sf-express")
    assert unknown.value.code == "config"


async def test_queries_share_one_client_that_survives_errors_and_closing(
    fake: FakeKuaidi100,
) -> None:
    """Building an httpx client per query cost ~30 ms of CPU each (bench/tracking_sweep.py):
    the provider keeps one, and neither a timeout nor aclose() leaves it unusable."""
    provider = Kuaidi100Provider(CUSTOMER, KEY, fake.url, timeout=0.5)
    assert await provider.query(SF, "TRANSIT001") is not None
    client = provider._http._client
    assert client is not None
    assert await provider.query(SF, "TRANSIT001") is not None
    assert provider._http._client is client
    with pytest.raises(TrackingUnavailable):
        await provider.query(SF, "SLOW000001")
    result = await provider.query(SF, "TRANSIT001")
    assert result is not None and len(result.events) == 3
    await provider.aclose()
    assert client.is_closed
    result = await provider.query(SF, "TRANSIT001")
    assert result is not None and len(result.events) == 3
    assert provider._http._client is not client
    await provider.aclose()
    await ManualProvider().aclose()
