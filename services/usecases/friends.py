"""Friend requests: a QQ user adding the shop's account, so they can order in a private
chat and the shop's private notices reach them (QQ refuses private messages to strangers
and may refuse them in temporary sessions opened from a group)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from config import FriendRequests
from models.types import utcnow
from services import notices, outbox
from services.context import ShopContext
from services.outbox import Target


@dataclass(frozen=True)
class FriendRequestAnswer:
    approved: bool  # False: FRIEND_REQUESTS=ignore, the owner decides in QQ
    queued: bool  # False: this request (same flag) was already queued


async def friend_request(
    shop: ShopContext, user_id: int, flag: str, now: datetime | None = None
) -> FriendRequestAnswer:
    """With FRIEND_REQUESTS=accept, queues the approval and a welcome through the outbox
    (paced like every message the shop sends on its own: QQ flags accounts that act in
    bursts), once per request."""
    if shop.settings.friend_requests is not FriendRequests.ACCEPT:
        return FriendRequestAnswer(approved=False, queued=False)
    now = now or utcnow()
    # What differs comes first: outbox keys are cut at 120 characters, and flags are
    # the OneBot implementation's own strings.
    approve_key, welcome_key = (f"friend:{what}:{user_id}:{flag}" for what in ("ok", "hi"))
    async with shop.database.write() as session:
        queued = await outbox.enqueue(
            session,
            Target.friend_request(user_id),
            [outbox.friend_request_flag(flag)],
            approve_key,
            now,
        )
        if queued:
            # Queued after the approval, so it goes out after it (oldest first).
            welcome = notices.welcome_friend(shop.settings.shop_name)
            await notices.to_chat(session, user_id, None, welcome, welcome_key, now)
    return FriendRequestAnswer(approved=True, queued=queued)
