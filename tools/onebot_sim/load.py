"""Load mode: many simulated users at once, measuring reply latency and throughput.

:func:`drive_load` runs the load on a connected :class:`~.simulator.OneBotSimulator`
(it is also :meth:`OneBotSimulator.run_load`); :func:`run_load` connects one first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .recorder import SentMessage
from .segments import MessageLike, event_segments, render_text
from .simulator import OneBotSimulator

__all__ = ["drive_load", "percentile", "run_load"]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); 0.0 for an empty sequence."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class _Pending:
    user_id: int
    group_id: int | None
    message_id: int
    t0: float
    future: asyncio.Future[SentMessage]


async def drive_load(
    sim: OneBotSimulator,
    users: int,
    commands: int,
    message: MessageLike,
    group_id: int | None = None,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
    base_user_id: int = 20001,
) -> dict[str, Any]:
    """``users`` concurrent users each send ``commands`` messages, one after another.

    Latency = event sent -> the bot's send call for that user. In groups a reply is
    matched by its ``reply`` segment (quoted message_id), then by ``at`` of the user,
    then to the oldest pending user in that group; in private chats by the target user.
    """
    loop = asyncio.get_running_loop()
    pending: dict[int, _Pending] = {}  # by user_id (one outstanding command per user)
    by_message: dict[int, _Pending] = {}

    def resolve(entry: _Pending, sent: SentMessage) -> None:
        pending.pop(entry.user_id, None)
        by_message.pop(entry.message_id, None)
        if not entry.future.done():
            entry.future.set_result(sent)

    def on_send(sent: SentMessage) -> None:
        if sent.target_type == "private":
            entry = pending.get(sent.target_id)
            if entry is not None and entry.group_id is None:
                resolve(entry, sent)
            return
        in_group = [p for p in pending.values() if p.group_id == sent.target_id]
        if not in_group:
            return
        quoted = sent.reply_to
        if quoted is not None and quoted in by_message:
            resolve(by_message[quoted], sent)
            return
        mentioned = set(sent.mentions)
        for entry in sorted(in_group, key=lambda p: p.t0):
            if str(entry.user_id) in mentioned:
                resolve(entry, sent)
                return
        resolve(min(in_group, key=lambda p: p.t0), sent)

    latencies: list[float] = []
    counters = {"timeouts": 0, "errors": 0}

    async def user_loop(user_id: int) -> None:
        for _ in range(commands):
            mid = sim.next_message_id()
            entry = _Pending(user_id, group_id, mid, 0.0, loop.create_future())
            pending[user_id] = entry
            by_message[mid] = entry
            entry.t0 = time.perf_counter()
            try:
                if group_id is None:
                    await sim.send_private(user_id, message, f"压测{user_id}", message_id=mid)
                else:
                    await sim.send_group(
                        group_id, user_id, message, "member", f"压测{user_id}", message_id=mid
                    )
                sent = await asyncio.wait_for(entry.future, timeout)
            except TimeoutError:
                counters["timeouts"] += 1
                continue
            except ConnectionError:
                counters["errors"] += 1
                return
            finally:
                pending.pop(user_id, None)
                by_message.pop(mid, None)
            latencies.append((sent.mono - entry.t0) * 1000.0)

    remove = sim.add_send_listener(on_send)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(user_loop(base_user_id + i) for i in range(users)))
    finally:
        remove()
    duration = time.perf_counter() - started
    total = users * commands
    ok = len(latencies)
    return {
        "mode": "private" if group_id is None else "group",
        "group_id": group_id,
        "message": message if isinstance(message, str) else render_text(event_segments(message)),
        "users": users,
        "commands_per_user": commands,
        "total": total,
        "ok": ok,
        "timeouts": counters["timeouts"],
        "errors": total - ok - counters["timeouts"],  # incl. commands never sent
        "duration_s": round(duration, 4),
        "throughput_cmd_s": round(ok / duration, 2) if duration > 0 else 0.0,
        "latency_ms": {
            "min": round(min(latencies), 3) if latencies else 0.0,
            "mean": round(sum(latencies) / ok, 3) if latencies else 0.0,
            "p50": round(percentile(latencies, 50), 3),
            "p90": round(percentile(latencies, 90), 3),
            "p99": round(percentile(latencies, 99), 3),
            "max": round(max(latencies), 3) if latencies else 0.0,
        },
    }


async def run_load(
    url: str,
    users: int,
    commands: int,
    message: MessageLike,
    group_id: int | None = None,
    token: str | None = None,
    *,
    self_id: int = 10000,
    timeout: float = 10.0,  # noqa: ASYNC109
    connect_timeout: float = 30.0,
    base_user_id: int = 20001,
    sim: OneBotSimulator | None = None,
) -> dict[str, Any]:
    """Connect a simulator (unless ``sim`` is given) and run :meth:`OneBotSimulator.run_load`.

    Pass an already-connected ``sim`` to reuse its connection (NoneBot refuses a second
    connection with the same ``X-Self-ID``).
    """
    if sim is not None:
        return await drive_load(
            sim, users, commands, message, group_id, timeout=timeout, base_user_id=base_user_id
        )
    owned = OneBotSimulator(url, self_id=self_id, access_token=token)
    await owned.connect(timeout=connect_timeout)
    try:
        return await drive_load(
            owned, users, commands, message, group_id, timeout=timeout, base_user_id=base_user_id
        )
    finally:
        await owned.close()
