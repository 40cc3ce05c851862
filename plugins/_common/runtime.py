"""The running shop: settings, database, caches. Created once at start-up (and per test)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from config import ShopSettings
from models.db import Database, set_database
from models.tables import DEFAULT_SHOP_ID
from models.types import utcnow
from services import groups, shop, staff
from services.demo import seed_demo_catalog
from services.staff import Role

# Staff and enabled groups change rarely and are read on every command: cache them, and
# re-read now and then so a second bot process on the same database sees changes too.
ACCESS_CACHE_SECONDS = 30.0
RECENT_MESSAGES_KEPT = 4096


class AccessControl:
    def __init__(self, database: Database, shop_id: int, owners: frozenset[int]) -> None:
        self._database = database
        self._shop_id = shop_id
        self.owners = owners
        self._staff: set[int] = set()
        self._groups: set[int] = set()
        self._loaded_at = float("-inf")

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at < ACCESS_CACHE_SECONDS:
            return
        async with self._database.read() as session:
            self._staff = await staff.staff_ids(session, self._shop_id)
            self._groups = await groups.enabled_group_ids(session, self._shop_id)
        self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def role(self, user_id: int) -> Role:
        if user_id in self.owners:
            return Role.OWNER
        await self._fresh()
        return staff.role_of(user_id, self.owners, self._staff)

    async def group_enabled(self, group_id: int) -> bool:
        await self._fresh()
        return group_id in self._groups


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


class FloodGuard:
    """At most `limit` commands per user per `window` seconds; the first refused command
    gets a polite answer, the next ones in the same window get none."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._stamps: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def check(self, user_id: int, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        stamps = self._stamps.setdefault(user_id, deque())
        while stamps and now - stamps[0] >= self._window:
            stamps.popleft()
        if len(stamps) < self._limit:
            stamps.append(now)
            self._warned.pop(user_id, None)
            return "ok"
        if now - self._warned.get(user_id, float("-inf")) >= self._window:
            self._warned[user_id] = now
            return "warn"
        return "drop"


@dataclass(frozen=True)
class PendingDraft:
    expires_at: datetime
    awaiting_address: bool


class DraftIndex:
    """Which (chat, user) has an order summary waiting, in memory, so the router can
    route a bare 确认 without a database query on every message. The rows themselves are
    the truth (services/checkout.py); this is rebuilt from them at start-up."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], PendingDraft] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def get(self, chat_key: str, user_id: int) -> PendingDraft | None:
        return self._pending.get((chat_key, user_id))

    def put(
        self, chat_key: str, user_id: int, expires_at: datetime, awaiting_address: bool
    ) -> None:
        self._pending[(chat_key, user_id)] = PendingDraft(expires_at, awaiting_address)

    def drop(self, chat_key: str, user_id: int) -> None:
        self._pending.pop((chat_key, user_id), None)

    def replace_all(self, entries: dict[tuple[str, int], PendingDraft]) -> None:
        self._pending = dict(entries)


@dataclass
class ShopRuntime:
    settings: ShopSettings
    database: Database
    access: AccessControl
    prefixes: tuple[str, ...]
    shop_id: int = DEFAULT_SHOP_ID
    recent: RecentMessages = field(default_factory=RecentMessages)
    flood: FloodGuard = field(default_factory=lambda: FloodGuard(8, 10))
    drafts: DraftIndex = field(default_factory=DraftIndex)
    # Set when a command queued a notice, so the outbox dispatcher sends it promptly.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)


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


async def start_runtime(
    settings: ShopSettings, owners: set[int], command_start: set[str]
) -> ShopRuntime:
    """Opens (creating or migrating) the database and makes the shop ready."""
    global _runtime
    database = Database(settings.database_url)
    await database.migrate()
    async with database.write() as session:
        await shop.ensure_shop(session, settings.shop_name)
        if settings.shop_demo:
            await seed_demo_catalog(session, DEFAULT_SHOP_ID)
    set_database(database)
    drafts = DraftIndex()
    await reload_drafts(database, drafts)
    await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
    _runtime = ShopRuntime(
        settings=settings,
        database=database,
        access=AccessControl(database, DEFAULT_SHOP_ID, frozenset(owners)),
        prefixes=command_prefixes(command_start),
        flood=FloodGuard(settings.flood_max_commands, settings.flood_window_seconds),
        drafts=drafts,
    )
    return _runtime


async def reload_drafts(database: Database, drafts: DraftIndex) -> None:
    from services.checkout import live_drafts

    async with database.read() as session:
        live = await live_drafts(session, utcnow())
    drafts.replace_all(
        {key: PendingDraft(expires, awaiting) for key, (expires, awaiting) in live.items()}
    )


async def stop_runtime() -> None:
    global _runtime
    for stop in _before_close:
        await stop()
    if _runtime is not None:
        await _runtime.database.dispose()
    _runtime = None
    set_database(None)


def current_runtime() -> ShopRuntime | None:
    return _runtime
