"""CPU per outbox notice, in-process: what the dispatcher spends to claim, send (a sender
that returns at once) and mark one row, the way the dispatcher loop meets it after an
order: one row queued, a wake (`dispatch_accounts`, or `dispatch_due` without routing),
then the loop's second pass because something was sent (an empty claim).

    python bench/outbox_cost.py [--count 300]

Run it from another checkout's root to compare (it imports the code next to it)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import ShopSettings
from models.types import utcnow
from services import outbox
from services.context import close_shop, open_shop
from services.outbox import Pacer, Segment, Target
from services.usecases import delivery


async def measure(count: int, routed: bool) -> float:
    workdir = Path(tempfile.mkdtemp())
    settings = ShopSettings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'shop.db'}",
        data_dir=str(workdir / "data"),
        shop_name="bench",
    )
    shop = await open_shop(settings, frozenset({1}))

    async def send(target: Target, segments: list[Segment]) -> None:
        return None

    pacer = Pacer(0.0, 10**9)
    accounts = [delivery.Account(10000, send, pacer)]
    cpu = 0.0
    sent = 0
    for n in range(count):
        async with shop.database.write() as session:
            notice = [outbox.text(f"新订单 {n}")]
            await outbox.enqueue(session, Target.private(50000 + n), notice, f"k{n}", utcnow())
        started = time.process_time()
        for _ in range(2):
            if routed:
                sent += await delivery.dispatch_accounts(shop, accounts)
            else:
                sent += await delivery.dispatch_due(shop, pacer, send)
        cpu += time.process_time() - started
    await close_shop(shop)
    assert sent == count, (sent, count)
    return cpu * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    for routed in (True, False):
        ms = asyncio.run(measure(args.count, routed))
        how = "dispatch_accounts (one account)" if routed else "dispatch_due (no routing)"
        print(f"{how}: {ms:.2f} ms CPU per notice ({args.count} notices)")


if __name__ == "__main__":
    main()
