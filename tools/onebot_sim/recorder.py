"""Recording what went over the connection, and waiting for the bot's replies.

:class:`ApiCall` is one API call the bot made, :class:`SentMessage` one message it sent
(a ``send_*msg`` / forward call). :class:`Recorder` keeps them in arrival order together
with the events the simulator posted, tells listeners about each one, and lets callers
wait for a matching message (``wait_for_send``, ``collect``, ``expect_no_reply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .segments import Seg, Segment, normalize_message, render_text

__all__ = [
    "FORWARD_ACTIONS",
    "SEND_ACTIONS",
    "ApiCall",
    "Recorder",
    "SendPredicate",
    "SentMessage",
    "Target",
    "int_param",
    "sent_from_call",
]

#: Actions whose call is recorded as a :class:`SentMessage`.
SEND_ACTIONS = frozenset({"send_msg", "send_private_msg", "send_group_msg"})
FORWARD_ACTIONS = frozenset(
    {"send_forward_msg", "send_private_forward_msg", "send_group_forward_msg"}
)

SendPredicate = Callable[["SentMessage"], bool]
Target = tuple[str, int]


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

    @property
    def is_send(self) -> bool:
        """Whether this call sends a message (and so is recorded as a :class:`SentMessage`)."""
        return self.action in SEND_ACTIONS or self.action in FORWARD_ACTIONS


def int_param(value: Any, default: int = 0) -> int:
    """An API parameter as ``int`` (``default`` when it is missing or not a number)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def sent_from_call(call: ApiCall, message_id: int) -> SentMessage:
    """The message a send / forward API call sends, under ``message_id``."""
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
    target_id = int_param(params.get("group_id" if is_group else "user_id"))

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
    return SentMessage(
        action=action,
        target_type=target_type,
        target_id=target_id,
        segments=segments,
        text=render_text(segments),
        at=call.at,
        message_id=message_id,
        params=params,
        mono=call.mono,
    )


class Recorder:
    """Every API call, bot message and posted event, plus waiting for bot messages.

    ``closed_reason`` tells why the connection is gone (``None`` while it is up), so
    waiting stops as soon as the bot disconnects.
    """

    def __init__(self, closed_reason: Callable[[], str | None]) -> None:
        self.sent: list[SentMessage] = []
        self.api_calls: list[ApiCall] = []
        self.events: list[dict[str, Any]] = []
        #: ``len(sent)`` when the last event was posted (see :meth:`expect_no_reply`).
        self.event_mark = 0
        self._closed_reason = closed_reason
        self._new_send = asyncio.Event()
        self._send_listeners: list[Callable[[SentMessage], None]] = []
        self._api_listeners: list[Callable[[ApiCall], None]] = []

    # ---------------------------------------------------------------- recording

    def record_call(self, frame: dict[str, Any]) -> ApiCall:
        """Record an API call frame (``action``/``params``/``echo``) as it arrives."""
        params = frame.get("params")
        call = ApiCall(
            action=str(frame.get("action")),
            params=params if isinstance(params, dict) else {},
            echo=frame.get("echo"),
            at=time.time(),
            mono=time.perf_counter(),
        )
        self.api_calls.append(call)
        return call

    def record_send(self, sent: SentMessage) -> None:
        """Record a bot message, tell the send listeners and wake the waiters."""
        self.sent.append(sent)
        for listener in list(self._send_listeners):
            listener(sent)
        self.wake()

    def announce_call(self, call: ApiCall) -> None:
        """Tell the API listeners about ``call`` (after its message, if any, is recorded)."""
        for listener in list(self._api_listeners):
            listener(call)

    def mark_event(self) -> None:
        """Note that an event is about to be posted (for :meth:`expect_no_reply`)."""
        self.event_mark = len(self.sent)

    def wake(self) -> None:
        """Wake everyone in :meth:`wait_for_send` (new message or connection gone)."""
        event, self._new_send = self._new_send, asyncio.Event()
        event.set()

    def add_send_listener(self, listener: Callable[[SentMessage], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously for each bot message; returns a remover."""
        self._send_listeners.append(listener)
        return lambda: self._send_listeners.remove(listener)

    def add_api_listener(self, listener: Callable[[ApiCall], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously for each API call; returns a remover."""
        self._api_listeners.append(listener)
        return lambda: self._api_listeners.remove(listener)

    # ---------------------------------------------------------------- waiting for the bot

    def mark(self) -> int:
        """Current position in :attr:`sent`; pass as ``since=`` to look from here on."""
        return len(self.sent)

    @staticmethod
    def to_private(user_id: int) -> SendPredicate:
        return lambda m: m.target_type == "private" and m.target_id == int(user_id)

    @staticmethod
    def to_group(group_id: int) -> SendPredicate:
        return lambda m: m.target_type == "group" and m.target_id == int(group_id)

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
            closed_reason = self._closed_reason()
            if closed_reason is not None:
                raise ConnectionError(f"bot connection is gone: {closed_reason}")
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

    def unanswered(self, start: int, what: str, timeout: float) -> TimeoutError:
        """The error for "no reply to ``what``", listing what the bot sent since ``start``."""
        others = "; ".join(
            f"{m.target_type} {m.target_id}: {m.text[:60]!r}" for m in self.sent[start:]
        )
        return TimeoutError(
            f"no reply to {what} within {timeout:g}s"
            + (f" (bot sent meanwhile: {others})" if others else "")
        )

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
        since the last event the simulator posted also count (override with ``since``).
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
        start = self.event_mark if since is None else since
        try:
            message = await self.wait_for_send(predicate, within, since=start)
        except TimeoutError:
            return
        raise AssertionError(
            f"expected no reply to {target or 'anyone'}, but the bot sent "
            f"{message.target_type} {message.target_id}: {message.text!r}"
        )
