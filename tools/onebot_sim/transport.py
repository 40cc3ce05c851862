"""The reverse WebSocket connection to the bot, as a OneBot v11 implementation makes it.

:class:`Transport` connects with the ``Universal`` role and NapCat's headers (retrying
until the bot is up), posts the lifecycle ``connect`` event and heartbeats, reads the
bot's API call frames and hands each one to a callback together with a function that
answers it on the same connection. It knows nothing about what the calls mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

__all__ = ["DEFAULT_URL", "ConnectionRejected", "FrameHandler", "Reply", "Transport"]

DEFAULT_URL = "ws://127.0.0.1:8080/onebot/v11/ws"

#: Sends one response frame on the connection the call came in on.
Reply = Callable[[dict[str, Any]], Awaitable[None]]
#: Handles one API call frame from the bot; answers it through the ``Reply``.
FrameHandler = Callable[[dict[str, Any], Reply], Awaitable[None]]


class ConnectionRejected(ConnectionError):
    """The bot answered the WebSocket handshake with an HTTP error (token / path / duplicate)."""


class Transport:
    """One reverse WebSocket connection: connect, post events, heartbeats, receive calls."""

    def __init__(
        self,
        url: str,
        self_id: int,
        access_token: str | None,
        heartbeat_interval: float,
        *,
        reject_grace: float,
        on_frame: FrameHandler,
        on_closed: Callable[[], None],
    ) -> None:
        self.url = url
        self.self_id = self_id
        self.access_token = access_token
        self.heartbeat_interval = heartbeat_interval
        self.reject_grace = reject_grace
        self._on_frame = on_frame
        self._on_closed = on_closed
        self._ws: ClientConnection | None = None
        self._recv_task: asyncio.Task[None] | None = None
        self._hb_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed_reason: str | None = None

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.closed_reason is None

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
        self.closed_reason = None
        await self.post(
            {"meta_event_type": "lifecycle", "sub_type": "connect"}, post_type="meta_event"
        )
        self._recv_task = asyncio.create_task(self._recv_loop(ws), name="onebot-sim-recv")
        if self.heartbeat_interval and self.heartbeat_interval > 0:
            self._hb_task = asyncio.create_task(self._heartbeat_loop(), name="onebot-sim-heartbeat")

    async def close(self) -> None:
        """Close the connection (idempotent); pending background answers are cancelled."""
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
        self.closed_reason = self.closed_reason or "closed by simulator"
        self._ws = None
        self._on_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection ends (e.g. the bot shut down)."""
        if self._recv_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self._recv_task)

    async def post(
        self, payload: dict[str, Any], *, post_type: str | None = None
    ) -> dict[str, Any]:
        """Send an event (``time`` and ``self_id`` filled in); returns the event as sent."""
        if self._ws is None or self.closed_reason is not None:
            raise ConnectionError(f"simulator is not connected ({self.closed_reason or 'never'})")
        event: dict[str, Any] = {"time": int(time.time()), "self_id": self.self_id}
        if post_type is not None:
            event["post_type"] = post_type
        event.update(payload)
        await self._ws.send(json.dumps(event, ensure_ascii=False))
        return event

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background until it ends or the connection is closed."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat_loop(self) -> None:
        interval = float(self.heartbeat_interval)
        with contextlib.suppress(ConnectionClosed, ConnectionError):
            while True:
                await asyncio.sleep(interval)
                await self.post(
                    {
                        "meta_event_type": "heartbeat",
                        "status": {"online": True, "good": True},
                        "interval": int(interval * 1000),
                    },
                    post_type="meta_event",
                )

    async def _recv_loop(self, ws: ClientConnection) -> None:
        async def reply(response: dict[str, Any]) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(response, ensure_ascii=False))

        try:
            async for raw in ws:
                try:
                    frame = json.loads(raw)
                except (TypeError, ValueError):
                    continue
                if isinstance(frame, dict) and "action" in frame:
                    await self._on_frame(frame, reply)
        except ConnectionClosed as exc:
            self.closed_reason = f"connection closed: {exc}"
        finally:
            if self.closed_reason is None:
                code = ws.close_code
                self.closed_reason = f"connection closed (code {code})"
            self._on_closed()
