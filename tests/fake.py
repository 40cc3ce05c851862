"""OneBot v11 event builders and a reply matcher for nonebug's should_call_send."""

from __future__ import annotations

import itertools
import time
from typing import Any

from nonebot.adapters.onebot.v11 import (
    GroupMessageEvent,
    Message,
    MessageSegment,
    PrivateMessageEvent,
)
from nonebot.adapters.onebot.v11.event import Sender

SELF_ID = 10000
_message_ids = itertools.count(1000)


def _message(text: str, images: tuple[str, ...]) -> Message:
    message = Message(MessageSegment.text(text))
    for url in images:
        message.append(MessageSegment("image", {"file": url.rsplit("/", 1)[-1], "url": url}))
    return message


def private(text: str, user_id: int, *, images: tuple[str, ...] = ()) -> PrivateMessageEvent:
    message = _message(text, images)
    return PrivateMessageEvent(
        time=int(time.time()),
        self_id=SELF_ID,
        post_type="message",
        sub_type="friend",
        user_id=user_id,
        message_type="private",
        message_id=next(_message_ids),
        message=message,
        original_message=message.copy(),
        raw_message=str(message),
        font=0,
        sender=Sender(user_id=user_id, nickname=f"用户{user_id}"),
        to_me=True,
    )


def group(
    text: str, user_id: int, group_id: int, *, images: tuple[str, ...] = (), role: str = "member"
) -> GroupMessageEvent:
    message = _message(text, images)
    return GroupMessageEvent(
        time=int(time.time()),
        self_id=SELF_ID,
        post_type="message",
        sub_type="normal",
        user_id=user_id,
        group_id=group_id,
        message_type="group",
        message_id=next(_message_ids),
        message=message,
        original_message=message.copy(),
        raw_message=str(message),
        font=0,
        sender=Sender(user_id=user_id, nickname=f"用户{user_id}", card="", role=role),
        to_me=False,
    )


class Says:
    """Matches a reply message: in groups it quotes the asker's message first; the text
    is exactly one text segment containing every fragment (and none of `absent`); an
    image segment follows only if `image=True`."""

    def __init__(
        self,
        event: PrivateMessageEvent | GroupMessageEvent,
        *fragments: str,
        absent: tuple[str, ...] = (),
        image: bool = False,
        exact: str | None = None,
    ) -> None:
        self.quote = event.message_id if isinstance(event, GroupMessageEvent) else None
        self.fragments = fragments
        self.absent = absent
        self.image = image
        self.exact = exact
        self.problem = ""

    def _check(self, message: Any) -> str:
        if not isinstance(message, Message):
            return f"not a Message object: {type(message)!r}"
        segments = list(message)
        if self.quote is not None:
            if (
                not segments
                or segments[0].type != "reply"
                or segments[0].data.get("id") != str(self.quote)
            ):
                return "group reply must quote the asker first"
            segments = segments[1:]
        if any(s.type == "reply" for s in segments):
            return "unexpected reply segment"
        texts = [s for s in segments if s.type == "text"]
        images = [s for s in segments if s.type == "image"]
        if len(texts) != 1 or segments[0].type != "text":
            return f"expected exactly one leading text segment, got {[s.type for s in segments]}"
        if bool(images) != self.image or len(segments) != 1 + len(images):
            return f"image expectation {self.image} not met: {[s.type for s in segments]}"
        text = texts[0].data["text"]
        if self.exact is not None and text != self.exact:
            return f"text {text!r} != {self.exact!r}"
        missing = [f for f in self.fragments if f not in text]
        if missing:
            return f"text {text!r} lacks {missing!r}"
        present = [a for a in self.absent if a in text]
        if present:
            return f"text {text!r} must not contain {present!r}"
        return ""

    def __eq__(self, message: object) -> bool:
        self.problem = self._check(message)
        return not self.problem

    def __ne__(self, message: object) -> bool:
        return not self.__eq__(message)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"Says({self.fragments!r}, quote={self.quote}, image={self.image}) {self.problem}"


def v11_bot(ctx: Any) -> Any:
    """A OneBot v11 Bot inside a nonebug context (the router's rule is typed on it)."""
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    return ctx.create_bot(base=Bot, adapter=nonebot.get_adapter(Adapter), self_id=str(SELF_ID))
