"""The chat door's running state: the shop (services.context.ShopContext) plus what only
chat needs (command prefixes, the duplicate-event filter, the flood guard, the hint
cooldown). Created once at start-up (and per test)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from config import ShopSettings
from models.db import Database
from services.context import AccessControl, DraftIndex, ShopContext, close_shop, open_shop

RECENT_MESSAGES_KEPT = 4096


class RecentMessages:
    """OneBot implementations may deliver the same message again after a reconnect."""

    def __init__(self, size: int = RECENT_MESSAGES_KEPT) -> None:
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._size = size

    def first_time(self, self_id: str, message_id: int) -> bool:
        key = (self_id, message_id)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


class FloodVerdict(StrEnum):
    OK = "ok"
    WARN = "warn"  # the first refused command in a window: answered politely
    DROP = "drop"  # the next ones: not answered at all


class FloodGuard:
    """At most `limit` commands per user per `window` seconds; the first refused command
    gets a polite answer, the next ones in the same window get none."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._stamps: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def check(self, user_id: int, now: float | None = None) -> FloodVerdict:
        now = time.monotonic() if now is None else now
        stamps = self._stamps.setdefault(user_id, deque())
        while stamps and now - stamps[0] >= self._window:
            stamps.popleft()
        if len(stamps) < self._limit:
            stamps.append(now)
            self._warned.pop(user_id, None)
            return FloodVerdict.OK
        if now - self._warned.get(user_id, float("-inf")) >= self._window:
            self._warned[user_id] = now
            return FloodVerdict.WARN
        return FloodVerdict.DROP


class Cooldown:
    """At most one `allow` per user per `window` seconds; remembers the latest `size`
    users (an older one simply gets answered again)."""

    def __init__(self, window: float, size: int = RECENT_MESSAGES_KEPT) -> None:
        self._window = window
        self._size = size
        self._last: OrderedDict[int, float] = OrderedDict()

    def allow(self, user_id: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self._last.get(user_id)
        if last is not None and now - last < self._window:
            return False
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        if len(self._last) > self._size:
            self._last.popitem(last=False)
        return True


# A private message the shop does not understand gets a hint at most this often per user.
HINT_WINDOW_SECONDS = 60.0


@dataclass
class ShopRuntime:
    shop: ShopContext
    prefixes: tuple[str, ...]
    recent: RecentMessages = field(default_factory=RecentMessages)
    flood: FloodGuard = field(default_factory=lambda: FloodGuard(8, 10))
    hints: Cooldown = field(default_factory=lambda: Cooldown(HINT_WINDOW_SECONDS))

    @property
    def settings(self) -> ShopSettings:
        return self.shop.settings

    @property
    def access(self) -> AccessControl:
        return self.shop.access

    @property
    def drafts(self) -> DraftIndex:
        return self.shop.drafts

    @property
    def shop_id(self) -> int:
        return self.shop.shop_id

    @property
    def database(self) -> Database:
        return self.shop.database


_runtime: ShopRuntime | None = None
# Run before the database closes (clock jobs, the outbox dispatcher): NoneBot does not
# order shutdown hooks across plugins, so the runtime sequences its own.
_before_close: list[Callable[[], Awaitable[None]]] = []


def before_close(stop: Callable[[], Awaitable[None]]) -> None:
    _before_close.append(stop)


def command_prefixes(command_start: set[str]) -> tuple[str, ...]:
    """Longest first; a full-width slash works wherever a slash does (Chinese IMEs type ／)."""
    prefixes = set(command_start)
    if "/" in prefixes:
        prefixes.add("／")
    return tuple(sorted(prefixes, key=len, reverse=True))


def listen_url() -> str:
    """Where NoneBot's web server listens (http://host:port), for the payment gateway's
    notifies when PUBLIC_BASE_URL is not set; "" before NoneBot is initialised."""
    import nonebot

    try:
        config = nonebot.get_driver().config
    except ValueError:
        return ""
    host = str(config.host)
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


async def start_runtime(
    settings: ShopSettings, owners: set[int], command_start: set[str]
) -> ShopRuntime:
    """Opens the shop (creating or migrating the database) and readies the chat door."""
    global _runtime
    shop = await open_shop(settings, frozenset(owners), local_base_url=listen_url())
    _runtime = ShopRuntime(
        shop=shop,
        prefixes=command_prefixes(command_start),
        flood=FloodGuard(settings.flood_max_commands, settings.flood_window_seconds),
    )
    return _runtime


async def stop_runtime() -> None:
    global _runtime
    for stop in _before_close:
        await stop()
    if _runtime is not None:
        await close_shop(_runtime.shop)
    _runtime = None


def current_runtime() -> ShopRuntime | None:
    return _runtime
