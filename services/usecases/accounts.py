"""Several QQ accounts: what the doors tell the shop about them (services/accounts.py).

The chat door reports every message (`saw_message`, `saw_friend_request`: memory only,
nothing is written on the reply path) and each new connection (`account_connected`,
with the account's group list) or lost one (`account_lost`); the outbox dispatcher
writes what was seen and the heartbeats of its accounts in one short transaction per
round (`flush`), and re-reads which account answers in which group."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from models.types import utcnow
from services import accounts
from services.context import ShopContext
from services.outbox import TargetKind


def saw_message(shop: ShopContext, account_id: int, group_id: int | None, user_id: int) -> bool:
    """A message came in through `account_id`: from a group it is in, or privately from
    a customer who talks to it. Cheap enough for every message (dict lookups). True when
    this account answers it: always in a private chat; in a group several shop accounts
    are in, only the group's answering account (services.accounts.AnsweringAccounts)."""
    if group_id is None:
        shop.reach.saw(account_id, TargetKind.PRIVATE, user_id)
        return True
    shop.reach.saw(account_id, TargetKind.GROUP, group_id)
    return shop.answering.answers(account_id, group_id)


def saw_friend_request(shop: ShopContext, account_id: int, user_id: int) -> None:
    """A friend request to `account_id`: only that account can approve it, and the
    welcome goes out through it too."""
    shop.reach.saw(account_id, TargetKind.FRIEND_REQUEST, user_id)
    shop.reach.saw(account_id, TargetKind.PRIVATE, user_id)


async def account_connected(
    shop: ShopContext,
    account_id: int,
    group_ids: Collection[int] | None,
    now: datetime | None = None,
) -> None:
    """A QQ account connected to this process: it is present, and it is in exactly
    `group_ids` (None: its group list could not be read; what was learned stays)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        await accounts.heartbeat(session, [account_id], now)
        if group_ids is not None:
            await accounts.sync_groups(session, account_id, group_ids, now)
    shop.reach.wrote_presence([account_id], now)
    shop.reach.forget_heartbeat(account_id)
    shop.answering.back(account_id)
    await refresh_answering(shop, now)


def account_lost(shop: ShopContext, account_id: int, now: datetime | None = None) -> None:
    """This process's connection of `account_id` closed: in the groups where it
    answered, the next present account answers at once (memory only; its heartbeat
    simply stops, and other processes see it gone after outbox.ACCOUNT_GONE_SECONDS)."""
    shop.answering.lost(account_id, now or utcnow())


async def refresh_answering(shop: ShopContext, now: datetime | None = None) -> None:
    """Re-reads which accounts are in which group and present (one query)."""
    async with shop.database.read() as session:
        members = await accounts.answering_candidates(session, now or utcnow())
    shop.answering.replace(members)


async def flush(
    shop: ShopContext, account_ids: Collection[int], now: datetime | None = None
) -> None:
    """Writes the sightings since the last flush and the heartbeats that are due, and
    every ANSWERING_REFRESH_SECONDS re-reads who answers in which group; no database
    access at all in between (the usual case)."""
    due = shop.reach.heartbeat_due(account_ids)
    now = now or utcnow()
    if due or shop.reach.pending():
        sightings = {
            key: datetime.fromtimestamp(seen, UTC) for key, seen in shop.reach.take().items()
        }
        async with shop.database.write() as session:
            await accounts.heartbeat(session, due, now)
            await accounts.record_reach(session, sightings)
        shop.reach.wrote_presence(due, now)
    if shop.answering.refresh_due():
        await refresh_answering(shop, now)


async def leaving(shop: ShopContext) -> int:
    """This process stops cleanly (after its outbox dispatcher stopped, so no heartbeat
    follows): the presence of its accounts is taken back, and other processes answer in
    their groups and send their notices within a minute instead of
    outbox.ACCOUNT_GONE_SECONDS. Returns how many presence rows went."""
    written = shop.reach.presence_written()
    if not written:
        return 0
    async with shop.database.write() as session:
        return await accounts.withdraw_presence(session, written)
