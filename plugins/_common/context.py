"""What a command handler receives, and what it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.actors import Actor, Caller
from services.context import ShopContext
from services.staff import Role

from .args import ArgReader
from .registry import Command
from .runtime import ShopRuntime

# Sends a file (name, bytes) privately to the asker; returns False where the OneBot
# implementation cannot (it lacks the action, or refused). Set in private chats only.
FileSender = Callable[[str, bytes], Awaitable[bool]]


@dataclass
class Reply:
    """A reply is plain text (sent as a text segment, never parsed for CQ codes) and
    optional images: `image` (one, e.g. a QR code) and `images` (several, e.g. a ticket's
    evidence), sent in that order after the text."""

    text: str
    image: bytes | None = None
    images: list[bytes] = field(default_factory=list)


@dataclass
class CommandContext:
    runtime: ShopRuntime
    command: Command
    user_id: int
    group_id: int | None
    role: Role
    args: ArgReader
    image_urls: list[str] = field(default_factory=list)
    # How to hand the asker a file (/导出); None in groups and where no bot is at hand.
    send_file: FileSender | None = None
    # The command word as typed (the name or an alias, e.g. `keys-import`): a command
    # whose aliases name its sub-actions reads it.
    word: str = ""

    @property
    def shop(self) -> ShopContext:
        """What the use cases take."""
        return self.runtime.shop

    @property
    def caller(self) -> Caller:
        """Who is asking and where, as the use cases take it."""
        return Caller(self.user_id, self.group_id, self.role)

    @property
    def in_group(self) -> bool:
        return self.group_id is not None

    @property
    def shop_id(self) -> int:
        return self.runtime.shop_id

    @property
    def is_staff(self) -> bool:
        return self.role >= Role.STAFF

    @property
    def own_only(self) -> int | None:
        return self.caller.own_only

    @property
    def actor(self) -> Actor:
        """Who is acting, as order and ticket events record it."""
        return self.caller.actor

    def usage_line(self) -> str:
        return usage_line(self.command, self.runtime.prefixes)


def display_prefix(prefixes: tuple[str, ...]) -> str:
    return "/" if "/" in prefixes else next((p for p in prefixes if p), "")


def usage_line(command: Command, prefixes: tuple[str, ...]) -> str:
    prefix = "" if command.is_dialogue else display_prefix(prefixes)
    return f"用法：{prefix}{command.usage}，例如 {prefix}{command.example}"
