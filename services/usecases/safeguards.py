"""What staff set against abuse and surprises: the blacklist (/拉黑 /解除拉黑 /黑名单),
purchase limits (/限购) and low-stock thresholds (/预警). The refusals customers meet
(a ban, the unpaid-order cap, a limit) are checked inside the use cases that order, pay
or open tickets (services/safeguards.py `ensure_not_banned`, `ensure_may_order`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.tables import Ban
from models.types import utcnow

from .. import catalog, safeguards
from ..actors import Caller
from ..catalog import VariantRef
from ..context import ShopContext
from ..safeguards import GuardView


@dataclass(frozen=True)
class BanOutcome:
    ban: Ban
    # Their unpaid orders, which still hold stock until they expire (UNPAID_TIMEOUT).
    unpaid_orders: tuple[str, ...]


async def ban_customer(
    shop: ShopContext, caller: Caller, user_id: int, reason: str = "", now: datetime | None = None
) -> BanOutcome:
    """/拉黑: the customer may browse, nothing more (owners and staff cannot be banned)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ban = await safeguards.ban(
            session, shop.shop_id, user_id, reason, caller.actor, shop.owners, now
        )
        unpaid = await safeguards.unpaid_order_codes(session, shop.shop_id, user_id)
    return BanOutcome(ban, tuple(unpaid))


async def unban_customer(
    shop: ShopContext, caller: Caller, user_id: int, now: datetime | None = None
) -> Ban:
    """/解除拉黑: returns the ban that was lifted."""
    now = now or utcnow()
    async with shop.database.write() as session:
        return await safeguards.unban(session, shop.shop_id, user_id, caller.actor, now)


async def list_bans(shop: ShopContext) -> list[Ban]:
    """/黑名单: every ban, newest first."""
    async with shop.database.read() as session:
        return await safeguards.list_bans(session, shop.shop_id)


async def refuse_if_banned(shop: ShopContext, caller: Caller) -> None:
    """For a use case that decides before opening its own transaction (/付款 picks a
    payment provider first): the same refusal as `safeguards.ensure_not_banned`."""
    if caller.is_staff:  # never banned
        return
    async with shop.database.read() as session:
        await safeguards.ensure_not_banned(session, shop.shop_id, caller.user_id)


async def set_purchase_limit(
    shop: ShopContext, ref: VariantRef, limit: int, now: datetime | None = None
) -> GuardView:
    """/限购: at most `limit` units of the variant per customer over their orders that
    are not cancelled or refunded; 0 removes the limit."""
    now = now or utcnow()
    async with shop.database.write() as session:
        _, variant = await catalog.resolve_variant(
            session, shop.shop_id, ref, include_delisted=True
        )
        return await safeguards.set_purchase_limit(session, variant, limit or None, now)


async def set_low_stock_alert(
    shop: ShopContext, ref: VariantRef, threshold: int, now: datetime | None = None
) -> GuardView:
    """/预警: staff are told once when the variant's stock falls to `threshold` or below;
    0 removes the variant's own threshold (LOW_STOCK_THRESHOLD applies again)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        _, variant = await catalog.resolve_variant(
            session, shop.shop_id, ref, include_delisted=True
        )
        return await safeguards.set_low_stock_threshold(session, variant, threshold or None, now)


@dataclass(frozen=True)
class SafeguardsOverview:
    shop_threshold: int  # LOW_STOCK_THRESHOLD (0: off)
    max_unpaid_orders: int  # MAX_UNPAID_ORDERS (0: no cap)
    guarded: list[GuardView]  # variants with a purchase limit or their own threshold
    low_stock: list[GuardView]  # on-shelf variants sold out or at/below their threshold


async def safeguards_overview(shop: ShopContext) -> SafeguardsOverview:
    """/限购 and /预警 without arguments: what is set, and what is low right now."""
    async with shop.database.read() as session:
        guarded = await safeguards.guarded_variants(session, shop.shop_id)
        low = await safeguards.low_stock_variants(session, shop.shop_id)
    settings = shop.settings
    return SafeguardsOverview(
        settings.low_stock_threshold, settings.max_unpaid_orders, guarded, low
    )
