"""Sending the outbox: due rows go out through the senders the door provides (the chat
door gives its connected QQ accounts), paced per account, each claimed just before its
own send, through an account that can reach its target (services/accounts.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from models.types import utcnow
from services import outbox
from services.context import ShopContext
from services.media import load_image
from services.outbox import Pacer, Segment, Target
from services.usecases import accounts as accounts_usecases
from services.usecases.card_keys import expand_card_keys

# Sends one message, or for a TargetKind.FRIEND_REQUEST row approves the request (its
# flag in the segments, outbox.request_flag); raises on any failure (the row is then
# retried with backoff).
Sender = Callable[[Target, list[Segment]], Awaitable[None]]


# However quiet it is, the dispatcher looks for due rows this often (retries, rows queued
# by another process on the same database).
IDLE_WAKE_SECONDS = 5.0

__all__ = [
    "Account",
    "Pacer",
    "Sender",
    "dispatch_accounts",
    "dispatch_due",
    "materialise",
    "pacer_for",
    "wait_for_notices",
]


def pacer_for(shop: ShopContext) -> Pacer:
    """SEND_INTERVAL_SECONDS apart (with jitter), at most SEND_PER_MINUTE."""
    return Pacer(shop.settings.send_interval_seconds, shop.settings.send_per_minute)


async def wait_for_notices(shop: ShopContext) -> None:
    """Until a transaction that queued notices commits, or a short while passes."""
    shop.notices_committed.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            shop.notices_committed.wait(),
            timeout=min(shop.settings.clock_tick_seconds, IDLE_WAKE_SECONDS),
        )


def materialise(segments: list[Segment], shop: ShopContext) -> list[Segment]:
    """Stored images travel as base64 (works when the OneBot implementation runs on
    another machine than the bot); an image that is gone is left out."""
    out = []
    for segment in segments:
        path = segment.get("data", {}).get("data_path") if segment.get("type") == "image" else None
        if path is None:
            out.append(segment)
            continue
        data = load_image(path, shop.data_dir)
        if data is not None:
            out.append(
                {"type": "image", "data": {"file": "base64://" + base64.b64encode(data).decode()}}
            )
    return out


@dataclass
class Account:
    """A QQ account this process can send through: its id (the OneBot self_id), its
    sender, and its own pacing (QQ limits each account on its own)."""

    id: int
    send: Sender
    pacer: Pacer


async def dispatch_accounts(
    shop: ShopContext,
    accounts: Sequence[Account],
    *,
    batch: int = 20,
    on_given_up: Callable[[int, Target, str], None] | None = None,
) -> int:
    """Sends up to `batch` due rows per account, each account on its own pacing and all
    at once (one account waiting for its pacing holds no other back). An account claims
    only the rows it should send (outbox.claim_due: a target it reaches, and for a
    customer the account they talked to last; an unknown target; or one whose accounts
    are gone). First writes what the accounts saw and their heartbeats. With no
    account connected nothing is sent and nothing is touched."""
    if not accounts:
        return 0
    await accounts_usecases.flush(shop, [account.id for account in accounts])
    results = await asyncio.gather(
        *(
            _dispatch(shop, account, [account.id], batch=batch, on_given_up=on_given_up)
            for account in accounts
        ),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return sum(result for result in results if isinstance(result, int))


async def dispatch_due(
    shop: ShopContext,
    pacer: Pacer,
    send: Sender | None,
    *,
    batch: int = 20,
    on_given_up: Callable[[int, Target, str], None] | None = None,
) -> int:
    """Sends up to `batch` due rows (paced) through one sender, whichever account it
    is: every row, no routing (a door with a single way out). With no sender nothing
    is sent and nothing is lost."""
    if send is None:
        return 0
    return await _dispatch(
        shop, Account(0, send, pacer), None, batch=batch, on_given_up=on_given_up
    )


async def _dispatch(
    shop: ShopContext,
    account: Account,
    routing: list[int] | None,
    *,
    batch: int,
    on_given_up: Callable[[int, Target, str], None] | None,
) -> int:
    """Each row is claimed just before its own send, never a batch ahead: a claim runs
    out after outbox.CLAIM_SECONDS, and another process must not find a row still
    waiting here behind the pacing and send it too. A sent row is marked in the same
    transaction as the next claim (one write transaction fewer per notice, issue 16);
    should that transaction fail, the mark is written on its own."""
    sent = 0
    delivered: int | None = None  # sent, not yet marked
    try:
        for _ in range(batch):
            async with shop.database.write() as session:
                if delivered is not None:
                    await outbox.mark_sent(session, delivered, utcnow())
                claimed = await outbox.claim_due(session, utcnow(), 1, routing)
            delivered = None
            if not claimed:
                break
            [message] = claimed
            target = Target(message.target_type, message.target_id)
            wait = account.pacer.wait_time(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                # An order's card keys are read and put in only now (never stored in a row).
                segments = await expand_card_keys(shop, outbox.decode(message))
                await account.send(target, materialise(segments, shop))
            except Exception as error:  # every kind of failure means "retry later"
                account.pacer.record(time.monotonic())
                async with shop.database.write() as session:
                    gave_up = await outbox.mark_failed(session, message, repr(error), utcnow())
                if gave_up and on_given_up is not None:
                    on_given_up(message.id, target, repr(error))
                continue
            account.pacer.record(time.monotonic())
            delivered = message.id
            sent += 1
    finally:
        if delivered is not None:
            async with shop.database.write() as session:
                await outbox.mark_sent(session, delivered, utcnow())
    return sent
