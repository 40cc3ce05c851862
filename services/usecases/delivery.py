"""Sending the outbox: due rows go out through whatever sender the door provides (the
chat door gives a connected QQ account), paced, each claimed just before its own send."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable

from models.types import utcnow
from services import outbox
from services.context import ShopContext
from services.media import load_image
from services.outbox import Pacer, Segment, Target
from services.usecases.card_keys import expand_card_keys

# Sends one message, or for a TargetKind.FRIEND_REQUEST row approves the request (its
# flag in the segments, outbox.request_flag); raises on any failure (the row is then
# retried with backoff).
Sender = Callable[[Target, list[Segment]], Awaitable[None]]


# However quiet it is, the dispatcher looks for due rows this often (retries, rows queued
# by another process on the same database).
IDLE_WAKE_SECONDS = 5.0

__all__ = ["Pacer", "Sender", "dispatch_due", "materialise", "pacer_for", "wait_for_notices"]


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


async def dispatch_due(
    shop: ShopContext,
    pacer: Pacer,
    send: Sender | None,
    *,
    batch: int = 20,
    on_given_up: Callable[[int, Target, str], None] | None = None,
) -> int:
    """Sends up to `batch` due rows (paced); returns how many were sent. With no sender
    (no QQ account connected) nothing is sent and nothing is lost. Each row is claimed
    just before its own send, never a batch ahead: a claim runs out after
    outbox.CLAIM_SECONDS, and another process must not find a row still waiting here
    behind the pacing and send it too."""
    sent = 0
    for _ in range(batch):
        async with shop.database.write() as session:
            claimed = await outbox.claim_due(session, utcnow(), 1)
        if not claimed:
            break
        [message] = claimed
        target = Target(message.target_type, message.target_id)
        if send is None:
            async with shop.database.write() as session:
                await outbox.release_unsent(session, message, utcnow())
            break
        wait = pacer.wait_time(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            # An order's card keys are read and put in only now (never stored in a row).
            segments = await expand_card_keys(shop, outbox.decode(message))
            await send(target, materialise(segments, shop))
        except Exception as error:  # every kind of failure means "retry later"
            pacer.record(time.monotonic())
            async with shop.database.write() as session:
                gave_up = await outbox.mark_failed(session, message, repr(error), utcnow())
            if gave_up and on_given_up is not None:
                on_given_up(message.id or 0, target, repr(error))
            continue
        pacer.record(time.monotonic())
        async with shop.database.write() as session:
            await outbox.mark_sent(session, message.id or 0, utcnow())
        sent += 1
    return sent
