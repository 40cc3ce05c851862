"""What /详情 shows beside the item page, remembered for a short while: the rating and
the items bought together. Both read the shop's sold orders and reviews, change rarely,
and cost two or three statements per /详情 (issue 16: /详情 at most 1.3× an echo bot).

An entry is used only while

- no write transaction committed in this process since it was read
  (`Database.writes_committed`): within one process a review, a payment or a listing
  change shows in the very next /详情; and
- it is younger than FACTS_TTL_SECONDS: another process on the same PostgreSQL database
  commits without this one knowing, so what it changes shows here at most that late.

The item page itself (name, price, stock, variants) is never cached."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .reports import TogetherItem
from .reviews import ItemRating

# How stale a rating or a bought-together list may be when another process wrote it.
FACTS_TTL_SECONDS = 30.0
# Entries kept at most (one per item looked at); beyond this the cache starts over.
MAX_ENTRIES = 2000


@dataclass(frozen=True)
class ItemFacts:
    rating: ItemRating
    together: tuple[TogetherItem, ...]


@dataclass
class ItemFactsCache:
    """Per item: its facts, when they were read, and the write count they were read at."""

    ttl: float = FACTS_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _entries: dict[int, tuple[float, int, ItemFacts]] = field(default_factory=dict)

    def get(self, item_id: int, writes_committed: int) -> ItemFacts | None:
        entry = self._entries.get(item_id)
        if entry is None:
            return None
        read_at, read_with, facts = entry
        if read_with != writes_committed or self.clock() - read_at >= self.ttl:
            del self._entries[item_id]
            return None
        return facts

    def put(self, item_id: int, writes_committed: int, facts: ItemFacts) -> None:
        """`writes_committed`: the count taken before the facts were read (a write that
        commits during the read makes the entry stale at once)."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[item_id] = (self.clock(), writes_committed, facts)
