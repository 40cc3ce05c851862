"""A local stand-in for kuaidi100's real-time query API, served over real HTTP.

It checks each request the way kuaidi100 does (form fields, the customer, the sign
recomputed from param + key + customer, `com` and `num` in the param) and answers from
a table chosen by the tracking number. Proxy variables must be cleared by the caller."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CUSTOMER = "FAKECUSTOMER0001"
KEY = "fake-secret-key"
PHONE_LAST4 = "5678"  # PHONE00001 answers only to this phone tail
SLOW_SECONDS = 1.5

_TRANSIT_EVENTS = [
    {
        "time": "2026-11-22 18:30:00",
        "ftime": "2026-11-22 18:30:00",
        "context": "【深圳市】顺丰速运 已收取快件",
        "status": "揽收",
        "statusCode": "1",
    },
    {
        "time": "2026-11-23 02:15:00",
        "ftime": "2026-11-23 02:15:00",
        "context": "快件已发车，下一站【上海转运中心】",
        "status": "在途",
        "statusCode": "0",
    },
    {
        "time": "2026-11-23 10:00:00",
        "ftime": "2026-11-23 10:00:00",
        "context": "快件到达【上海转运中心】",
        "status": "在途",
        "statusCode": "0",
    },
]

_SIGNED_EVENTS = [
    *_TRANSIT_EVENTS,
    {
        "time": "2026-11-24 08:05:00",
        "ftime": "2026-11-24 08:05:00",
        "context": "快件交给张师傅，正在派送途中（联系电话：13800000000）",
        "status": "派件",
        "statusCode": "5",
    },
    {
        "time": "2026-11-24 11:42:00",
        "ftime": "2026-11-24 11:42:00",
        "context": "快件已签收，签收人：本人",
        "status": "签收",
        "statusCode": "3",
    },
]

# The receiver refused the parcel (拒签, state 14); it is on its way back (退回, state 6).
_REFUSED_EVENT = {
    "time": "2026-11-24 09:10:00",
    "ftime": "2026-11-24 09:10:00",
    "context": "收件人拒收，快件已拒签（电话：13800000000）",
    "status": "拒签",
    "statusCode": "14",
}
_REJECTED_EVENTS = [*_TRANSIT_EVENTS, _REFUSED_EVENT]
_RETURNING_EVENTS = [
    *_REJECTED_EVENTS,
    {
        "time": "2026-11-24 15:00:00",
        "ftime": "2026-11-24 15:00:00",
        "context": "快件已退回，正在返回寄件人【深圳市】",
        "status": "退回",
        "statusCode": "6",
    },
]

# Then signed for by the shop that sent it (退签, state 4): the parcel is home.
_RETURN_SIGNED_EVENTS = [
    *_RETURNING_EVENTS,
    {
        "time": "2026-11-26 10:00:00",
        "ftime": "2026-11-26 10:00:00",
        "context": "快件已退回寄件人，已签收",
        "status": "退签",
        "statusCode": "4",
    },
]

_MALFORMED_EVENTS: list[Any] = [
    "not an object",
    {"time": "yesterday", "ftime": "yesterday", "context": "时间看不懂", "status": "在途"},
    {"time": "2026-11-23 09:00:00", "ftime": "2026-11-23 09:00:00", "status": "在途"},
    {"time": "2026-11-23 09:30:00", "context": "只有 time 没有 ftime", "status": "在途"},
]

_ERROR_MESSAGES = {
    "400": "找不到对应公司",
    "408": "快递公司参数异常：验证码错误",
    "500": "查询无结果，请隔段时间再查",
    "501": "服务器错误",
    "502": "服务器繁忙",
    "503": "验证签名失败",
    "601": "POLL:KEY已过期或账号余额不足",
    "700": "未知错误",
}


def _ok(state: str, events: list[Any], com: str, num: str) -> dict[str, Any]:
    return {
        "message": "ok",
        "nu": num,
        "ischeck": "1" if state == "3" else "0",
        "com": com,
        "status": "200",
        "data": events,
        "state": state,
        "condition": "F00",
    }


def _error(code: str) -> dict[str, Any]:
    return {"result": False, "returnCode": code, "message": _ERROR_MESSAGES[code]}


class FakeKuaidi100:
    """Answers by tracking number (the `num` of the param):

    TRANSIT001 in transit, 3 events, oldest first; SHUFFLED01 the same events newest
    first with one repeated; SIGNED0001 signed (state 3, 5 events); REJECTED01 refused
    by the receiver (拒签, state 14, 4 events); RETURNING1 the same then on its way back
    (退回, state 6, 5 events); RETSIGNED1 the same then signed for by the sender (退签,
    state 4, 6 events); PHONE00001 like
    TRANSIT001 if the phone tail is PHONE_LAST4, else 408; EMPTY00001 ok with no events;
    MALFORMED1 one good event among broken ones; ERROR<code> kuaidi100's error answer
    <code>; BADJSON001 a body that is not JSON; HTTP500001 HTTP status 500; SLOW000001
    answers after SLOW_SECONDS; anything else: 500 (no result yet)."""

    def __init__(self, customer: str = CUSTOMER, key: str = KEY) -> None:
        self.customer = customer
        self.key = key
        self.requests: list[dict[str, str]] = []  # the forms received, in order
        self.url = ""

    def answer(self, form: dict[str, str]) -> tuple[int, bytes]:
        """(HTTP status, body) for one request's form."""
        self.requests.append(form)
        param = form.get("param", "")
        expected = hashlib.md5((param + self.key + self.customer).encode()).hexdigest().upper()
        if form.get("customer") != self.customer or form.get("sign") != expected:
            return self._json(_error("503"))
        try:
            query = json.loads(param)
        except ValueError:
            return self._json(_error("400"))
        if not isinstance(query, dict) or not query.get("com") or not query.get("num"):
            return self._json(_error("400"))
        com, num, phone = str(query["com"]), str(query["num"]), str(query.get("phone", ""))
        if num.startswith("ERROR") and num[5:] in _ERROR_MESSAGES:
            return self._json(_error(num[5:]))
        match num:
            case "TRANSIT001":
                return self._json(_ok("0", _TRANSIT_EVENTS, com, num))
            case "SHUFFLED01":
                events = [*reversed(_TRANSIT_EVENTS), _TRANSIT_EVENTS[1]]
                return self._json(_ok("0", events, com, num))
            case "SIGNED0001":
                return self._json(_ok("3", _SIGNED_EVENTS, com, num))
            case "REJECTED01":
                return self._json(_ok("14", _REJECTED_EVENTS, com, num))
            case "RETURNING1":
                return self._json(_ok("6", _RETURNING_EVENTS, com, num))
            case "RETSIGNED1":
                return self._json(_ok("4", _RETURN_SIGNED_EVENTS, com, num))
            case "PHONE00001":
                if phone != PHONE_LAST4:
                    return self._json(_error("408"))
                return self._json(_ok("0", _TRANSIT_EVENTS, com, num))
            case "EMPTY00001":
                return self._json(_ok("0", [], com, num))
            case "MALFORMED1":
                return self._json(_ok("0", [*_MALFORMED_EVENTS, _TRANSIT_EVENTS[0]], com, num))
            case "BADJSON001":
                return 200, b"<html>502 Bad Gateway</html>"
            case "HTTP500001":
                return 500, b'{"message":"internal error"}'
            case "SLOW000001":
                time.sleep(SLOW_SECONDS)
                return self._json(_ok("0", _TRANSIT_EVENTS, com, num))
        return self._json(_error("500"))

    @staticmethod
    def _json(payload: dict[str, Any]) -> tuple[int, bytes]:
        return 200, json.dumps(payload, ensure_ascii=False).encode()

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serves on 127.0.0.1 (a free port) in a thread; yields the query URL."""
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/poll/query.do":
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {name: values[-1] for name, values in urllib.parse.parse_qs(raw).items()}
                status, body = fake.answer(form)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the slow answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}/poll/query.do"
        try:
            yield self.url
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
