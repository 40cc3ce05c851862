"""From a chat message to a command invocation, and from a handler's result to the reply.

Kept free of matcher state so the router stays a few lines and this logic is testable."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from nonebot import logger
from nonebot.adapters.onebot.v11 import (
    ActionFailed,
    ApiNotAvailable,
    Bot,
    GroupMessageEvent,
    Message,
    MessageEvent,
    MessageSegment,
    NetworkError,
)

from services.errors import ShopError
from services.limits import quote
from services.staff import Role

from .args import ArgReader, UsageError, normalise_word
from .context import CommandContext, FileSender, Reply, display_prefix, usage_line
from .errors import render_error, shows_usage
from .registry import Command, DialogueMessage, Scope, registry
from .runtime import FloodVerdict, ShopRuntime

NO_PERMISSION = "无权限：这是店主/店员命令。发 /帮助 查看你可用的命令。"
GROUP_ONLY = "这个命令要在群里发送。"
TOO_FAST = "操作太频繁啦，请稍等几秒再发。"
INTERNAL_ERROR = "系统开小差了，请稍后再试。如果一直这样，请联系店主。"


@dataclass(frozen=True)
class Invocation:
    word: str
    args: str
    # None: in a private chat, an unknown /command or a sentence matching nothing
    command: Command | None
    prefixed: bool = True
    # The group has not enabled the shop (only commands with group_gate=False get here).
    group_disabled: bool = False


def split_command(text: str, in_group: bool, prefixes: tuple[str, ...]) -> tuple[str, str] | None:
    """`/详情 12` -> ("详情", "12"). In groups a prefix is required; in private chats it may
    be left out. Returns None for anything that is not shaped like a command."""
    text = text.lstrip()
    if not text:
        return None
    body = None
    for prefix in prefixes:
        if prefix and text.startswith(prefix):
            body = text[len(prefix) :]
            break
    if body is None:
        if in_group and "" not in prefixes:
            return None
        body = text
    parts = body.split(maxsplit=1)
    if not parts:
        return None
    return parts[0], parts[1] if len(parts) > 1 else ""


def had_prefix(text: str, prefixes: tuple[str, ...]) -> bool:
    text = text.lstrip()
    return any(p and text.startswith(p) for p in prefixes)


def _data(segment: MessageSegment) -> dict[str, Any]:
    """A segment's data; a OneBot implementation may send a segment without any (NoneBot
    then keeps `{}`, or None for `"data": null`)."""
    data = segment.data
    return data if isinstance(data, dict) else {}


def _field(segment: MessageSegment, key: str) -> str:
    value = _data(segment).get(key)
    # QQ numbers arrive as strings or numbers, depending on the implementation.
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def message_text(message: Message) -> str:
    """The text segments joined, like `message.extract_plain_text()`, but a text segment
    without data (or without "text") counts as empty instead of raising."""
    return "".join(_field(s, "text") for s in message if s.type == "text")


def plain_text(event: MessageEvent) -> str:
    """`event.get_plaintext()` that never raises (see message_text): the router's rule."""
    return message_text(event.message)


def text_with_mentions(event: MessageEvent) -> str:
    """The message as text, with @-mentions as `@<qq>` words (so `/店员 添加 @小王`
    works); images and other segments are left out."""
    parts = []
    for segment in event.message:
        if segment.type == "text":
            parts.append(_field(segment, "text"))
        elif segment.type == "at" and _field(segment, "qq"):
            parts.append(f" @{_field(segment, 'qq')} ")
    return "".join(parts)


def _dialogue(
    runtime: ShopRuntime, event: MessageEvent, text: str, in_group: bool
) -> Invocation | None:
    """A reply inside a pending dialogue (an order summary's 确认, …), as the area
    plugins' probes recognise it. Looked up before the command table."""
    if not registry.probes:
        return None
    word = text.strip()
    for prefix in runtime.prefixes:
        if prefix and word.startswith(prefix):
            word = word[len(prefix) :].strip()
            break
    group_id = event.group_id if in_group else None  # type: ignore[attr-defined]
    command = registry.dialogue_for(DialogueMessage(runtime, event.user_id, group_id, word))
    if command is None:
        return None
    return Invocation(word, word, command)


async def recognise(runtime: ShopRuntime, event: MessageEvent, self_id: str) -> Invocation | None:
    """The router's rule: cheap for ordinary chatter (no DB, no await before the table)."""
    text = plain_text(event)
    in_group = isinstance(event, GroupMessageEvent)
    reply = _dialogue(runtime, event, text, in_group)
    if reply is not None:
        if in_group and not await runtime.access.group_enabled(event.group_id):  # type: ignore[attr-defined]
            return None
        return reply if runtime.recent.first_time(self_id, event.message_id) else None
    split = split_command(text, in_group, runtime.prefixes)
    if split is None:
        return None
    word, args = split
    command = registry.lookup(word)
    prefixed = had_prefix(text, runtime.prefixes)
    group_disabled = False
    if command is None:
        # Unknown words are ignored in groups: other bots share `/`, and chatter is none
        # of the shop's business (this is the cheap path every group message takes).
        if in_group:
            return None
    elif in_group:
        group_disabled = not await runtime.access.group_enabled(event.group_id)  # type: ignore[attr-defined]
        if group_disabled and command.group_gate:
            return None
    if not runtime.recent.first_time(self_id, event.message_id):
        return None
    # A private sentence the shop does not understand (a typo, a greeting) gets a short
    # hint, at most one a minute per user: the owner may chat from this account too.
    if command is None and not prefixed and not runtime.hints.allow(event.user_id):
        return None
    if any(segment.type == "at" for segment in event.message):
        mentioned = split_command(text_with_mentions(event), in_group, runtime.prefixes)
        args = mentioned[1] if mentioned else args
    return Invocation(word, args, command, prefixed, group_disabled)


def edit_distance(first: str, second: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps
    of two neighbours (`hlep` → `help`) each count one."""
    previous2: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
            if i > 1 and j > 1 and a == second[j - 2] and first[i - 2] == b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


# Words longer than this are sentences, not mistyped command words.
_SUGGEST_MAX_LENGTH = 12


def suggest(word: str, commands: list[Command]) -> Command | None:
    """The command `word` most likely meant: one whose word it starts with (`下单6-1`), or
    one a typo away (`商平` → 商品, `下蛋` → 下单, `hlep` → help; two for words longer than
    four characters). Ties go to the command registered first (the customer's first)."""
    typed = normalise_word(word).lower()
    if not typed or len(typed) > _SUGGEST_MAX_LENGTH:
        return None
    best: tuple[int, int] | None = None
    found: Command | None = None
    for rank, command in enumerate(commands):
        for known in (w.lower() for w in command.words):
            if len(known) >= 2 and typed.startswith(known):
                distance = 0
            else:
                allowed = 1 if max(len(typed), len(known)) <= 4 else 2
                distance = edit_distance(typed, known)
                if distance > allowed or distance >= len(known):
                    continue
            if best is None or (distance, rank) < best:
                best, found = (distance, rank), command
    return found


def _dialogue_replies() -> set[str]:
    """The words that answer a dialogue (确认, 取消), as their usage shows them."""
    return {command.usage for command in registry.dialogues.values()}


def not_understood(
    invocation: Invocation, commands: list[Command], prefixes: tuple[str, ...]
) -> str:
    """A private chat's unknown `/word`, or a sentence matching nothing: what was not
    understood, the command it resembles (if any), and where to look."""
    prefix = display_prefix(prefixes)
    if not invocation.prefixed and invocation.word in _dialogue_replies():
        idle = next(
            (c.idle_reply for c in registry.dialogues.values() if c.usage == invocation.word),
            "",
        )
        if idle:  # e.g. 确认删除 with no /删除 waiting
            return idle
        # 确认 with no order summary waiting (already placed, or timed out).
        return f"没有等待确认的订单：已经提交或已超时。发 {prefix}订单 查看你的订单。"
    close = suggest(invocation.word, commands)
    guess = f"是不是想发 {prefix}{close.name}？" if close is not None else ""
    if invocation.prefixed:
        return f"没有{quote(invocation.word)}这个命令。{guess}发 {prefix}帮助 查看可用的命令。"
    if close is None:
        return f"没看懂这句话。发 {prefix}帮助 查看命令。"
    return f"没看懂{quote(invocation.word)}。{guess}发 {prefix}帮助 查看命令。"


def image_urls(event: MessageEvent) -> list[str]:
    urls = []
    for segment in event.message:
        if segment.type == "image":
            url = _data(segment).get("url") or _data(segment).get("file")
            if isinstance(url, str) and url:
                urls.append(url)
    return urls


# No answer is longer than this (the longest today, an owner's /帮助, is about 1,800
# characters; lists page at 10-20 rows): whatever a command renders, a runaway text never
# floods a chat. tests/plugins/test_hardening.py keeps /帮助 under it.
MAX_REPLY_CHARS = 3000
TRUNCATED = "…（内容过长，已截断）"


def capped(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def to_message(reply: Reply, event: MessageEvent) -> Message:
    """User text only ever travels as a text segment; in groups the asker is quoted."""
    message = Message()
    if isinstance(event, GroupMessageEvent):
        message.append(MessageSegment.reply(event.message_id))
    message.append(MessageSegment.text(capped(reply.text)))
    if reply.image is not None:
        message.append(MessageSegment.image(reply.image))
    for image in reply.images:
        message.append(MessageSegment.image(image))
    return message


def private_file_sender(bot: Bot, user_id: int) -> FileSender:
    """OneBot `upload_private_file` (NapCat, Lagrange), the bytes inline as `base64://`
    so the OneBot implementation may run on another machine. An implementation without
    the action (or one that refuses) makes it False, for the handler to say so."""

    async def send(name: str, content: bytes) -> bool:
        encoded = base64.b64encode(content).decode("ascii")
        try:
            await bot.call_api(
                "upload_private_file", user_id=user_id, file=f"base64://{encoded}", name=name
            )
        except (ActionFailed, ApiNotAvailable, NetworkError) as error:
            logger.warning(f"upload_private_file to {user_id} failed: {error!r}")
            return False
        return True

    return send


async def execute(
    runtime: ShopRuntime, invocation: Invocation, event: MessageEvent, bot: Bot | None = None
) -> Reply | None:
    """Runs a recognised command; returns the reply, or None when nothing should be said."""
    user_id = event.user_id
    role = await runtime.access.role(user_id)
    # Staff setting up the catalog type fast; the guard is for customers.
    if role < Role.STAFF:
        verdict = runtime.flood.check(user_id)
        if verdict is FloodVerdict.DROP:
            return None
        if verdict is FloodVerdict.WARN:
            return Reply(TOO_FAST)
    command = invocation.command
    if command is None:
        return Reply(not_understood(invocation, registry.visible_to(role), runtime.prefixes))
    group_id = event.group_id if isinstance(event, GroupMessageEvent) else None
    if role < command.role:
        # Silence where the shop has no business speaking: a group that has not enabled
        # it, or a customer's sentence that merely starts like a merchant command.
        if invocation.group_disabled or not invocation.prefixed:
            return None
        return Reply(NO_PERMISSION)
    if command.scope is Scope.GROUP_ONLY and group_id is None:
        return Reply(GROUP_ONLY)
    context = CommandContext(
        runtime=runtime,
        command=command,
        user_id=user_id,
        group_id=group_id,
        role=role,
        args=ArgReader(invocation.args),
        image_urls=image_urls(event),
        send_file=private_file_sender(bot, user_id)
        if bot is not None and group_id is None
        else None,
        word=invocation.word,
    )
    try:
        return await command.handler(context)
    except UsageError as error:
        return Reply(f"{error.reason}\n{usage_line(command, runtime.prefixes)}")
    except ShopError as error:
        text = render_error(error, staff=role >= Role.STAFF)
        if shows_usage(error):
            text = f"{text}\n{usage_line(command, runtime.prefixes)}"
        return Reply(text)
    except Exception:
        logger.exception(f"command {command.name} failed for user {user_id}")
        return Reply(INTERNAL_ERROR)
