"""services/item_facts.py: /详情's rating and bought-together are reused only while no
write committed in this process since they were read, and for FACTS_TTL_SECONDS at most
(the through-the-use-case checks are in test_reports.py and test_usecases_catalog.py)."""

from __future__ import annotations

from services.item_facts import FACTS_TTL_SECONDS, MAX_ENTRIES, ItemFacts, ItemFactsCache
from services.reviews import ItemRating

FACTS = ItemFacts(ItemRating(4.5, 2, []), ())


def _cache() -> tuple[ItemFactsCache, list[float]]:
    clock = [100.0]
    return ItemFactsCache(clock=lambda: clock[0]), clock


def test_an_entry_is_reused_until_its_ttl() -> None:
    cache, clock = _cache()
    assert cache.get(1, 0) is None
    cache.put(1, 0, FACTS)
    clock[0] += FACTS_TTL_SECONDS - 0.01
    assert cache.get(1, 0) is FACTS
    clock[0] += 0.01
    assert cache.get(1, 0) is None
    assert cache.get(2, 0) is None


def test_a_write_committed_since_the_read_makes_it_stale() -> None:
    cache, _ = _cache()
    cache.put(1, 7, FACTS)
    assert cache.get(1, 8) is None
    # Gone for good, even if asked with the old count again.
    assert cache.get(1, 7) is None


def test_a_write_committed_during_the_read_makes_it_stale_at_once() -> None:
    """The use case takes the count before reading: an entry put with that count is
    never served once a write committed meanwhile."""
    cache, _ = _cache()
    before_the_read = 3
    cache.put(1, before_the_read, FACTS)
    assert cache.get(1, before_the_read + 1) is None


def test_the_cache_is_bounded() -> None:
    cache, _ = _cache()
    for item_id in range(MAX_ENTRIES):
        cache.put(item_id, 0, FACTS)
    assert cache.get(0, 0) is FACTS
    cache.put(MAX_ENTRIES, 0, FACTS)
    assert cache.get(0, 0) is None
    assert cache.get(MAX_ENTRIES, 0) is FACTS
