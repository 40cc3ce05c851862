"""The running shop as every use case sees it, whichever door (chat, payment callback,
clock) calls: the database, the settings, the owners, and the caches of things read on
every message. Built once at start-up by `open_shop` (and per test)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from config import PaymentProvider, ShopSettings
from models.db import Database
from models.tables import DEFAULT_SHOP_ID
from models.types import utcnow

from . import groups, safeguards, shop, staff
from .accounts import AnsweringAccounts, ReachMemory
from .card_keys import KeyVault
from .demo import seed_demo_catalog, seed_demo_payment, seed_demo_virtual_item
from .epay import EpayGateway
from .item_facts import ItemFactsCache
from .staff import Role

# Where the EPay gateway sends notifies and the payer's browser, on the bot's own web
# server (plugins/payments serves both).
EPAY_NOTIFY_PATH = "/pay/epay/notify"
EPAY_RETURN_PATH = "/pay/epay/return"

# Staff and enabled groups change rarely and are read on every command: cache them, and
# re-read now and then so a second bot process on the same database sees changes too.
ACCESS_CACHE_SECONDS = 30.0


class AccessControl:
    """Roles and enabled groups, cached for the router's hot path."""

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

    async def staff_ids(self) -> frozenset[int]:
        """The staff members (owners not included), as cached for roles: who hears of a
        new order (a change by another process shows within ACCESS_CACHE_SECONDS)."""
        await self._fresh()
        return frozenset(self._staff)

    async def group_enabled(self, group_id: int) -> bool:
        await self._fresh()
        return group_id in self._groups


@dataclass(frozen=True)
class PendingDraft:
    expires_at: datetime
    awaiting_address: bool


class DraftIndex:
    """Which (chat, user) has an order summary waiting, in memory, so the router can
    route a bare 确认 without a database query on every message. The rows are the truth
    (services/checkout.py); the checkout use cases keep this in step with them, and it
    is rebuilt from them at start-up and after purges."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, int], PendingDraft] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def get(self, group_id: int | None, user_id: int) -> PendingDraft | None:
        return self._pending.get((group_id or 0, user_id))

    def put(
        self, group_id: int | None, user_id: int, expires_at: datetime, awaiting_address: bool
    ) -> None:
        self._pending[(group_id or 0, user_id)] = PendingDraft(expires_at, awaiting_address)

    def drop(self, group_id: int | None, user_id: int) -> None:
        self._pending.pop((group_id or 0, user_id), None)

    def replace_all(self, entries: dict[tuple[int | None, int], PendingDraft]) -> None:
        self._pending = {
            (group_id or 0, user_id): pending for (group_id, user_id), pending in entries.items()
        }


@dataclass(frozen=True)
class PendingDeletion:
    """A /删除 summary shown to one staff member in one chat, waiting for 确认删除."""

    item_id: int
    position: int | None  # None: the whole item
    # What the summary showed: 确认删除 refuses if the variants changed since.
    variant_ids: frozenset[int]
    expires_at: datetime


class DeletionIndex:
    """Which (chat, staff member) has a /删除 waiting for 确认删除 (services.usecases.
    catalog_admin). In memory only: a restart forgets it, and /删除 is simply sent again."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, int], PendingDeletion] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def get(self, group_id: int | None, user_id: int) -> PendingDeletion | None:
        return self._pending.get((group_id or 0, user_id))

    def put(self, group_id: int | None, user_id: int, pending: PendingDeletion) -> None:
        self._pending[(group_id or 0, user_id)] = pending

    def pop(self, group_id: int | None, user_id: int) -> PendingDeletion | None:
        return self._pending.pop((group_id or 0, user_id), None)


@dataclass
class ShopContext:
    """What a use case is given: it opens its own transactions on `database`."""

    database: Database
    settings: ShopSettings
    owners: frozenset[int]
    shop_id: int = DEFAULT_SHOP_ID
    access: AccessControl = field(init=False)
    drafts: DraftIndex = field(default_factory=DraftIndex)
    deletions: DeletionIndex = field(default_factory=DeletionIndex)
    # Which chats this process's QQ accounts saw lately (services/accounts.py).
    reach: ReachMemory = field(default_factory=ReachMemory)
    # Which of them answers in each group several of them are in (services/accounts.py).
    answering: AnsweringAccounts = field(default_factory=AnsweringAccounts)
    # /详情's rating and bought-together per item, for a short while (services/item_facts.py).
    item_facts: ItemFactsCache = field(default_factory=ItemFactsCache)
    # The shop's EPay gateway client: set by `open_shop` when PAYMENT_PROVIDER is epay
    # and a gateway is configured; None otherwise (manual payments).
    payment_gateway: EpayGateway | None = None

    def __post_init__(self) -> None:
        self.access = AccessControl(self.database, self.shop_id, self.owners)
        # Low-stock alerts are decided where stock changes, deep in the domain functions.
        self.database.session_info[safeguards.STOCK_WATCH] = safeguards.StockWatch(
            self.settings.low_stock_threshold, self.owners
        )

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    @property
    def notices_committed(self) -> asyncio.Event:
        """Set when a committed transaction queued notices (the outbox waits on it)."""
        return self.database.notices_committed


def payment_gateway_for(settings: ShopSettings, local_base_url: str = "") -> EpayGateway | None:
    """The EPay gateway client the settings describe, or None (PAYMENT_PROVIDER manual, or
    a demo whose fake gateway is not started). Notifies go to PUBLIC_BASE_URL, else to
    `local_base_url` (where the bot listens: only a gateway on this machine, the demo's
    fake, reaches that; a real one never notifies and reconciliation finds payments)."""
    if settings.payment_provider is not PaymentProvider.EPAY or not settings.epay_api_url:
        return None
    base = settings.public_base_url or local_base_url.rstrip("/")
    return EpayGateway(
        settings.epay_api_url,
        settings.epay_pid,
        settings.epay_key.get_secret_value(),
        notify_url=base + EPAY_NOTIFY_PATH,
        return_url=base + EPAY_RETURN_PATH,
    )


async def open_shop(
    settings: ShopSettings, owners: frozenset[int], *, local_base_url: str = ""
) -> ShopContext:
    """Opens (creating or migrating) the database and makes the shop ready. With
    PAYMENT_PROVIDER=epay, its gateway client too (`local_base_url`: where the bot's web
    server listens, for notifies when PUBLIC_BASE_URL is not set)."""
    database = Database(settings.database_url)
    await database.migrate()
    async with database.write() as session:
        await shop.ensure_shop(session, settings.shop_name)
        if settings.shop_demo:
            await seed_demo_catalog(session, DEFAULT_SHOP_ID)
            await seed_demo_payment(session, DEFAULT_SHOP_ID, Path(settings.data_dir))
            secret = settings.card_key_secret
            vault = KeyVault(secret.get_secret_value() if secret is not None else None)
            await seed_demo_virtual_item(session, DEFAULT_SHOP_ID, vault, utcnow())
    await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
    context = ShopContext(
        database=database,
        settings=settings,
        owners=owners,
        payment_gateway=payment_gateway_for(settings, local_base_url),
    )
    await reload_drafts(context)
    return context


async def reload_drafts(context: ShopContext) -> None:
    """Rebuilds the draft index from the rows (start-up, after a purge)."""
    from .checkout import live_drafts

    async with context.database.read() as session:
        live = await live_drafts(session, utcnow())
    context.drafts.replace_all(
        {key: PendingDraft(expires, awaiting) for key, (expires, awaiting) in live.items()}
    )


async def close_shop(context: ShopContext) -> None:
    gateway, context.payment_gateway = context.payment_gateway, None
    if gateway is not None:
        await gateway.aclose()
    await context.database.dispose()
