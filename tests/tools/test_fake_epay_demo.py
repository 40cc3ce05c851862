"""The demo's way to pay: the fake gateway's `demo/pay` (the newest payment of an order,
or the payment of a link) and the simulator's `:pay`, which finds the fake gateway from
the payment link the bot showed and never calls any other host."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tools.fake_epay import KEY, PID, FakeEpay, epay_sign
from tools.onebot_sim.cli import demo_pay, demo_payment_link
from tools.onebot_sim.recorder import SentMessage

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NotifyReceiver:
    """Stands in for the bot's notify endpoint: answers `success`, keeps what came."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                receiver.received.append(dict(urllib.parse.parse_qsl(body)))
                receiver.arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pay/epay/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[NotifyReceiver]:
    server = NotifyReceiver()
    yield server
    server.close()


@pytest.fixture
def fake() -> Iterator[FakeEpay]:
    gateway = FakeEpay(retry_delays=(0.0,))
    with gateway.running():
        yield gateway


def create(fake: FakeEpay, out_trade_no: str, money: str, notify_url: str) -> dict[str, Any]:
    """mapi.php as the bot calls it (signed)."""
    form = {
        "pid": PID,
        "type": "alipay",
        "out_trade_no": out_trade_no,
        "notify_url": notify_url,
        "name": "演示小店 订单",
        "money": money,
        "clientip": "127.0.0.1",
    }
    form["sign"] = epay_sign(form, KEY)
    form["sign_type"] = "MD5"
    request = urllib.request.Request(
        f"{fake.url}mapi.php", data=urllib.parse.urlencode(form).encode()
    )
    with _DIRECT.open(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    assert answer["code"] == 1, answer
    return answer


def bot_said(text: str) -> SentMessage:
    return SentMessage("send_msg", "private", 10002, [], text, 0.0)


def test_demo_pay_pays_the_newest_payment_of_the_order(
    fake: FakeEpay, receiver: NotifyReceiver
) -> None:
    create(fake, "ABCDEFGH23-1", "39.90", receiver.url)
    create(fake, "ABCDEFGH23-2", "79.80", receiver.url)  # the quantities changed
    create(fake, "ZZZZZZZZ99-1", "1.00", receiver.url)
    answer = fake.answer_demo_pay({"order": "abcdefgh23"})
    assert answer["code"] == 1 and answer["out_trade_no"] == "ABCDEFGH23-2"
    assert answer["money"] == "79.80" and not answer["already_paid"]
    assert receiver.arrived.wait(10)
    fake.wait_notified()
    notify = receiver.received[0]
    assert notify["out_trade_no"] == "ABCDEFGH23-2" and notify["trade_status"] == "TRADE_SUCCESS"
    assert notify["sign"] == epay_sign(notify, KEY)
    assert not fake.payments["ABCDEFGH23-1"].paid and fake.payments["ABCDEFGH23-2"].paid
    again = fake.answer_demo_pay({"order": "ABCDEFGH23"})
    assert again["already_paid"] and len(fake.deliveries) == 1  # nothing sent again
    assert fake.answer_demo_pay({"order": "NOSUCHCODE"})["code"] == -1
    assert fake.answer_demo_pay({})["code"] == -1


async def test_simulator_pay_finds_the_gateway_from_the_link(
    fake: FakeEpay, receiver: NotifyReceiver
) -> None:
    created = create(fake, "ABCDEFGH23-1", "39.90", receiver.url)
    assert "先 /付款" in await demo_pay([bot_said("订单号：ABCDEFGH23 应付 ¥39.90")])
    sent = [bot_said(f"订单号：ABCDEFGH23\n付款链接：{created['payurl']}\n请在 12:00 前付款")]
    assert demo_payment_link(sent) == (fake.url, created["trade_no"])
    answer = await demo_pay(sent)  # no order code: the payment of the newest link
    assert "已付款 ¥39.90" in answer and "ABCDEFGH23-1" in answer
    assert receiver.arrived.wait(10)
    assert "已经付过了" in await demo_pay(sent, "ABCDEFGH23")
    assert "没有订单 QQQQQQQQ11" in await demo_pay(sent, "QQQQQQQQ11")


def test_simulator_pay_never_calls_a_real_gateway() -> None:
    real = [bot_said("付款链接：https://pay.example.com/submit/2026112900000001")]
    assert demo_payment_link(real) is None
