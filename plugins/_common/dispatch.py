"""From a chat message to a command invocation, and from a handler's result to the reply.

Kept free of matcher state so the router stays a few lines and this logic is testable."""

from __future__ import annotations

from dataclasses import dataclass

from nonebot import logger
from nonebot.adapters.onebot.v11 import (
    GroupMessageEvent,
    Message,
    MessageEvent,
    MessageSegment,
)

from services.errors import ShopError
from services.staff import Role

from .args import ArgReader, UsageError
from .context import CommandContext, Reply, display_prefix, usage_line
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
    command: Command | None  # None: an unknown /command in a private chat
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


def text_with_mentions(event: MessageEvent) -> str:
    """The message as text, with @-mentions as `@<qq>` words (so `/店员 添加 @小王`
    works); images and other segments are left out."""
    parts = []
    for segment in event.message:
        if segment.type == "text":
            parts.append(segment.data.get("text", ""))
        elif segment.type == "at":
            parts.append(f" @{segment.data.get('qq', '')} ")
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
    text = event.get_plaintext()
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
        # Unknown words are ignored in groups (other bots share `/`) and in private chats
        # when typed without a prefix (the shop owner may be chatting from this account).
        if in_group or not prefixed:
            return None
    elif in_group:
        group_disabled = not await runtime.access.group_enabled(event.group_id)  # type: ignore[attr-defined]
        if group_disabled and command.group_gate:
            return None
    if not runtime.recent.first_time(self_id, event.message_id):
        return None
    if any(segment.type == "at" for segment in event.message):
        mentioned = split_command(text_with_mentions(event), in_group, runtime.prefixes)
        args = mentioned[1] if mentioned else args
    return Invocation(word, args, command, prefixed, group_disabled)


def image_urls(event: MessageEvent) -> list[str]:
    urls = []
    for segment in event.message:
        if segment.type == "image":
            url = segment.data.get("url") or segment.data.get("file")
            if isinstance(url, str) and url:
                urls.append(url)
    return urls


def to_message(reply: Reply, event: MessageEvent) -> Message:
    """User text only ever travels as a text segment; in groups the asker is quoted."""
    message = Message()
    if isinstance(event, GroupMessageEvent):
        message.append(MessageSegment.reply(event.message_id))
    message.append(MessageSegment.text(reply.text))
    if reply.image is not None:
        message.append(MessageSegment.image(reply.image))
    return message


async def execute(
    runtime: ShopRuntime, invocation: Invocation, event: MessageEvent
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
        prefix = display_prefix(runtime.prefixes)
        return Reply(f"没有“{invocation.word}”这个命令。发 {prefix}帮助 查看可用的命令。")
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
    )
    try:
        return await command.handler(context)
    except UsageError as error:
        return Reply(f"{error.reason}\n{usage_line(command, runtime.prefixes)}")
    except ShopError as error:
        text = render_error(error)
        if shows_usage(error):
            text = f"{text}\n{usage_line(command, runtime.prefixes)}"
        return Reply(text)
    except Exception:
        logger.exception(f"command {command.name} failed for user {user_id}")
        return Reply(INTERNAL_ERROR)
