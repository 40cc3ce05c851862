"""Announcements: staff send one text (/公告) to every group the shop is enabled in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.types import utcnow
from services import groups, notices, outbox
from services.actors import Caller
from services.context import ShopContext
from services.limits import FIELD_ANNOUNCEMENT, MAX_ANNOUNCEMENT, check_text
from services.outbox import Target


@dataclass(frozen=True)
class Announced:
    groups: int  # how many groups it was queued for; 0: no group is enabled


async def announce(
    shop: ShopContext, caller: Caller, text: str, now: datetime | None = None
) -> Announced:
    """Queues the announcement for every enabled group of the shop (the outbox paces
    them, so the account is not flagged for bursts). The text goes out as plain text, CQ
    codes and all."""
    now = now or utcnow()
    body = notices.announcement(
        shop.settings.shop_name, check_text(FIELD_ANNOUNCEMENT, text, MAX_ANNOUNCEMENT)
    )
    async with shop.database.write() as session:
        targets = sorted(await groups.enabled_group_ids(session, shop.shop_id))
        for group_id in targets:
            await outbox.enqueue(
                session,
                Target.group(group_id),
                [outbox.text(body)],
                f"announce:{now.timestamp()}:{group_id}",
                now,
            )
    return Announced(len(targets))
