"""The EPay protocol (services/epay.py): DESIGN.md's signing vector, notify verification,
the money format, and the gateway client against the fake gateway over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from models.tables import PayType
from services import epay
from services.epay import EpayGateway
from services.errors import PaymentGatewayError
from tools.bot_process import PROXY_VARIABLES, free_port
from tools.fake_epay import GOLDEN_KEY, GOLDEN_PARAMS, GOLDEN_SIGN, KEY, PID, FakeEpay

NOTIFY_URL = "http://127.0.0.1:9/pay/epay/notify"
RETURN_URL = "http://127.0.0.1:9/pay/epay/return"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEpay]:
    server = FakeEpay()
    with server.running():
        yield server


@pytest.fixture
async def gateway(fake: FakeEpay) -> AsyncIterator[EpayGateway]:
    client = EpayGateway(fake.url, PID, KEY, timeout=5.0)
    yield client
    await client.aclose()


# --- signing ---------------------------------------------------------------------------


def test_sign_matches_the_design_vector() -> None:
    assert epay.sign(GOLDEN_PARAMS, GOLDEN_KEY) == GOLDEN_SIGN
    assert (
        epay.signing_string(GOLDEN_PARAMS)
        == "money=10.00&name=Test Product&notify_url=https://example.com/notify"
        "&out_trade_no=ORDER001&pid=1001&type=alipay"
    )


def test_sign_drops_sign_sign_type_and_empty_values_and_ignores_order() -> None:
    noisy = dict(reversed(list(GOLDEN_PARAMS.items())))
    noisy.update({"sign": "whatever", "sign_type": "MD5", "param": "", "return_url": ""})
    assert epay.sign(noisy, GOLDEN_KEY) == GOLDEN_SIGN


def test_sign_depends_on_every_value_and_the_key() -> None:
    assert epay.sign({**GOLDEN_PARAMS, "money": "10.01"}, GOLDEN_KEY) != GOLDEN_SIGN
    assert epay.sign(GOLDEN_PARAMS, GOLDEN_KEY + "x") != GOLDEN_SIGN


def _signed(**changes: str) -> dict[str, str]:
    params = {**GOLDEN_PARAMS, "trade_status": "TRADE_SUCCESS", **changes}
    return {**params, "sign": epay.sign(params, GOLDEN_KEY), "sign_type": "MD5"}


def test_verify_accepts_a_correct_notify() -> None:
    assert epay.verify(_signed(), GOLDEN_KEY, "1001")
    upper = _signed()
    upper["sign"] = upper["sign"].upper()
    assert epay.verify(upper, GOLDEN_KEY, "1001")


def test_verify_rejects_bad_signatures() -> None:
    params = _signed()
    assert not epay.verify({**params, "sign": "0" * 32}, GOLDEN_KEY, "1001")
    assert not epay.verify({**params, "money": "0.01"}, GOLDEN_KEY, "1001")  # tampered
    assert not epay.verify({k: v for k, v in params.items() if k != "sign"}, GOLDEN_KEY, "1001")
    assert not epay.verify(params, "another-key", "1001")
    assert not epay.verify(params, "", "1001")
    assert not epay.verify({**params, "sign_type": "RSA"}, GOLDEN_KEY, "1001")


def test_verify_rejects_another_merchant() -> None:
    # Correctly signed with our key, but for pid 2002: not our notify.
    other = _signed(pid="2002")
    assert not epay.verify(other, GOLDEN_KEY, "1001")
    assert not epay.verify(_signed(), GOLDEN_KEY, "2002")


# --- money -----------------------------------------------------------------------------


def test_fen_and_money() -> None:
    assert epay.fen_to_money(1000) == "10.00"
    assert epay.fen_to_money(5) == "0.05"
    assert epay.fen_to_money(123456) == "1234.56"
    assert epay.money_to_fen("10.00") == 1000
    assert epay.money_to_fen("10.5") == 1050
    assert epay.money_to_fen("10") == 1000
    assert epay.money_to_fen(" 0.01 ") == 1
    with pytest.raises(ValueError):
        epay.fen_to_money(-1)


@pytest.mark.parametrize("text", ["10.001", "-1", "1e3", "", " ", "abc", "10.", ".5", "1,000"])
def test_malformed_money_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        epay.money_to_fen(text)


def test_money_matches_as_decimals() -> None:
    assert epay.money_matches("10.00", 1000)
    assert epay.money_matches("10.0", 1000)
    assert epay.money_matches("10", 1000)
    assert not epay.money_matches("10.001", 1000)
    assert not epay.money_matches("9.99", 1000)
    for garbage in ("", "abc", "NaN", "Infinity"):
        assert not epay.money_matches(garbage, 1000)


# --- the gateway client ----------------------------------------------------------------


async def test_create_sends_a_signed_request_the_gateway_accepts(
    fake: FakeEpay, gateway: EpayGateway
) -> None:
    created = await gateway.create(
        "CODE000001-1",
        PayType.WXPAY,
        "测试小店 订单CODE000001",
        5900,
        NOTIFY_URL,
        RETURN_URL,
        "1.2.3.4",
    )
    assert created.payurl.startswith(fake.url) and created.qrcode.startswith(fake.url)
    assert created.trade_no and created.link == created.payurl and created.qr_text == created.qrcode
    path, form = fake.requests[-1]
    assert path == "mapi.php"
    assert form["money"] == "59.00" and form["type"] == "wxpay" and form["sign_type"] == "MD5"
    assert form["notify_url"] == NOTIFY_URL and form["clientip"] == "1.2.3.4"
    payment = fake.payments["CODE000001-1"]
    assert payment.money == "59.00" and payment.notify_url == NOTIFY_URL


async def test_create_refused_carries_the_gateways_message(fake: FakeEpay) -> None:
    wrong_key = EpayGateway(fake.url, PID, "not-the-key", timeout=5.0)
    try:
        with pytest.raises(PaymentGatewayError) as refused:
            await wrong_key.create(
                "CODE000002-1", PayType.ALIPAY, "x", 100, NOTIFY_URL, RETURN_URL, "127.0.0.1"
            )
        assert refused.value.reason == "签名校验失败"
    finally:
        await wrong_key.aclose()
    assert "CODE000002-1" not in fake.payments


async def test_query_says_paid_only_once_paid(fake: FakeEpay, gateway: EpayGateway) -> None:
    await gateway.create("CODE000003-1", PayType.ALIPAY, "x", 1050, NOTIFY_URL, "", "127.0.0.1")
    unpaid = await gateway.query("CODE000003-1")
    assert not unpaid.paid and unpaid.money_fen == 1050 and unpaid.type == "alipay"
    fake.mark_paid("CODE000003-1")
    paid = await gateway.query("CODE000003-1")
    assert paid.paid and paid.trade_no == fake.payments["CODE000003-1"].trade_no
    with pytest.raises(PaymentGatewayError) as unknown:
        await gateway.query("NOSUCHCODE-1")
    assert unknown.value.reason == "订单号不存在"


async def test_query_never_logs_the_key(
    fake: FakeEpay, gateway: EpayGateway, caplog: pytest.LogCaptureFixture
) -> None:
    await gateway.create("CODE000004-1", PayType.ALIPAY, "x", 100, NOTIFY_URL, "", "127.0.0.1")
    with caplog.at_level(logging.DEBUG):
        await gateway.query("CODE000004-1")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "api.php" in logged  # httpx did log the request line…
    assert KEY not in logged and "key=***" in logged  # …with the key masked
    assert KEY not in repr(gateway)


async def test_unreachable_gateway_is_a_gateway_error_without_the_key() -> None:
    dead = EpayGateway(f"http://127.0.0.1:{free_port()}/", PID, KEY, timeout=2.0)
    try:
        with pytest.raises(PaymentGatewayError) as error:
            await dead.query("CODE000005-1")
    finally:
        await dead.aclose()
    assert error.value.reason == "" and KEY not in error.value.detail


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b'{"code":1}'), (200, b"<html>502</html>"), (200, b"[1]")],
)
async def test_garbled_answers_are_gateway_errors(status: int, body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    broken = EpayGateway("https://pay.example.com", PID, KEY, transport=transport)
    try:
        with pytest.raises(PaymentGatewayError) as error:
            await broken.create("C-1", PayType.ALIPAY, "x", 100, NOTIFY_URL, "", "127.0.0.1")
    finally:
        await broken.aclose()
    assert error.value.reason == ""


async def test_created_without_any_link_is_a_gateway_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"code": 1}))
    odd = EpayGateway("https://pay.example.com/", PID, KEY, transport=transport)
    try:
        with pytest.raises(PaymentGatewayError):
            await odd.create("C-1", PayType.ALIPAY, "x", 100, NOTIFY_URL, "", "127.0.0.1")
    finally:
        await odd.aclose()
