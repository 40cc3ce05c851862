"""The simulator itself: a OneBot v11 implementation connected to the bot.

:class:`OneBotSimulator` puts the parts together — the connection
(:class:`~.transport.Transport`), the answers to API calls (:class:`~.api.FakeApi`) and the
record of what went over the wire (:class:`~.recorder.Recorder`) — and adds what a QQ user
does: send private and group messages, and ask the bot something and wait for its answer.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .api import ApiHandler, FakeApi
from .files import FileServer, existing_file
from .recorder import ApiCall, Recorder, SendPredicate, SentMessage, Target, sent_from_call
from .segments import MessageLike, Seg, Segment, event_segments, to_cq
from .transport import DEFAULT_URL, Reply, Transport

__all__ = ["OneBotSimulator"]


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
        start = first_message_id if first_message_id is not None else secrets.randbelow(1 << 29) + 1
        self._ids = itertools.count(start)
        self.recorder = Recorder(closed_reason=lambda: self.transport.closed_reason)
        #: ``reject_grace``: how long HTTP rejections of the handshake (401/403/404) are
        #: retried before giving up; covers a restarted bot still holding the old connection.
        self.transport = Transport(
            url,
            int(self_id),
            access_token or None,
            heartbeat_interval,
            reject_grace=reject_grace,
            on_frame=self._on_call,
            on_closed=self.recorder.wake,
        )
        self.api = FakeApi(
            int(self_id), nickname, online=lambda: self.connected, events=self.recorder.events
        )
        self._files = FileServer()

    # ---------------------------------------------------------------- settings and records

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def self_id(self) -> int:
        return self.transport.self_id

    @property
    def access_token(self) -> str | None:
        return self.transport.access_token

    @property
    def heartbeat_interval(self) -> float:
        return self.transport.heartbeat_interval

    @property
    def reject_grace(self) -> float:
        return self.transport.reject_grace

    @property
    def nickname(self) -> str:
        return self.api.nickname

    @property
    def sent(self) -> list[SentMessage]:
        return self.recorder.sent

    @property
    def api_calls(self) -> list[ApiCall]:
        return self.recorder.api_calls

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.recorder.events

    # ---------------------------------------------------------------- connection

    @property
    def connected(self) -> bool:
        return self.transport.connected

    async def connect(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Connect (retrying until ``timeout``), then post the lifecycle ``connect`` event."""
        await self.transport.connect(timeout)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self.transport.close()
        await self._files.close()

    async def __aenter__(self) -> OneBotSimulator:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_closed(self) -> None:
        """Wait until the connection ends (e.g. the bot shut down)."""
        await self.transport.wait_closed()

    def next_message_id(self) -> int:
        """A fresh message_id (shared by user messages and the bot's)."""
        return next(self._ids)

    # ---------------------------------------------------------------- API calls from the bot

    async def _on_call(self, frame: dict[str, Any], reply: Reply) -> None:
        call = self.recorder.record_call(frame)
        if call.is_send:
            sent = sent_from_call(call, self.next_message_id())
            self.api.store_sent(sent)
            self.recorder.record_send(sent)
            call.sent = sent
        self.recorder.announce_call(call)
        response = self.api.dispatch(call)
        if inspect.isawaitable(response):
            self.transport.spawn(self._answer_later(call, response, reply))
        else:
            await self._answer(call, response, reply)

    async def _answer_later(
        self, call: ApiCall, response: Awaitable[dict[str, Any]], reply: Reply
    ) -> None:
        await self._answer(call, await response, reply)

    @staticmethod
    async def _answer(call: ApiCall, response: dict[str, Any], reply: Reply) -> None:
        response = {**response, "echo": call.echo}
        call.response = response
        await reply(response)

    # ---------------------------------------------------------------- listeners / config

    def add_send_listener(self, listener: Callable[[SentMessage], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously for each bot message; returns a remover."""
        return self.recorder.add_send_listener(listener)

    def add_api_listener(self, listener: Callable[[ApiCall], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously for each API call; returns a remover."""
        return self.recorder.add_api_listener(listener)

    def set_api_handler(self, action: str, handler: ApiHandler | None) -> None:
        """Override (or with ``None`` restore) the answer to ``action``.

        ``handler(params)`` returns the ``data`` of the response (sync or async); raise
        :class:`~.api.ApiError` to answer ``status: failed``. Send actions are still recorded.
        """
        self.api.set_api_handler(action, handler)

    def set_user(self, user_id: int, nickname: str) -> None:
        self.api.set_user(user_id, nickname)

    def set_group(self, group_id: int, name: str) -> None:
        self.api.set_group(group_id, name)

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
        self.api.set_member(group_id, user_id, role=role, nickname=nickname, card=card)

    async def file_url(self, path: str | Path) -> str:
        """Serve a local file over HTTP (127.0.0.1) so the bot can download it."""
        return await self._files.url_for(await asyncio.to_thread(existing_file, path))

    async def image_segment(self, url_or_path: str) -> Segment:
        """Image segment from an http(s) URL or a local file (served by :meth:`file_url`)."""
        if url_or_path.startswith(("http://", "https://")):
            return Seg.image(url_or_path)
        url = await self.file_url(url_or_path)
        return Seg.image(Path(url_or_path).name, url)

    # ---------------------------------------------------------------- posting events

    async def _post(self, payload: dict[str, Any], *, post_type: str | None = None) -> None:
        event = await self.transport.post(payload, post_type=post_type)
        if event.get("post_type") != "meta_event":
            self.recorder.events.append(event)

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
        segments = event_segments(message)
        mid = message_id if message_id is not None else self.next_message_id()
        self.api.set_user(user_id, nickname)
        sender = {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0}
        self.api.store_message(mid, "private", sender, segments, user_id)
        self.recorder.mark_event()
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
        segments = event_segments(message)
        mid = message_id if message_id is not None else self.next_message_id()
        self.api.add_user(user_id, nickname)
        self.api.set_member(group_id, user_id, role=role, nickname=nickname, card=card)
        sender = {"user_id": user_id, "nickname": nickname, "card": card, "role": role}
        self.api.store_message(mid, "group", sender, segments, group_id)
        self.recorder.mark_event()
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
        self.recorder.mark_event()
        await self._post(dict(event))

    # ---------------------------------------------------------------- waiting for the bot

    to_private = staticmethod(Recorder.to_private)
    to_group = staticmethod(Recorder.to_group)

    def mark(self) -> int:
        """Current position in :attr:`sent`; pass as ``since=`` to look from here on."""
        return self.recorder.mark()

    async def wait_for_send(
        self,
        predicate: SendPredicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> SentMessage:
        """Return the first bot message matching ``predicate`` sent after now (or ``since``)."""
        return await self.recorder.wait_for_send(predicate, timeout, since=since)

    async def collect(
        self,
        predicate: SendPredicate | None = None,
        within: float = 0.5,
        *,
        since: int | None = None,
    ) -> list[SentMessage]:
        """Wait ``within`` seconds, then return every matching message sent since ``since``."""
        return await self.recorder.collect(predicate, within, since=since)

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
        await self.recorder.expect_no_reply(
            target, within, user_id=user_id, group_id=group_id, since=since
        )

    def _answer_to(self, predicate: SendPredicate) -> SendPredicate:
        actions = self.reply_actions
        if actions is None:
            return predicate
        return lambda m: m.action in actions and predicate(m)

    async def ask_private(
        self,
        user_id: int,
        message: MessageLike,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        nickname: str = "顾客",
    ) -> SentMessage:
        """Send a private message and return the bot's next message to that user."""
        start = self.mark()
        await self.send_private(user_id, message, nickname)
        try:
            return await self.wait_for_send(
                self._answer_to(self.to_private(user_id)), timeout, since=start
            )
        except TimeoutError:
            raise self.recorder.unanswered(
                start, f"private {user_id} {message!r}", timeout
            ) from None

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
        start = self.mark()
        await self.send_group(group_id, user_id, message, role, nickname)
        try:
            return await self.wait_for_send(
                self._answer_to(self.to_group(group_id)), timeout, since=start
            )
        except TimeoutError:
            raise self.recorder.unanswered(
                start, f"group {group_id} {message!r}", timeout
            ) from None

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
        """``users`` concurrent users each send ``commands`` messages; see :mod:`.load`."""
        from .load import drive_load  # load.py builds on this module

        return await drive_load(
            self, users, commands, message, group_id, timeout=timeout, base_user_id=base_user_id
        )
