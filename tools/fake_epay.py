"""A local stand-in for an EPay (易支付) gateway over real HTTP, for tests and the demo.

It speaks the protocol of 彩虹易支付-style gateways: `mapi.php` creates a payment (it
checks the merchant id and the bot's signature, computed here independently and checked
against DESIGN.md's vector), `api.php?act=order` answers queries (status 1 once paid),
and paying sends a signed notify to the `notify_url` the bot gave, repeated like a real
gateway until the bot answers `success`. A payer "pays" by opening the link the bot
shows and following 确认支付 (`<payurl>/pay`), a test calls `pay()`, and the demo's
simulator command `:pay <订单号>` asks `demo/pay?order=<订单号>` (the order's latest
payment is paid).

Run alone (`python -m tools.fake_epay --port 8700`) it prints its URL, pid and key; the
demo (`PAYMENT_PROVIDER=epay ./run demo`) runs it inside the bot process instead
(plugins/payments). Proxy variables must be cleared by the caller: everything here is
127.0.0.1."""

from __future__ import annotations

import argparse
import hashlib
import html
import http.server
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

PID = "1001"
KEY = "testkey123"
PAY_TYPES = ("alipay", "wxpay", "qqpay")
# DESIGN.md's signing vector: the fake refuses to start if its own signing disagrees.
GOLDEN_PARAMS = {
    "money": "10.00",
    "name": "Test Product",
    "notify_url": "https://example.com/notify",
    "out_trade_no": "ORDER001",
    "pid": "1001",
    "type": "alipay",
}
GOLDEN_KEY = "testkey123"
GOLDEN_SIGN = "22af0227eebf7a4095b64af5fa89ca6d"
# A real gateway retries over hours (15s, 15s, 30s, 3m, 10m, …); the fake, in seconds.
DEFAULT_RETRY_DELAYS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
# Notifies go straight to the bot, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def epay_sign(params: Mapping[str, str], key: str) -> str:
    """The gateway's side of the signature, written apart from services/epay.py so a
    bug there cannot hide in both."""
    pairs = sorted(
        (k, v) for k, v in params.items() if k not in ("sign", "sign_type") and v not in ("", None)
    )
    raw = "&".join(f"{k}={v}" for k, v in pairs) + key
    return hashlib.md5(raw.encode("utf-8")).hexdigest()


if epay_sign(GOLDEN_PARAMS, GOLDEN_KEY) != GOLDEN_SIGN:  # pragma: no cover
    raise RuntimeError("fake_epay: signing disagrees with DESIGN.md's vector")


class NotifyMode(StrEnum):
    SEND = "send"  # once, retried until `success`
    DROP = "drop"  # never (a lost notify: only reconciliation finds the payment)
    TWICE = "twice"  # two deliveries at the same moment (a gateway's duplicate)


@dataclass
class FakePayment:
    trade_no: str
    out_trade_no: str
    type: str
    name: str
    money: str
    notify_url: str
    return_url: str
    added_at: str
    paid_at: str = ""

    @property
    def paid(self) -> bool:
        return bool(self.paid_at)


@dataclass(frozen=True)
class Delivery:
    """One notify sent: to which payment, and what the bot answered ("" on no answer)."""

    out_trade_no: str
    answer: str
    status: int


def _now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _valid_money(text: str) -> bool:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value.is_finite() and value > 0 and value == value.quantize(Decimal("0.01"))


class FakeEpay:
    def __init__(
        self,
        pid: str = PID,
        key: str = KEY,
        *,
        notify_method: str = "POST",
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self.pid = pid
        self.key = key
        self.notify_method = notify_method.upper()
        self.retry_delays = retry_delays
        self.payments: dict[str, FakePayment] = {}  # by out_trade_no
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, fields) minus the key
        self.deliveries: list[Delivery] = []
        # The next mapi.php answers code -1 with this message (then it is cleared).
        self.refuse_next_create: str | None = None
        self.url = ""  # the base URL (EPAY_API_URL), set while running
        self._trade_numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._senders: list[threading.Thread] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- the protocol ----------------------------------------------------------------

    def answer_mapi(self, form: dict[str, str]) -> dict[str, Any]:
        self._log("mapi.php", form)
        with self._lock:
            refusal, self.refuse_next_create = self.refuse_next_create, None
        if refusal is not None:
            return {"code": -1, "msg": refusal}
        if form.get("pid") != self.pid:
            return {"code": -1, "msg": "商户不存在"}
        if form.get("sign_type", "MD5") != "MD5" or form.get("sign") != epay_sign(form, self.key):
            return {"code": -1, "msg": "签名校验失败"}
        missing = [
            name
            for name in ("type", "out_trade_no", "notify_url", "name", "money", "clientip")
            if not form.get(name)
        ]
        if missing:
            return {"code": -1, "msg": f"缺少参数 {','.join(missing)}"}
        if form["type"] not in PAY_TYPES:
            return {"code": -1, "msg": "支付方式不存在"}
        if not _valid_money(form["money"]):
            return {"code": -1, "msg": "金额不合法"}
        with self._lock:
            known = self.payments.get(form["out_trade_no"])
            if known is not None and known.money != form["money"]:
                return {"code": -1, "msg": "订单号已存在"}
            payment = known or FakePayment(
                trade_no=f"{datetime.now():%Y%m%d%H%M%S}{next(self._trade_numbers):06d}",
                out_trade_no=form["out_trade_no"],
                type=form["type"],
                name=form["name"],
                money=form["money"],
                notify_url=form["notify_url"],
                return_url=form.get("return_url", ""),
                added_at=_now_text(),
            )
            self.payments[payment.out_trade_no] = payment
        return {
            "code": 1,
            "msg": "",
            "trade_no": payment.trade_no,
            "payurl": f"{self.url}submit/{payment.trade_no}",
            "qrcode": f"{self.url}qr/{payment.trade_no}",
        }

    def answer_api(self, query: dict[str, str]) -> dict[str, Any]:
        self._log("api.php", query)
        if query.get("act") != "order":
            return {"code": -1, "msg": "不支持的操作"}
        if query.get("pid") != self.pid or query.get("key") != self.key:
            return {"code": -3, "msg": "KEY校验失败"}
        with self._lock:
            payment = self.payments.get(query.get("out_trade_no", ""))
        if payment is None:
            return {"code": -1, "msg": "订单号不存在"}
        return {
            "code": 1,
            "msg": "查询订单号成功！",
            "trade_no": payment.trade_no,
            "out_trade_no": payment.out_trade_no,
            "api_trade_no": f"API{payment.trade_no}",
            "type": payment.type,
            "pid": self.pid,
            "addtime": payment.added_at,
            "endtime": payment.paid_at,
            "name": payment.name,
            "money": payment.money,
            "status": 1 if payment.paid else 0,
            "param": "",
            "buyer": "",
        }

    def _log(self, path: str, fields: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, {k: v for k, v in fields.items() if k != "key"}))

    # --- paying ----------------------------------------------------------------------

    def notify_params(self, out_trade_no: str, **overrides: str) -> dict[str, str]:
        """The signed notify of a payment; `overrides` change fields before signing
        (`sign=...` after: a forged signature)."""
        payment = self.payments[out_trade_no]
        forged_sign = overrides.pop("sign", None)
        params = {
            "pid": self.pid,
            "trade_no": payment.trade_no,
            "out_trade_no": payment.out_trade_no,
            "type": payment.type,
            "name": payment.name,
            "money": payment.money,
            "trade_status": "TRADE_SUCCESS",
            "param": "",
        }
        params.update(overrides)
        params["sign"] = forged_sign or epay_sign(params, self.key)
        params["sign_type"] = "MD5"
        return params

    def mark_paid(self, out_trade_no: str) -> FakePayment:
        with self._lock:
            payment = self.payments[out_trade_no]
            if not payment.paid:
                payment.paid_at = _now_text()
            return payment

    def pay(
        self, out_trade_no: str, notify: NotifyMode = NotifyMode.SEND, **overrides: str
    ) -> dict[str, str]:
        """The payer paid: the payment is paid (api.php says so) and its notify goes out
        in the background as `notify` says. Returns the notify's fields."""
        payment = self.mark_paid(out_trade_no)
        params = self.notify_params(out_trade_no, **overrides)
        copies = {NotifyMode.SEND: 1, NotifyMode.DROP: 0, NotifyMode.TWICE: 2}[notify]
        for _ in range(copies):
            sender = threading.Thread(
                target=self._deliver, args=(payment.notify_url, params), daemon=True
            )
            with self._lock:
                self._senders.append(sender)
            sender.start()
        return params

    def pay_by_trade_no(self, trade_no: str) -> FakePayment | None:
        """The payer followed the link (`submit/<trade_no>/pay`)."""
        with self._lock:
            found = next((p for p in self.payments.values() if p.trade_no == trade_no), None)
        if found is not None and not found.paid:
            self.pay(found.out_trade_no)
        return found

    def latest_for_order(self, order_code: str) -> FakePayment | None:
        """The newest payment created for a shop order: the bot's out_trade_no is the
        order code plus `-<n>`."""
        code = order_code.strip().upper()
        with self._lock:
            mine = [
                p
                for p in self.payments.values()
                if p.out_trade_no.upper() == code or p.out_trade_no.upper().startswith(code + "-")
            ]
        return mine[-1] if mine else None  # dicts keep insertion order: the last is newest

    def pay_order(
        self, order_code: str, notify: NotifyMode = NotifyMode.SEND
    ) -> FakePayment | None:
        """The payer paid the newest payment of `order_code` (the demo's `:pay`); None
        when the bot never created one here. Paying a paid payment again sends nothing."""
        payment = self.latest_for_order(order_code)
        if payment is not None and not payment.paid:
            self.pay(payment.out_trade_no, notify)
        return payment

    def answer_demo_pay(self, query: dict[str, str]) -> dict[str, Any]:
        """`demo/pay?order=<订单号>` (that order's newest payment) or `?trade_no=<no>`
        (the payment of a link): paid, its notify sent. JSON like the gateway's own."""
        order_code = query.get("order", "").strip()
        trade_no = query.get("trade_no", "").strip()
        if order_code:
            latest = self.latest_for_order(order_code)
        elif trade_no:
            with self._lock:
                latest = next((p for p in self.payments.values() if p.trade_no == trade_no), None)
        else:
            return {"code": -1, "msg": "缺少参数 order"}
        if latest is None:
            what = f"订单 {order_code}" if order_code else f"交易 {trade_no}"
            return {"code": -1, "msg": f"模拟网关里没有{what}的支付，请先 /付款"}
        already = latest.paid
        if not already:
            self.pay(latest.out_trade_no)
        return {
            "code": 1,
            "msg": "已支付过" if already else "支付成功",
            "out_trade_no": latest.out_trade_no,
            "trade_no": latest.trade_no,
            "money": latest.money,
            "already_paid": already,
        }

    def _deliver(self, notify_url: str, params: dict[str, str]) -> None:
        """Like a gateway: until the answer is exactly `success`, again after a pause."""
        encoded = urllib.parse.urlencode(params)
        for delay in self.retry_delays:
            time.sleep(delay)
            if self.notify_method == "GET":
                separator = "&" if "?" in notify_url else "?"
                request = urllib.request.Request(f"{notify_url}{separator}{encoded}")
            else:
                request = urllib.request.Request(
                    notify_url,
                    data=encoded.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            try:
                with _DIRECT.open(request, timeout=10) as response:
                    answer, status = (
                        response.read().decode(errors="replace").strip(),
                        response.status,
                    )
            except urllib.error.HTTPError as error:
                answer, status = "", error.code
            except OSError:
                answer, status = "", 0
            with self._lock:
                self.deliveries.append(Delivery(params["out_trade_no"], answer, status))
            if answer == "success":
                return

    def wait_notified(self, timeout: float = 10.0) -> None:
        """Blocks until every notify sent so far got `success` or gave up."""
        deadline = time.monotonic() + timeout
        with self._lock:
            senders = list(self._senders)
        for sender in senders:
            sender.join(max(0.0, deadline - time.monotonic()))

    def answers_for(self, out_trade_no: str) -> list[str]:
        with self._lock:
            return [d.answer for d in self.deliveries if d.out_trade_no == out_trade_no]

    # --- serving ---------------------------------------------------------------------

    def _page(self, trade_no: str, pay: bool) -> tuple[int, str]:
        with self._lock:
            payment = next((p for p in self.payments.values() if p.trade_no == trade_no), None)
        if payment is None:
            return 404, "<p>没有这笔订单</p>"
        if pay:
            self.pay_by_trade_no(trade_no)
            back = html.escape(payment.return_url)
            link = f'<p><a href="{back}">返回商家</a></p>' if back else ""
            return 200, f"<p>模拟支付成功：¥{html.escape(payment.money)}</p>{link}"
        status = "已支付" if payment.paid else "待支付"
        return 200, (
            f"<h3>模拟收银台（{html.escape(payment.type)}）</h3>"
            f"<p>{html.escape(payment.name)}：¥{html.escape(payment.money)}（{status}）</p>"
            f'<p><a href="{html.escape(self.url)}submit/{html.escape(trade_no)}/pay">确认支付</a></p>'
        )

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serves in a thread; returns the base URL (EPAY_API_URL, ends with /)."""
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, status: int, body: str, content_type: str) -> None:
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def _json(self, payload: dict[str, Any]) -> None:
                self._send(200, json.dumps(payload, ensure_ascii=False), "application/json")

            def _route(self, fields: dict[str, str]) -> None:
                path = urllib.parse.urlsplit(self.path).path.strip("/")
                parts = path.split("/")
                if path == "mapi.php" and self.command == "POST":
                    self._json(fake.answer_mapi(fields))
                elif path == "api.php":
                    self._json(fake.answer_api(fields))
                elif path == "demo/pay":
                    self._json(fake.answer_demo_pay(fields))
                elif len(parts) in (2, 3) and parts[0] in ("submit", "qr"):
                    pay = len(parts) == 3 and parts[2] == "pay"
                    status, page = fake._page(parts[1], pay)
                    self._send(status, page, "text/html; charset=utf-8")
                else:
                    self._send(404, "not found", "text/plain")

            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                self._route(dict(urllib.parse.parse_qsl(query, keep_blank_values=True)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                self._route(dict(urllib.parse.parse_qsl(raw, keep_blank_values=True)))

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}/"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[str]:
        url = self.start()
        try:
            yield url
        finally:
            self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake EPay gateway on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pid", default=PID)
    parser.add_argument("--key", default=KEY)
    options = parser.parse_args()
    fake = FakeEpay(options.pid, options.key)
    url = fake.start(options.host, options.port)
    print(f"EPAY_API_URL={url}\nEPAY_PID={fake.pid}\nEPAY_KEY={fake.key}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
