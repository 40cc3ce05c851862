"""OneBot v11 implementation simulator (stands in for NapCat / Lagrange.OneBot).

It connects to the bot through OneBot v11 *reverse WebSocket* ("Universal" role), exactly
like a real QQ protocol implementation does, posts message events on behalf of simulated
QQ users and answers every API call the bot makes (``send_msg``, ``get_msg``, ...).
Every API call is recorded so tests and benchmarks can assert on what the bot sent.

Library usage::

    async with OneBotSimulator("ws://127.0.0.1:8080/onebot/v11/ws", access_token="t") as sim:
        reply = await sim.ask_private(10001, "/商品")
        assert "商品" in reply.text

Command line::

    python tools/onebot_sim.py --url ws://127.0.0.1:8080/onebot/v11/ws [--token T] chat
    python tools/onebot_sim.py script commands.txt
    python tools/onebot_sim.py load --users 20 --commands 10 --message /商品 --json out.json

Only the standard library and ``websockets`` (>= 14, new asyncio API) are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import math
import mimetypes
import re
import secrets
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

__all__ = [
    "DEFAULT_URL",
    "ApiCall",
    "ApiError",
    "ConnectionRejected",
    "OneBotSimulator",
    "Seg",
    "SentMessage",
    "normalize_message",
    "parse_cq",
    "percentile",
    "render_text",
    "run_load",
    "to_cq",
]

DEFAULT_URL = "ws://127.0.0.1:8080/onebot/v11/ws"

#: Actions whose call is recorded as a :class:`SentMessage`.
SEND_ACTIONS = frozenset({"send_msg", "send_private_msg", "send_group_msg"})
FORWARD_ACTIONS = frozenset(
    {"send_forward_msg", "send_private_forward_msg", "send_group_forward_msg"}
)

Segment = dict[str, Any]
MessageLike = str | Segment | Sequence[Segment | str]
SendPredicate = Callable[["SentMessage"], bool]
Target = tuple[str, int]


# --------------------------------------------------------------------------------------
# Message segments and CQ codes
# --------------------------------------------------------------------------------------


class Seg:
    """Builders for OneBot v11 message segments (array message format)."""

    @staticmethod
    def text(text: str) -> Segment:
        return {"type": "text", "data": {"text": text}}

    @staticmethod
    def image(file: str, url: str | None = None) -> Segment:
        """An image segment. ``url`` defaults to ``file`` when that is an http(s) URL."""
        if url is None and file.startswith(("http://", "https://")):
            url = file
            file = Path(urlparse(file).path).name or "image.jpg"
        data: dict[str, Any] = {"file": file}
        if url is not None:
            data["url"] = url
        return {"type": "image", "data": data}

    @staticmethod
    def at(qq: int | str) -> Segment:
        return {"type": "at", "data": {"qq": str(qq)}}

    @staticmethod
    def reply(message_id: int | str) -> Segment:
        return {"type": "reply", "data": {"id": str(message_id)}}

    @staticmethod
    def face(face_id: int | str) -> Segment:
        return {"type": "face", "data": {"id": str(face_id)}}


_CQ_RE = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[^\]]*)?)\]")


def _cq_unescape(text: str) -> str:
    return (
        text.replace("&#44;", ",").replace("&#91;", "[").replace("&#93;", "]").replace("&amp;", "&")
    )


def _cq_escape(text: str, *, param: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")
    return text.replace(",", "&#44;") if param else text


def parse_cq(message: str) -> list[Segment]:
    """Parse a CQ-code string (``"hi[CQ:at,qq=1]"``) into a list of segments."""
    segments: list[Segment] = []
    pos = 0
    for match in _CQ_RE.finditer(message):
        if match.start() > pos:
            segments.append(Seg.text(_cq_unescape(message[pos : match.start()])))
        data: dict[str, Any] = {}
        for item in match.group(2).split(",")[1:]:
            key, _, value = item.partition("=")
            if key:
                data[key.strip()] = _cq_unescape(value)
        segments.append({"type": match.group(1), "data": data})
        pos = match.end()
    if pos < len(message):
        segments.append(Seg.text(_cq_unescape(message[pos:])))
    return segments


def to_cq(segments: Iterable[Segment]) -> str:
    """Render segments as a CQ-code string (what implementations put in ``raw_message``)."""
    parts: list[str] = []
    for seg in segments:
        data = seg.get("data") or {}
        if seg.get("type") == "text":
            parts.append(_cq_escape(str(data.get("text", ""))))
            continue
        params = "".join(
            f",{key}={_cq_escape(str(value), param=True)}"
            for key, value in data.items()
            if value is not None
        )
        parts.append(f"[CQ:{seg.get('type')}{params}]")
    return "".join(parts)


def normalize_message(message: Any, *, auto_escape: bool = False) -> list[Segment]:
    """Normalise a ``message`` API parameter to a list of segments.

    Accepts an array of segments, a single segment dict or a CQ-code string (taken
    literally when ``auto_escape`` is true). Strings inside an array become text segments.
    """
    if message is None:
        return []
    if isinstance(message, str):
        return [Seg.text(message)] if auto_escape else parse_cq(message)
    if isinstance(message, dict):
        return [_copy_segment(message)] if "type" in message else []
    if isinstance(message, list | tuple):
        result: list[Segment] = []
        for item in message:
            if isinstance(item, str):
                result.append(Seg.text(item))
            elif isinstance(item, dict) and "type" in item:
                result.append(_copy_segment(item))
        return result
    return [Seg.text(str(message))]


def _copy_segment(seg: Segment) -> Segment:
    return {"type": str(seg["type"]), "data": dict(seg.get("data") or {})}


def _describe_file(value: str) -> str:
    if value.startswith("base64://"):
        return f"base64://…({len(value) - 9} chars)"
    return value


def render_text(segments: Iterable[Segment]) -> str:
    """Plain-text view of a message.

    Text segments are concatenated, images become ``[图片:<file>]``, ``at`` becomes
    ``@<qq>`` and ``reply`` segments are dropped.
    """
    out: list[str] = []
    for seg in segments:
        kind = seg.get("type")
        data = seg.get("data") or {}
        if kind == "text":
            out.append(str(data.get("text", "")))
        elif kind == "image":
            out.append(f"[图片:{_describe_file(str(data.get('file') or data.get('url') or ''))}]")
        elif kind == "at":
            out.append(f"@{data.get('qq', '')}")
        elif kind == "reply":
            continue
        elif kind == "face":
            out.append(f"[表情:{data.get('id', '')}]")
        elif kind == "node":
            out.append(render_text(normalize_message(data.get("content"))))
        else:
            out.append(f"[{kind}]")
    return "".join(out)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); 0.0 for an empty sequence."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclass
class SentMessage:
    """One message the bot sent (a ``send_msg`` / ``send_*_msg`` / forward API call)."""

    action: str
    target_type: str  # "private" | "group"
    target_id: int
    segments: list[Segment]
    text: str
    at: float  # wall-clock time (time.time()) the call was received
    message_id: int = 0  # id the simulator returned for this message
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    mono: float = field(default=0.0, repr=False)  # time.perf_counter() at receipt

    @property
    def reply_to(self) -> int | None:
        """``message_id`` quoted by a ``reply`` segment, if any."""
        for seg in self.segments:
            if seg.get("type") == "reply":
                with contextlib.suppress(TypeError, ValueError):
                    return int((seg.get("data") or {}).get("id"))
        return None

    @property
    def mentions(self) -> list[str]:
        """QQ numbers (as strings) mentioned with ``at`` segments."""
        return [
            str((seg.get("data") or {}).get("qq"))
            for seg in self.segments
            if seg.get("type") == "at"
        ]

    @property
    def images(self) -> list[str]:
        """``file`` (or ``url``) of every image segment."""
        return [
            str((seg.get("data") or {}).get("file") or (seg.get("data") or {}).get("url") or "")
            for seg in self.segments
            if seg.get("type") == "image"
        ]


@dataclass
class ApiCall:
    """One API call made by the bot, in the order received."""

    action: str
    params: dict[str, Any]
    echo: Any
    at: float  # wall-clock time the call was received
    response: dict[str, Any] | None = None
    sent: SentMessage | None = field(default=None, repr=False)
    mono: float = field(default=0.0, repr=False)


class ApiError(Exception):
    """Raise from a custom API handler to answer with ``status: failed``."""

    def __init__(self, retcode: int = 100, message: str = "failed") -> None:
        super().__init__(message)
        self.retcode = retcode
        self.message = message


class ConnectionRejected(ConnectionError):
    """The bot answered the WebSocket handshake with an HTTP error (token / path / duplicate)."""


def _ok(data: Any) -> dict[str, Any]:
    return {"status": "ok", "retcode": 0, "data": data}


def _failed(retcode: int, message: str) -> dict[str, Any]:
    return {
        "status": "failed",
        "retcode": retcode,
        "data": None,
        "msg": message,
        "wording": message,
    }


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _existing_file(path: str | Path) -> Path:
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise FileNotFoundError(str(resolved))
    return resolved


# --------------------------------------------------------------------------------------
# Tiny HTTP file server (so ``image`` segments built from local files have a real URL)
# --------------------------------------------------------------------------------------


class _FileServer:
    def __init__(self) -> None:
        self._files: dict[str, Path] = {}
        self._server: asyncio.Server | None = None
        self._port = 0

    async def url_for(self, path: Path) -> str:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self._port = self._server.sockets[0].getsockname()[1]
        token = secrets.token_hex(8)
        self._files[token] = path
        return f"http://127.0.0.1:{self._port}/{token}/{quote(path.name)}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode("latin-1").split()
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                del line
            method = request[0] if request else ""
            parts = unquote(request[1]).split("/") if len(request) > 1 else []
            path = self._files.get(parts[1]) if len(parts) > 2 else None
            if method in ("GET", "HEAD") and path is not None:
                body = await asyncio.to_thread(path.read_bytes)
                ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n"
            else:
                body, head = b"not found", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (OSError, IndexError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None


# --------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------


@dataclass
class _Pending:
    user_id: int
    group_id: int | None
    message_id: int
    t0: float
    future: asyncio.Future[SentMessage]


class OneBotSimulator:
    """A OneBot v11 implementation connected to the bot over reverse WebSocket.

    ``sent`` holds every message the bot sent, ``api_calls`` every API call, both in the
    order they arrived. ``events`` holds every event the simulator posted.
    """

    # When set, ask_private/ask_group only take a message sent with one of these actions
    # as the answer. A bot that sends its replies with send_msg and its own notices with
    # send_private_msg/send_group_msg (as this project's outbox does) can then be asked
    # without a queued notice being mistaken for the answer.
    reply_actions: frozenset[str] | None = None

    def __init__(
        self,
        url: str = DEFAULT_URL,
        self_id: int = 10000,
        access_token: str | None = None,
        heartbeat_interval: float = 5.0,
        *,
        nickname: str = "小店",
        first_message_id: int | None = None,
        reject_grace: float = 3.0,
    ) -> None:
        self.url = url
        self.self_id = int(self_id)
        self.access_token = access_token or None
        self.heartbeat_interval = heartbeat_interval
        self.nickname = nickname
        #: How long HTTP rejections of the handshake (401/403/404) are retried before
        #: giving up; covers a restarted bot still holding the previous connection.
        self.reject_grace = reject_grace

        self.sent: list[SentMessage] = []
        self.api_calls: list[ApiCall] = []
        self.events: list[dict[str, Any]] = []

        start = first_message_id if first_message_id is not None else secrets.randbelow(1 << 29) + 1
        self._ids = itertools.count(start)
        self._ws: ClientConnection | None = None
        self._recv_task: asyncio.Task[None] | None = None
        self._hb_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._new_send = asyncio.Event()
        self._closed_reason: str | None = None
        self._event_mark = 0  # len(self.sent) when the last event was posted

        self._messages: dict[int, dict[str, Any]] = {}
        self._deleted: set[int] = set()
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}
        self._members: dict[tuple[int, int], dict[str, Any]] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self._send_listeners: list[Callable[[SentMessage], None]] = []
        self._api_listeners: list[Callable[[ApiCall], None]] = []
        self._files = _FileServer()

    # ---------------------------------------------------------------- connection

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._closed_reason is None

    async def connect(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Connect (retrying until ``timeout``), then post the lifecycle ``connect`` event."""
        if self._ws is not None:
            raise RuntimeError("simulator is already connected")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        headers = {"X-Self-ID": str(self.self_id), "X-Client-Role": "Universal"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        last_error: BaseException | None = None
        rejected_since: float | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"could not connect to {self.url} within {timeout:g}s (last error: {last_error!r})"
                )
            try:
                ws = await ws_connect(
                    self.url,
                    additional_headers=headers,
                    user_agent_header="OneBot/11",
                    open_timeout=max(0.1, min(remaining, 10.0)),
                    max_size=64 * 1024 * 1024,
                    proxy=None,
                )
                break
            except InvalidStatus as exc:
                last_error = exc
                now = loop.time()
                rejected_since = now if rejected_since is None else rejected_since
                if now - rejected_since >= self.reject_grace:
                    status = exc.response.status_code
                    raise ConnectionRejected(
                        f"{self.url} rejected the OneBot handshake with HTTP {status}: wrong access "
                        f"token, wrong path, or a bot {self.self_id} is already connected"
                    ) from exc
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                last_error = exc
                rejected_since = None
            await asyncio.sleep(max(0.0, min(0.2, deadline - loop.time())))

        self._ws = ws
        self._closed_reason = None
        await self._post(
            {"meta_event_type": "lifecycle", "sub_type": "connect"}, post_type="meta_event"
        )
        self._recv_task = asyncio.create_task(self._recv_loop(ws), name="onebot-sim-recv")
        if self.heartbeat_interval and self.heartbeat_interval > 0:
            self._hb_task = asyncio.create_task(self._heartbeat_loop(), name="onebot-sim-heartbeat")

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._hb_task is not None:
            self._hb_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._hb_task
            self._hb_task = None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._recv_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._recv_task, 5)
            self._recv_task = None
        for task in list(self._tasks):
            task.cancel()
        self._closed_reason = self._closed_reason or "closed by simulator"
        self._ws = None
        self._wake()
        await self._files.close()

    async def __aenter__(self) -> OneBotSimulator:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_closed(self) -> None:
        """Wait until the connection ends (e.g. the bot shut down)."""
        if self._recv_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self._recv_task)

    # ---------------------------------------------------------------- low level I/O

    def _next_id(self) -> int:
        return next(self._ids)

    async def _post(self, payload: dict[str, Any], *, post_type: str | None = None) -> None:
        if self._ws is None or self._closed_reason is not None:
            raise ConnectionError(f"simulator is not connected ({self._closed_reason or 'never'})")
        event = {"time": int(time.time()), "self_id": self.self_id}
        if post_type is not None:
            event["post_type"] = post_type
        event.update(payload)
        await self._ws.send(json.dumps(event, ensure_ascii=False))
        if event.get("post_type") != "meta_event":
            self.events.append(event)

    async def _heartbeat_loop(self) -> None:
        interval = float(self.heartbeat_interval)
        with contextlib.suppress(ConnectionClosed, ConnectionError):
            while True:
                await asyncio.sleep(interval)
                await self._post(
                    {
                        "meta_event_type": "heartbeat",
                        "status": {"online": True, "good": True},
                        "interval": int(interval * 1000),
                    },
                    post_type="meta_event",
                )

    async def _recv_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                try:
                    frame = json.loads(raw)
                except (TypeError, ValueError):
                    continue
                if isinstance(frame, dict) and "action" in frame:
                    await self._handle_call(ws, frame)
        except ConnectionClosed as exc:
            self._closed_reason = f"connection closed: {exc}"
        finally:
            if self._closed_reason is None:
                code = ws.close_code
                self._closed_reason = f"connection closed (code {code})"
            self._wake()

    def _wake(self) -> None:
        event, self._new_send = self._new_send, asyncio.Event()
        event.set()

    async def _handle_call(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        params = frame.get("params")
        call = ApiCall(
            action=str(frame.get("action")),
            params=params if isinstance(params, dict) else {},
            echo=frame.get("echo"),
            at=time.time(),
            mono=time.perf_counter(),
        )
        self.api_calls.append(call)
        if call.action in SEND_ACTIONS or call.action in FORWARD_ACTIONS:
            call.sent = self._record_send(call)
        for listener in list(self._api_listeners):
            listener(call)
        result = self._dispatch(call)
        if inspect.isawaitable(result):
            task = asyncio.create_task(self._respond_later(ws, call, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await self._respond(ws, call, result)

    async def _respond_later(
        self, ws: ClientConnection, call: ApiCall, result: Awaitable[Any]
    ) -> None:
        try:
            response = _ok(await result)
        except ApiError as exc:
            response = _failed(exc.retcode, exc.message)
        except Exception as exc:
            response = _failed(1400, repr(exc))
        await self._respond(ws, call, response)

    async def _respond(self, ws: ClientConnection, call: ApiCall, response: dict[str, Any]) -> None:
        response = {**response, "echo": call.echo}
        call.response = response
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(response, ensure_ascii=False))

    def _dispatch(self, call: ApiCall) -> dict[str, Any] | Awaitable[Any]:
        custom = self._handlers.get(call.action)
        try:
            if custom is not None:
                result = custom(call.params)
                return result if inspect.isawaitable(result) else _ok(result)
            builtin = getattr(self, f"_api_{call.action}", None)
            if builtin is None:
                return _failed(1404, f"unsupported action: {call.action}")
            return _ok(builtin(call))
        except ApiError as exc:
            return _failed(exc.retcode, exc.message)
        except Exception as exc:
            return _failed(1400, repr(exc))

    # ---------------------------------------------------------------- recording sends

    def _record_send(self, call: ApiCall) -> SentMessage:
        params = call.params
        action = call.action
        if action in ("send_group_msg", "send_group_forward_msg"):
            is_group = True
        elif action in ("send_private_msg", "send_private_forward_msg"):
            is_group = False
        else:  # send_msg / send_forward_msg: message_type decides, else group_id
            kind = params.get("message_type")
            is_group = kind == "group" or (kind is None and params.get("group_id") is not None)
        target_type = "group" if is_group else "private"
        target_id = _int(params.get("group_id" if is_group else "user_id"))

        if action in FORWARD_ACTIONS:
            segments: list[Segment] = []
            for node in normalize_message(params.get("messages")):
                content = normalize_message((node.get("data") or {}).get("content"))
                if segments and content:
                    segments.append(Seg.text("\n"))
                segments.extend(content)
        else:
            segments = normalize_message(
                params.get("message"), auto_escape=bool(params.get("auto_escape"))
            )
        sent = SentMessage(
            action=action,
            target_type=target_type,
            target_id=target_id,
            segments=segments,
            text=render_text(segments),
            at=call.at,
            message_id=self._next_id(),
            params=params,
            mono=call.mono,
        )
        sender = {"user_id": self.self_id, "nickname": self.nickname}
        self._store_message(sent.message_id, target_type, sender, segments, target_id)
        self.sent.append(sent)
        for listener in list(self._send_listeners):
            listener(sent)
        self._wake()
        return sent

    def _store_message(
        self,
        message_id: int,
        message_type: str,
        sender: dict[str, Any],
        segments: list[Segment],
        target_id: int,
    ) -> None:
        record: dict[str, Any] = {
            "time": int(time.time()),
            "message_type": message_type,
            "message_id": message_id,
            "real_id": message_id,
            "message_seq": message_id,
            "sender": sender,
            "message": segments,
            "raw_message": to_cq(segments),
        }
        if message_type == "group":
            record["group_id"] = target_id
        else:
            record["user_id"] = sender.get("user_id")
        self._messages[message_id] = record

    # ---------------------------------------------------------------- listeners / config

    def add_send_listener(self, listener: Callable[[SentMessage], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously for each bot message; returns a remover."""
        self._send_listeners.append(listener)
        return lambda: self._send_listeners.remove(listener)

    def add_api_listener(self, listener: Callable[[ApiCall], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously for each API call; returns a remover."""
        self._api_listeners.append(listener)
        return lambda: self._api_listeners.remove(listener)

    def set_api_handler(self, action: str, handler: Callable[[dict[str, Any]], Any] | None) -> None:
        """Override (or with ``None`` restore) the answer to ``action``.

        ``handler(params)`` returns the ``data`` of the response (sync or async); raise
        :class:`ApiError` to answer ``status: failed``. Send actions are still recorded.
        """
        if handler is None:
            self._handlers.pop(action, None)
        else:
            self._handlers[action] = handler

    def set_user(self, user_id: int, nickname: str) -> None:
        self._users[int(user_id)] = nickname

    def set_group(self, group_id: int, name: str) -> None:
        self._groups[int(group_id)] = name

    def set_member(
        self,
        group_id: int,
        user_id: int,
        *,
        role: str = "member",
        nickname: str | None = None,
        card: str = "",
    ) -> None:
        """Declare a group member (answers ``get_group_member_info``)."""
        nick = nickname or self._users.get(int(user_id)) or f"用户{user_id}"
        self._groups.setdefault(int(group_id), f"群{group_id}")
        self._members[(int(group_id), int(user_id))] = {
            "user_id": int(user_id),
            "nickname": nick,
            "card": card,
            "role": role,
        }

    async def file_url(self, path: str | Path) -> str:
        """Serve a local file over HTTP (127.0.0.1) so the bot can download it."""
        return await self._files.url_for(await asyncio.to_thread(_existing_file, path))

    async def image_segment(self, url_or_path: str) -> Segment:
        """Image segment from an http(s) URL or a local file (served by :meth:`file_url`)."""
        if url_or_path.startswith(("http://", "https://")):
            return Seg.image(url_or_path)
        url = await self.file_url(url_or_path)
        return Seg.image(Path(url_or_path).name, url)

    # ---------------------------------------------------------------- posting events

    @staticmethod
    def _segments(message: MessageLike) -> list[Segment]:
        # A plain str is ONE literal text segment: CQ codes are deliberately not parsed.
        if isinstance(message, str):
            return [Seg.text(message)]
        if isinstance(message, dict):
            return [_copy_segment(message)]
        return normalize_message(list(message))

    async def send_private(
        self,
        user_id: int,
        message: MessageLike,
        nickname: str = "顾客",
        *,
        message_id: int | None = None,
    ) -> int:
        """Post a private (friend) message event from ``user_id``; returns its message_id."""
        user_id = int(user_id)
        segments = self._segments(message)
        mid = message_id if message_id is not None else self._next_id()
        self._users[user_id] = nickname
        sender = {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0}
        self._store_message(mid, "private", sender, segments, user_id)
        self._event_mark = len(self.sent)
        await self._post(
            {
                "message_type": "private",
                "sub_type": "friend",
                "message_id": mid,
                "user_id": user_id,
                "message": segments,
                "raw_message": to_cq(segments),
                "font": 0,
                "sender": sender,
            },
            post_type="message",
        )
        return mid

    async def send_group(
        self,
        group_id: int,
        user_id: int,
        message: MessageLike,
        role: str = "member",
        nickname: str = "顾客",
        *,
        card: str = "",
        message_id: int | None = None,
    ) -> int:
        """Post a group message event from ``user_id`` in ``group_id``; returns its message_id."""
        group_id, user_id = int(group_id), int(user_id)
        segments = self._segments(message)
        mid = message_id if message_id is not None else self._next_id()
        self._users.setdefault(user_id, nickname)
        self.set_member(group_id, user_id, role=role, nickname=nickname, card=card)
        sender = {"user_id": user_id, "nickname": nickname, "card": card, "role": role}
        self._store_message(mid, "group", sender, segments, group_id)
        self._event_mark = len(self.sent)
        await self._post(
            {
                "message_type": "group",
                "sub_type": "normal",
                "message_id": mid,
                "group_id": group_id,
                "user_id": user_id,
                "anonymous": None,
                "message": segments,
                "raw_message": to_cq(segments),
                "font": 0,
                "sender": sender,
            },
            post_type="message",
        )
        return mid

    async def send_event(self, event: dict[str, Any]) -> None:
        """Post any raw event (notice, request, ...); ``time``/``self_id`` are filled in."""
        self._event_mark = len(self.sent)
        await self._post(dict(event))

    # ---------------------------------------------------------------- waiting for the bot

    def mark(self) -> int:
        """Current position in :attr:`sent`; pass as ``since=`` to look from here on."""
        return len(self.sent)

    async def wait_for_send(
        self,
        predicate: SendPredicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> SentMessage:
        """Return the first bot message matching ``predicate`` sent after now (or ``since``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = len(self.sent) if since is None else since
        while True:
            while index < len(self.sent):
                message = self.sent[index]
                index += 1
                if predicate is None or predicate(message):
                    return message
            if self._closed_reason is not None:
                raise ConnectionError(f"bot connection is gone: {self._closed_reason}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no matching bot message within {timeout:g}s")
            waiter = self._new_send
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), remaining)

    async def collect(
        self,
        predicate: SendPredicate | None = None,
        within: float = 0.5,
        *,
        since: int | None = None,
    ) -> list[SentMessage]:
        """Wait ``within`` seconds, then return every matching message sent since ``since``."""
        start = len(self.sent) if since is None else since
        await asyncio.sleep(within)
        return [m for m in self.sent[start:] if predicate is None or predicate(m)]

    def _answer(self, predicate: SendPredicate) -> SendPredicate:
        actions = self.reply_actions
        if actions is None:
            return predicate
        return lambda m: m.action in actions and predicate(m)

    @staticmethod
    def to_private(user_id: int) -> SendPredicate:
        return lambda m: m.target_type == "private" and m.target_id == int(user_id)

    @staticmethod
    def to_group(group_id: int) -> SendPredicate:
        return lambda m: m.target_type == "group" and m.target_id == int(group_id)

    def _unanswered(self, start: int, what: str, timeout: float) -> TimeoutError:
        others = "; ".join(
            f"{m.target_type} {m.target_id}: {m.text[:60]!r}" for m in self.sent[start:]
        )
        return TimeoutError(
            f"no reply to {what} within {timeout:g}s"
            + (f" (bot sent meanwhile: {others})" if others else "")
        )

    async def ask_private(
        self,
        user_id: int,
        message: MessageLike,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        nickname: str = "顾客",
    ) -> SentMessage:
        """Send a private message and return the bot's next message to that user."""
        start = len(self.sent)
        await self.send_private(user_id, message, nickname)
        try:
            return await self.wait_for_send(
                self._answer(self.to_private(user_id)), timeout, since=start
            )
        except TimeoutError:
            raise self._unanswered(start, f"private {user_id} {message!r}", timeout) from None

    async def ask_group(
        self,
        group_id: int,
        user_id: int,
        message: MessageLike,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        role: str = "member",
        nickname: str = "顾客",
    ) -> SentMessage:
        """Send a group message and return the bot's next message to that group."""
        start = len(self.sent)
        await self.send_group(group_id, user_id, message, role, nickname)
        try:
            return await self.wait_for_send(
                self._answer(self.to_group(group_id)), timeout, since=start
            )
        except TimeoutError:
            raise self._unanswered(start, f"group {group_id} {message!r}", timeout) from None

    async def expect_no_reply(
        self,
        target: Target | None = None,
        within: float = 1.0,
        *,
        user_id: int | None = None,
        group_id: int | None = None,
        since: int | None = None,
    ) -> None:
        """Assert the bot sends nothing to ``target`` for ``within`` seconds.

        ``target`` is ``("private", user_id)`` / ``("group", group_id)`` (or use the
        ``user_id=`` / ``group_id=`` keywords); ``None`` means any chat. Messages sent
        since the last event this simulator posted also count (override with ``since``).
        """
        if target is None and group_id is not None:
            target = ("group", group_id)
        elif target is None and user_id is not None:
            target = ("private", user_id)
        if target is None:
            predicate: SendPredicate | None = None
        elif target[0] == "group":
            predicate = self.to_group(target[1])
        else:
            predicate = self.to_private(target[1])
        start = self._event_mark if since is None else since
        try:
            message = await self.wait_for_send(predicate, within, since=start)
        except TimeoutError:
            return
        raise AssertionError(
            f"expected no reply to {target or 'anyone'}, but the bot sent "
            f"{message.target_type} {message.target_id}: {message.text!r}"
        )

    # ---------------------------------------------------------------- load generation

    async def run_load(
        self,
        users: int,
        commands: int,
        message: MessageLike,
        group_id: int | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
        base_user_id: int = 20001,
    ) -> dict[str, Any]:
        """``users`` concurrent users each send ``commands`` messages, one after another.

        Latency = event sent -> the bot's send call for that user. In groups a reply is
        matched by its ``reply`` segment (quoted message_id), then by ``at`` of the user,
        then to the oldest pending user in that group; in private chats by the target user.
        """
        loop = asyncio.get_running_loop()
        pending: dict[int, _Pending] = {}  # by user_id (one outstanding command per user)
        by_message: dict[int, _Pending] = {}

        def resolve(entry: _Pending, sent: SentMessage) -> None:
            pending.pop(entry.user_id, None)
            by_message.pop(entry.message_id, None)
            if not entry.future.done():
                entry.future.set_result(sent)

        def on_send(sent: SentMessage) -> None:
            if sent.target_type == "private":
                entry = pending.get(sent.target_id)
                if entry is not None and entry.group_id is None:
                    resolve(entry, sent)
                return
            in_group = [p for p in pending.values() if p.group_id == sent.target_id]
            if not in_group:
                return
            quoted = sent.reply_to
            if quoted is not None and quoted in by_message:
                resolve(by_message[quoted], sent)
                return
            mentioned = set(sent.mentions)
            for entry in sorted(in_group, key=lambda p: p.t0):
                if str(entry.user_id) in mentioned:
                    resolve(entry, sent)
                    return
            resolve(min(in_group, key=lambda p: p.t0), sent)

        latencies: list[float] = []
        counters = {"timeouts": 0, "errors": 0}

        async def user_loop(user_id: int) -> None:
            for _ in range(commands):
                mid = self._next_id()
                entry = _Pending(user_id, group_id, mid, 0.0, loop.create_future())
                pending[user_id] = entry
                by_message[mid] = entry
                entry.t0 = time.perf_counter()
                try:
                    if group_id is None:
                        await self.send_private(user_id, message, f"压测{user_id}", message_id=mid)
                    else:
                        await self.send_group(
                            group_id, user_id, message, "member", f"压测{user_id}", message_id=mid
                        )
                    sent = await asyncio.wait_for(entry.future, timeout)
                except TimeoutError:
                    counters["timeouts"] += 1
                    continue
                except ConnectionError:
                    counters["errors"] += 1
                    return
                finally:
                    pending.pop(user_id, None)
                    by_message.pop(mid, None)
                latencies.append((sent.mono - entry.t0) * 1000.0)

        remove = self.add_send_listener(on_send)
        started = time.perf_counter()
        try:
            await asyncio.gather(*(user_loop(base_user_id + i) for i in range(users)))
        finally:
            remove()
        duration = time.perf_counter() - started
        total = users * commands
        ok = len(latencies)
        return {
            "mode": "private" if group_id is None else "group",
            "group_id": group_id,
            "message": message
            if isinstance(message, str)
            else render_text(self._segments(message)),
            "users": users,
            "commands_per_user": commands,
            "total": total,
            "ok": ok,
            "timeouts": counters["timeouts"],
            "errors": total - ok - counters["timeouts"],  # incl. commands never sent
            "duration_s": round(duration, 4),
            "throughput_cmd_s": round(ok / duration, 2) if duration > 0 else 0.0,
            "latency_ms": {
                "min": round(min(latencies), 3) if latencies else 0.0,
                "mean": round(sum(latencies) / ok, 3) if latencies else 0.0,
                "p50": round(percentile(latencies, 50), 3),
                "p90": round(percentile(latencies, 90), 3),
                "p99": round(percentile(latencies, 99), 3),
                "max": round(max(latencies), 3) if latencies else 0.0,
            },
        }

    # ---------------------------------------------------------------- built-in API answers

    def _api_send_msg(self, call: ApiCall) -> dict[str, Any]:
        assert call.sent is not None
        return {"message_id": call.sent.message_id}

    _api_send_private_msg = _api_send_msg
    _api_send_group_msg = _api_send_msg

    def _api_send_forward_msg(self, call: ApiCall) -> dict[str, Any]:
        assert call.sent is not None
        return {"message_id": call.sent.message_id, "forward_id": str(call.sent.message_id)}

    _api_send_private_forward_msg = _api_send_forward_msg
    _api_send_group_forward_msg = _api_send_forward_msg

    def _api_get_login_info(self, call: ApiCall) -> dict[str, Any]:
        return {"user_id": self.self_id, "nickname": self.nickname}

    def _api_get_msg(self, call: ApiCall) -> dict[str, Any]:
        message_id = _int(call.params.get("message_id"), -1)
        record = self._messages.get(message_id)
        if record is None or message_id in self._deleted:
            raise ApiError(1404, f"message {message_id} not found")
        return record

    def _api_delete_msg(self, call: ApiCall) -> None:
        message_id = _int(call.params.get("message_id"), -1)
        if message_id not in self._messages:
            raise ApiError(1404, f"message {message_id} not found")
        self._deleted.add(message_id)

    def _member_info(self, group_id: int, user_id: int) -> dict[str, Any]:
        base = self._members.get((group_id, user_id)) or {
            "user_id": user_id,
            "nickname": self.nickname
            if user_id == self.self_id
            else self._users.get(user_id, f"用户{user_id}"),
            "card": "",
            "role": "member",
        }
        return {
            "group_id": group_id,
            "sex": "unknown",
            "age": 0,
            "area": "",
            "join_time": 0,
            "last_sent_time": int(time.time()),
            "level": "1",
            "unfriendly": False,
            "title": "",
            "title_expire_time": 0,
            "card_changeable": False,
            "shut_up_timestamp": 0,
            **base,
        }

    def _api_get_group_member_info(self, call: ApiCall) -> dict[str, Any]:
        return self._member_info(
            _int(call.params.get("group_id")), _int(call.params.get("user_id"))
        )

    def _api_get_group_member_list(self, call: ApiCall) -> list[dict[str, Any]]:
        group_id = _int(call.params.get("group_id"))
        return [self._member_info(g, u) for (g, u) in self._members if g == group_id]

    def _api_get_stranger_info(self, call: ApiCall) -> dict[str, Any]:
        user_id = _int(call.params.get("user_id"))
        nickname = self._users.get(user_id, f"用户{user_id}")
        return {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0}

    def _group_info(self, group_id: int) -> dict[str, Any]:
        members = sum(1 for (g, _u) in self._members if g == group_id)
        return {
            "group_id": group_id,
            "group_name": self._groups.get(group_id, f"群{group_id}"),
            "member_count": members,
            "max_member_count": 500,
        }

    def _api_get_group_info(self, call: ApiCall) -> dict[str, Any]:
        return self._group_info(_int(call.params.get("group_id")))

    def _api_get_group_list(self, call: ApiCall) -> list[dict[str, Any]]:
        return [self._group_info(g) for g in self._groups]

    def _api_get_friend_list(self, call: ApiCall) -> list[dict[str, Any]]:
        private = {e.get("user_id") for e in self.events if e.get("message_type") == "private"}
        return [
            {"user_id": u, "nickname": self._users.get(u, f"用户{u}"), "remark": ""}
            for u in sorted(x for x in private if isinstance(x, int))
        ]

    def _api_get_status(self, call: ApiCall) -> dict[str, Any]:
        return {"online": self.connected, "good": True}

    def _api_get_version_info(self, call: ApiCall) -> dict[str, Any]:
        return {"app_name": "onebot-sim", "app_version": "1.0.0", "protocol_version": "v11"}

    def _api_can_send_image(self, call: ApiCall) -> dict[str, Any]:
        return {"yes": True}

    _api_can_send_record = _api_can_send_image

    def _api_noop(self, call: ApiCall) -> None:
        return None

    _api_set_group_ban = _api_noop
    _api_set_group_kick = _api_noop
    _api_set_group_card = _api_noop
    _api_set_friend_add_request = _api_noop
    _api_set_group_add_request = _api_noop
    _api_send_like = _api_noop


async def run_load(
    url: str,
    users: int,
    commands: int,
    message: MessageLike,
    group_id: int | None = None,
    token: str | None = None,
    *,
    self_id: int = 10000,
    timeout: float = 10.0,  # noqa: ASYNC109
    connect_timeout: float = 30.0,
    base_user_id: int = 20001,
    sim: OneBotSimulator | None = None,
) -> dict[str, Any]:
    """Connect a simulator (unless ``sim`` is given) and run :meth:`OneBotSimulator.run_load`.

    Pass an already-connected ``sim`` to reuse its connection (NoneBot refuses a second
    connection with the same ``X-Self-ID``).
    """
    if sim is not None:
        return await sim.run_load(
            users, commands, message, group_id, timeout=timeout, base_user_id=base_user_id
        )
    owned = OneBotSimulator(url, self_id=self_id, access_token=token)
    await owned.connect(timeout=connect_timeout)
    try:
        return await owned.run_load(
            users, commands, message, group_id, timeout=timeout, base_user_id=base_user_id
        )
    finally:
        await owned.close()


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _label(target_type: str, target_id: int) -> str:
    return f"[群 {target_id}]" if target_type == "group" else f"[私聊 {target_id}]"


def _print_sent(message: SentMessage, prefix: str = "") -> None:
    text = message.text if message.text else "(空消息)"
    lines = text.split("\n")
    head = f"{prefix}{_label(message.target_type, message.target_id)} "
    print(head + lines[0], flush=True)
    for line in lines[1:]:
        print(" " * len(head) + line, flush=True)


def _new_sim(args: argparse.Namespace) -> OneBotSimulator:
    return OneBotSimulator(
        args.url, self_id=args.self_id, access_token=args.token, heartbeat_interval=args.heartbeat
    )


CHAT_HELP = """命令 (commands):
  :user <qq>          切换用户 / switch user
  :group <gid>        切换到群聊 / switch to a group chat
  :private            切换到私聊 / switch to private chat
  :role <member|admin|owner>  群内角色 / group role
  :image <url|path>   下一条消息附带图片 (空行则单独发送) / attach an image to the next line
  :at <qq|bot>        下一条消息 @ 某人 / mention someone in the next line
  :reply [message_id] 下一条消息引用 (默认引用机器人上一条消息) / quote a message
  :who                当前身份 / show current identity
  :help               帮助
  :quit               退出"""


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Read stdin in a daemon thread (Ctrl-C / :quit never wait for a blocked readline)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="onebot-sim-stdin", daemon=True).start()
    return queue


async def _chat(args: argparse.Namespace) -> int:
    sim = _new_sim(args)
    await sim.connect(timeout=args.connect_timeout)
    interactive = sys.stdin.isatty()
    user: int = args.user
    group: int | None = args.group
    role: str = args.role
    attachments: list[Segment] = []

    def prompt() -> None:
        if interactive:
            where = (
                f"{_label('group', group)} {user}" if group is not None else _label("private", user)
            )
            sys.stdout.write(f"{where}> ")
            sys.stdout.flush()

    def show(message: SentMessage) -> None:
        if interactive:
            sys.stdout.write("\r")
        _print_sent(message)
        prompt()

    def show_api(call: ApiCall) -> None:
        if call.sent is None:
            if interactive:
                sys.stdout.write("\r")
            print(
                f"  (api) {call.action} {json.dumps(call.params, ensure_ascii=False)}", flush=True
            )

    sim.add_send_listener(show)
    if args.verbose:
        sim.add_api_listener(show_api)
    print(f"已连接 {args.url} (bot {args.self_id})。输入 :help 查看命令。", flush=True)
    lines = _stdin_lines(asyncio.get_running_loop())
    quit_requested = False
    try:
        while True:
            prompt()
            line = await lines.get()
            if line is None:
                break
            line = line.rstrip("\r\n")
            if line.startswith(":"):
                cmd, _, arg = line[1:].strip().partition(" ")
                arg = arg.strip()
                try:
                    if cmd in ("quit", "q", "exit"):
                        quit_requested = True
                        break
                    if cmd == "help":
                        print(CHAT_HELP)
                    elif cmd == "user":
                        user = int(arg)
                    elif cmd == "group":
                        group = int(arg)
                    elif cmd == "private":
                        group = None
                    elif cmd == "role":
                        if arg not in ("member", "admin", "owner"):
                            raise ValueError("role must be member, admin or owner")
                        role = arg
                    elif cmd == "image":
                        attachments.append(await sim.image_segment(arg))
                    elif cmd == "at":
                        attachments.append(Seg.at(sim.self_id if arg == "bot" else int(arg)))
                    elif cmd == "reply":
                        if arg:
                            attachments.insert(0, Seg.reply(int(arg)))
                        else:
                            here = (
                                sim.to_group(group) if group is not None else sim.to_private(user)
                            )
                            last = next((m for m in reversed(sim.sent) if here(m)), None)
                            if last is None:
                                raise ValueError("no bot message to quote here yet")
                            attachments.insert(0, Seg.reply(last.message_id))
                    elif cmd == "who":
                        where = f"群 {group} ({role})" if group is not None else "私聊"
                        print(f"用户 {user} @ {where}; bot {sim.self_id}")
                    else:
                        print(f"未知命令 :{cmd} (:help)")
                except (ValueError, OSError) as exc:
                    print(f"错误: {exc}")
                continue
            if not line and not attachments:
                continue
            segments = [*attachments, *([Seg.text(line)] if line else [])]
            attachments = []
            if group is None:
                await sim.send_private(user, segments)
            else:
                await sim.send_group(group, user, segments, role)
        if not quit_requested and sim.connected:
            await asyncio.sleep(args.linger)  # stdin ended: let late replies print
    except ConnectionError as exc:
        print(f"连接已断开: {exc}", file=sys.stderr)
        return 1
    finally:
        await sim.close()
    return 0


async def _script(args: argparse.Namespace, lines: list[str]) -> int:
    sim = _new_sim(args)
    await sim.connect(timeout=args.connect_timeout)
    failures = 0
    last_replies: list[SentMessage] = []
    try:
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            cmd, _, rest = line.partition(" ")
            if cmd == "sleep":
                await asyncio.sleep(float(rest))
                continue
            if cmd == "expect":
                if any(rest in m.text for m in last_replies):
                    print(f"  ✓ expect {rest!r}")
                else:
                    failures += 1
                    print(f"  ✗ line {lineno}: expected {rest!r} in the reply", file=sys.stderr)
                continue
            parts = rest.split(" ", 2 if cmd == "group" else 1)
            if cmd not in ("private", "group") or len(parts) < (3 if cmd == "group" else 2):
                print(f"line {lineno}: cannot parse {line!r}", file=sys.stderr)
                return 2
            text = parts[-1].replace("\\n", "\n")
            start = sim.mark()
            if cmd == "private":
                user_id, group_id = int(parts[0]), None
                target = sim.to_private(user_id)
                print(f"> {_label('private', user_id)} {text}", flush=True)
                await sim.send_private(user_id, text)
            else:
                group_id, user_id = int(parts[0]), int(parts[1])
                target = sim.to_group(group_id)
                print(f"> {_label('group', group_id)} {user_id}: {text}", flush=True)
                await sim.send_group(group_id, user_id, text)
            try:
                await sim.wait_for_send(target, args.timeout, since=start)
            except TimeoutError:
                failures += 1
                last_replies = []
                print(f"! line {lineno}: no reply within {args.timeout:g}s", file=sys.stderr)
                continue
            last_replies = await sim.collect(target, args.settle, since=start)
            for message in last_replies:
                _print_sent(message, "< ")
    except ConnectionError as exc:
        print(f"connection lost: {exc}", file=sys.stderr)
        return 1
    finally:
        await sim.close()
    return 1 if failures else 0


def _format_load(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    where = f"group {result['group_id']}" if result["group_id"] is not None else "private"
    return "\n".join(
        [
            f"load: {result['users']} users x {result['commands_per_user']} commands "
            f"{result['message']!r} ({where})",
            f"  replies     {result['ok']}/{result['total']} ok, {result['timeouts']} timeouts, "
            f"{result['errors']} errors",
            f"  duration    {result['duration_s']:.3f} s",
            f"  throughput  {result['throughput_cmd_s']:.2f} commands/s",
            f"  latency ms  p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}  "
            f"max {lat['max']:.1f}",
        ]
    )


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    sim = _new_sim(args)
    await sim.connect(timeout=args.connect_timeout)
    try:
        return await sim.run_load(
            args.users,
            args.commands,
            args.message,
            args.group,
            timeout=args.timeout,
            base_user_id=args.base_user,
        )
    finally:
        await sim.close()


MODES = ("chat", "script", "load")
_CHAT_FLAGS = ("--user", "--group", "--role", "--linger")


def _with_default_mode(argv: list[str]) -> list[str]:
    """No mode given -> ``chat``; chat flags written without the mode word are moved after it."""
    if any(token in MODES for token in argv):
        return argv
    head: list[str] = []
    chat: list[str] = ["chat"]
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _CHAT_FLAGS:
            chat.extend(argv[i : i + 2])
            i += 2
            continue
        (chat if token.split("=", 1)[0] in _CHAT_FLAGS else head).append(token)
        i += 1
    return head + chat


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onebot_sim",
        description="OneBot v11 implementation simulator (reverse WebSocket, Universal role).",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"bot WebSocket URL (default {DEFAULT_URL})"
    )
    parser.add_argument("--token", default=None, help="access token (Authorization: Bearer ...)")
    parser.add_argument("--self-id", type=int, default=10000, help="bot QQ (X-Self-ID)")
    parser.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds to keep retrying"
    )
    parser.add_argument("--heartbeat", type=float, default=5.0, help="heartbeat interval, seconds")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print non-send API calls"
    )
    sub = parser.add_subparsers(dest="mode")

    chat = sub.add_parser("chat", help="interactive terminal chat (default)")
    chat.add_argument("--user", type=int, default=10001, help="initial user QQ")
    chat.add_argument("--group", type=int, default=None, help="start in this group chat")
    chat.add_argument("--role", default="member", choices=["member", "admin", "owner"])
    chat.add_argument("--linger", type=float, default=2.0, help="wait for replies after stdin EOF")

    script = sub.add_parser("script", help="send lines from a file, print the replies")
    script.add_argument("file", nargs="?", default="-", help="script file ('-' = stdin)")
    script.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per reply")
    script.add_argument(
        "--settle", type=float, default=0.3, help="extra seconds to collect more replies"
    )

    load = sub.add_parser("load", help="concurrent users, latency and throughput")
    load.add_argument("--users", type=int, default=10)
    load.add_argument("--commands", type=int, default=10, help="commands per user")
    load.add_argument("--message", default="/商品")
    load.add_argument(
        "--group", type=int, default=None, help="send in this group instead of private"
    )
    load.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per reply")
    load.add_argument("--base-user", type=int, default=20001, help="first simulated user QQ")
    load.add_argument("--json", dest="json_out", default=None, help="write the result as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(
        _with_default_mode(list(sys.argv[1:] if argv is None else argv))
    )
    try:
        if args.mode == "script":
            if args.file == "-":
                lines = sys.stdin.read().splitlines()
            else:
                lines = Path(args.file).read_text(encoding="utf-8").splitlines()
            return asyncio.run(_script(args, lines))
        if args.mode == "load":
            result = asyncio.run(_load(args))
            print(_format_load(result))
            if args.json_out:
                Path(args.json_out).write_text(
                    json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
                )
            return 0 if result["ok"] == result["total"] else 2
        return asyncio.run(_chat(args))
    except (TimeoutError, ConnectionRejected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
