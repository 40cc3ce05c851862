"""Several QQ accounts: which dispatcher claims a notice and which account sends it
(services/accounts.py, outbox.claim_due with accounts, delivery.dispatch_accounts)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from models.db import Database
from models.tables import AccountPresence, AccountReach, OutboxMessage
from models.types import utcnow
from services import accounts, outbox
from services.context import ShopContext
from services.outbox import (
    ACCOUNT_GONE_SECONDS,
    ROUTE_FALLBACK_ATTEMPTS,
    Pacer,
    Segment,
    Target,
    TargetKind,
)
from services.usecases import accounts as accounts_usecases
from services.usecases import delivery
from services.usecases.delivery import Account

A = 1111
B = 2222
C = 3333
GROUP = Target.group(555000)
CUSTOMER = Target.private(30003)


async def queue(db: Database, target: Target, key: str, now: datetime) -> None:
    async with db.write() as session:
        await outbox.enqueue(session, target, [outbox.text("你好")], key, now)


async def reach(db: Database, account: int, target: Target, seen: datetime) -> None:
    async with db.write() as session:
        await accounts.record_reach(session, {(account, target.kind.value, target.id): seen})


async def present(db: Database, *account_ids: int, at: datetime) -> None:
    async with db.write() as session:
        await accounts.heartbeat(session, account_ids, at)


async def claim(db: Database, now: datetime, *account_ids: int) -> list[str]:
    async with db.write() as session:
        rows = await outbox.claim_due(session, now, 10, account_ids)
    return [row.dedupe_key for row in rows]


async def reach_rows(db: Database) -> set[tuple[int, str, int]]:
    async with db.read() as session:
        rows = (await session.execute(select(AccountReach))).scalars()
        return {(r.account_id, r.target_type, r.target_id) for r in rows}


# --- claiming ------------------------------------------------------------------------------


async def test_a_group_only_b_is_in_is_claimed_by_b_only(db: Database) -> None:
    now = utcnow()
    await present(db, A, B, at=now)
    await reach(db, B, GROUP, now)
    await queue(db, GROUP, "g", now)
    assert await claim(db, now, A) == []
    assert await claim(db, now, B) == ["g"]


async def test_an_unknown_target_is_claimed_by_anyone(db: Database) -> None:
    """No account ever saw it (and a one-account shop before it learned anything):
    every dispatcher may try, as before several accounts existed."""
    now = utcnow()
    await present(db, A, B, at=now)
    await reach(db, B, GROUP, now)
    await queue(db, Target.group(999), "unknown group", now)
    await queue(db, Target.private(777), "unknown customer", now)
    assert await claim(db, now, A) == ["unknown group", "unknown customer"]


async def test_a_group_two_accounts_are_in_goes_to_either(db: Database) -> None:
    now = utcnow()
    await present(db, A, B, at=now)
    await reach(db, A, GROUP, now - timedelta(hours=1))
    await reach(db, B, GROUP, now)
    await queue(db, GROUP, "first", now)
    await queue(db, GROUP, "second", now + timedelta(seconds=1))
    assert await claim(db, now, A) == ["first"]  # not only the one that saw it last
    assert await claim(db, now + timedelta(seconds=1), B) == ["second"]


async def test_a_customer_is_written_to_by_the_account_they_talked_to_last(db: Database) -> None:
    now = utcnow()
    await present(db, A, B, at=now)
    await reach(db, A, CUSTOMER, now - timedelta(days=3))
    await reach(db, B, CUSTOMER, now - timedelta(minutes=1))
    await queue(db, CUSTOMER, "notice", now)
    assert await claim(db, now, A) == []
    assert await claim(db, now, B) == ["notice"]


async def test_customers_of_different_accounts_do_not_mix(db: Database) -> None:
    """Regression: "someone else saw them later" once compared with any queued row's
    customer, so B's fresh customer kept A's customer from A."""
    now = utcnow()
    other = Target.private(40004)
    await present(db, A, B, at=now)
    await reach(db, A, CUSTOMER, now - timedelta(hours=1))
    await reach(db, B, other, now)
    await queue(db, CUSTOMER, "for A", now)
    await queue(db, other, "for B", now)
    assert await claim(db, now, A) == ["for A"]
    assert await claim(db, now, B) == ["for B"]


async def test_rows_of_an_account_that_is_gone_fall_back_after_a_while(db: Database) -> None:
    """B stops heartbeating (its process stopped): its rows wait for it a while, then
    another account sends them; the customer's row goes to the account they talked to
    before B."""
    t0 = utcnow()
    await present(db, A, B, at=t0)
    await reach(db, B, GROUP, t0)
    await reach(db, A, CUSTOMER, t0 - timedelta(days=3))
    await reach(db, B, CUSTOMER, t0)
    await queue(db, GROUP, "group", t0)
    await queue(db, CUSTOMER, "customer", t0)
    await present(db, A, at=t0 + timedelta(seconds=ACCOUNT_GONE_SECONDS - 10))
    assert await claim(db, t0 + timedelta(seconds=ACCOUNT_GONE_SECONDS - 10), A) == []
    later = t0 + timedelta(seconds=ACCOUNT_GONE_SECONDS + 10)
    await present(db, A, at=later)
    assert await claim(db, later, C) == ["group"]  # C reaches neither; only the group is open
    assert await claim(db, later, A) == ["customer"]


async def test_a_row_its_accounts_keep_failing_is_open_to_every_account(db: Database) -> None:
    """What was learned may be out of date (A joined the group after connecting and
    nobody spoke there since): after B failed ROUTE_FALLBACK_ATTEMPTS times, A tries."""
    now = utcnow()
    await present(db, A, B, at=now)
    await reach(db, B, GROUP, now)
    await queue(db, GROUP, "g", now)
    for attempt in range(ROUTE_FALLBACK_ATTEMPTS):
        assert await claim(db, now, A) == []
        [row] = await _claim_rows(db, now, B)
        async with db.write() as session:
            await outbox.mark_failed(session, row, "risk control", now)
        assert row.attempts == attempt + 1
        now = now + timedelta(hours=2)  # past the backoff
        await present(db, A, B, at=now)
    assert await claim(db, now, A) == ["g"]


async def _claim_rows(db: Database, now: datetime, *account_ids: int) -> list[OutboxMessage]:
    async with db.write() as session:
        return await outbox.claim_due(session, now, 10, account_ids)


async def test_without_accounts_every_row_is_claimed(db: Database) -> None:
    """claim_due without accounts (one sender, no routing) is what it always was."""
    now = utcnow()
    await present(db, B, at=now)
    await reach(db, B, GROUP, now)
    await queue(db, GROUP, "g", now)
    async with db.write() as session:
        assert [r.dedupe_key for r in await outbox.claim_due(session, now, 10)] == ["g"]


# --- learning -------------------------------------------------------------------------------


async def test_sync_groups_adds_and_forgets_the_accounts_groups(db: Database) -> None:
    now = utcnow()
    async with db.write() as session:
        await accounts.sync_groups(session, A, [1, 2], now)
        await accounts.sync_groups(session, B, [2], now)
    await reach(db, A, CUSTOMER, now)
    async with db.write() as session:
        await accounts.sync_groups(session, A, [2, 3], now + timedelta(minutes=1))
    assert await reach_rows(db) == {
        (A, "group", 2),
        (A, "group", 3),
        (B, "group", 2),
        (A, "private", CUSTOMER.id),  # a customer is no group: kept
    }
    async with db.write() as session:
        await accounts.sync_groups(session, A, [], now)
    assert await reach_rows(db) == {(B, "group", 2), (A, "private", CUSTOMER.id)}


async def test_a_sighting_never_moves_back_in_time(db: Database) -> None:
    now = utcnow()
    await reach(db, A, CUSTOMER, now)
    await reach(db, A, CUSTOMER, now - timedelta(hours=1))
    async with db.read() as session:
        [row] = (await session.execute(select(AccountReach))).scalars()
    assert row.last_seen_at == now


async def test_messages_are_remembered_and_written_once_by_the_dispatcher(
    shop_context: ShopContext,
) -> None:
    """The router reports every message; only new sightings reach the database, in one
    write by the dispatcher round, and the accounts' heartbeat with them."""
    for _ in range(50):
        accounts_usecases.saw_message(shop_context, A, 555000, 30003)
        accounts_usecases.saw_message(shop_context, B, None, 30003)
    assert shop_context.reach.pending()
    async with shop_context.database.read() as session:
        assert list((await session.execute(select(AccountReach))).scalars()) == []
    await delivery.dispatch_accounts(shop_context, [Account(A, _never, Pacer(0, 1000))])
    assert await reach_rows(shop_context.database) == {(A, "group", 555000), (B, "private", 30003)}
    async with shop_context.database.read() as session:
        presence = list((await session.execute(select(AccountPresence))).scalars())
    assert [p.account_id for p in presence] == [A]
    assert not shop_context.reach.pending()
    accounts_usecases.saw_message(shop_context, A, 555000, 40004)  # seen lately: nothing new
    assert not shop_context.reach.pending()


async def test_account_connected_is_present_in_its_groups(shop_context: ShopContext) -> None:
    now = utcnow()
    await accounts_usecases.account_connected(shop_context, B, [555000, 666000], now)
    await accounts_usecases.account_connected(shop_context, A, None, now)  # list unreadable
    assert await reach_rows(shop_context.database) == {(B, "group", 555000), (B, "group", 666000)}
    async with shop_context.database.read() as session:
        presence = {
            p.account_id for p in (await session.execute(select(AccountPresence))).scalars()
        }
    assert presence == {A, B}


# --- sending ----------------------------------------------------------------------------------


async def _never(target: Target, segments: list[Segment]) -> None:
    raise AssertionError(f"nothing should be sent to {target}")


def recorder(log: list[tuple[int, Target]], account: int) -> delivery.Sender:
    async def send(target: Target, segments: list[Segment]) -> None:
        log.append((account, target))

    return send


async def test_each_row_goes_out_through_the_account_that_reaches_it(
    shop_context: ShopContext,
) -> None:
    """One process with two accounts: the group only B is in goes through B, the
    customer who last talked to A through A, an unknown target through either."""
    db = shop_context.database
    now = utcnow()
    await accounts_usecases.account_connected(shop_context, B, [GROUP.id], now)
    await accounts_usecases.account_connected(shop_context, A, [], now)
    await reach(db, B, CUSTOMER, now - timedelta(days=1))
    await reach(db, A, CUSTOMER, now)
    await queue(db, GROUP, "group", now - timedelta(seconds=3))
    await queue(db, CUSTOMER, "customer", now - timedelta(seconds=2))
    await queue(db, Target.private(777), "unknown", now - timedelta(seconds=1))
    log: list[tuple[int, Target]] = []
    both = [
        Account(A, recorder(log, A), Pacer(0, 1000)),
        Account(B, recorder(log, B), Pacer(0, 1000)),
    ]
    assert await delivery.dispatch_accounts(shop_context, both) == 3
    assert {(B, GROUP), (A, CUSTOMER)} < set(log)
    assert [target for _account, target in log].count(Target.private(777)) == 1


async def test_a_friend_request_is_approved_by_the_account_it_was_sent_to(
    shop_context: ShopContext,
) -> None:
    db = shop_context.database
    now = utcnow()
    accounts_usecases.saw_friend_request(shop_context, B, 30003)
    await accounts_usecases.account_connected(shop_context, A, [], now)
    await accounts_usecases.account_connected(shop_context, B, [], now)
    async with db.write() as session:
        await outbox.enqueue(
            session, Target.friend_request(30003), [outbox.friend_request_flag("f")], "fr", now
        )
        await outbox.enqueue(session, CUSTOMER, [outbox.text("欢迎")], "hi", now)
    log: list[tuple[int, Target]] = []
    only_a = [Account(A, recorder(log, A), Pacer(0, 1000))]
    assert await delivery.dispatch_accounts(shop_context, only_a) == 0
    both = [*only_a, Account(B, recorder(log, B), Pacer(0, 1000))]
    assert await delivery.dispatch_accounts(shop_context, both) == 2
    assert len(log) == 2
    assert set(log) == {(B, CUSTOMER), (B, Target(TargetKind.FRIEND_REQUEST, 30003))}


async def test_each_account_is_paced_on_its_own(shop_context: ShopContext) -> None:
    """QQ limits each account: while A waits for its pacing, B sends."""
    db = shop_context.database
    now = utcnow()
    await accounts_usecases.account_connected(shop_context, A, [1], now)
    await accounts_usecases.account_connected(shop_context, B, [2], now)
    for n in range(2):
        await queue(db, Target.group(1), f"a{n}", now - timedelta(seconds=10 - n))
        await queue(db, Target.group(2), f"b{n}", now - timedelta(seconds=5 - n))
    log: list[tuple[int, Target]] = []
    both = [
        Account(A, recorder(log, A), Pacer(0.5, 1000)),
        Account(B, recorder(log, B), Pacer(0, 1000)),
    ]
    assert await delivery.dispatch_accounts(shop_context, both) == 4
    assert Counter(log[:3]) == Counter({(B, Target.group(2)): 2, (A, Target.group(1)): 1})
    assert log[3] == (A, Target.group(1))


# --- answering in a group several accounts are in -----------------------------------------


def answerers(shop: ShopContext, group_id: int, *account_ids: int) -> list[int]:
    """The accounts that answer a message the group sends to all of them."""
    return [
        account
        for account in account_ids
        if accounts_usecases.saw_message(shop, account, group_id, 30003)
    ]


async def test_the_lowest_present_account_in_the_group_answers(shop_context: ShopContext) -> None:
    now = utcnow()
    await accounts_usecases.account_connected(shop_context, B, [GROUP.id, 777], now)
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], now)
    assert answerers(shop_context, GROUP.id, A, B) == [A]
    assert answerers(shop_context, 777, A, B) == [B]  # A is not known there: B answers
    # Nobody is known to be in this group (nothing learned yet): everyone answers, as
    # with a single account.
    assert answerers(shop_context, 999, A, B) == [A, B]
    # Private chats are never held back: each account has its own.
    assert accounts_usecases.saw_message(shop_context, B, None, 30003)


async def test_a_single_account_answers_everywhere(shop_context: ShopContext) -> None:
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], utcnow())
    assert answerers(shop_context, GROUP.id, A) == [A]
    assert answerers(shop_context, 999, A) == [A]


async def test_an_account_gone_from_another_process_hands_over_after_the_refresh(
    shop_context: ShopContext,
) -> None:
    """A is connected to another process, which stopped heartbeating: once A counts as
    gone, B answers (at the next refresh)."""
    db = shop_context.database
    t0 = utcnow()
    await present(db, A, at=t0)
    await reach(db, A, GROUP, t0)
    await accounts_usecases.account_connected(shop_context, B, [GROUP.id], t0)
    assert answerers(shop_context, GROUP.id, A, B) == [A]
    await accounts_usecases.refresh_answering(
        shop_context, t0 + timedelta(seconds=ACCOUNT_GONE_SECONDS - 10)
    )
    assert answerers(shop_context, GROUP.id, A, B) == [A]
    later = t0 + timedelta(seconds=ACCOUNT_GONE_SECONDS + 10)
    await present(db, B, at=later)  # this process heartbeats B meanwhile
    await accounts_usecases.refresh_answering(shop_context, later)
    assert answerers(shop_context, GROUP.id, A, B) == [B]


async def test_a_lost_connection_hands_over_at_once_and_takes_over_again_on_return(
    shop_context: ShopContext,
) -> None:
    """A and B in one process: A's connection closes, B answers from the next message
    on (no database read), also after a refresh that still finds A's heartbeat; A
    connects again and answers again."""
    t0 = utcnow()
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], t0)
    await accounts_usecases.account_connected(shop_context, B, [GROUP.id], t0)
    assert answerers(shop_context, GROUP.id, A, B) == [A]
    accounts_usecases.account_lost(shop_context, A, t0 + timedelta(seconds=1))
    assert answerers(shop_context, GROUP.id, A, B) == [B]
    await accounts_usecases.refresh_answering(shop_context, t0 + timedelta(seconds=2))
    assert answerers(shop_context, GROUP.id, A, B) == [B]
    await accounts_usecases.account_connected(
        shop_context, A, [GROUP.id], t0 + timedelta(seconds=3)
    )
    assert answerers(shop_context, GROUP.id, A, B) == [A]


async def test_a_lost_account_that_connected_to_another_process_is_back(
    shop_context: ShopContext,
) -> None:
    """A left this process and connected to another one, which heartbeats it: at the
    next refresh A answers again, so both processes agree."""
    db = shop_context.database
    t0 = utcnow()
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], t0)
    await accounts_usecases.account_connected(shop_context, B, [GROUP.id], t0)
    accounts_usecases.account_lost(shop_context, A, t0 + timedelta(seconds=1))
    assert answerers(shop_context, GROUP.id, A, B) == [B]
    await present(db, A, at=t0 + timedelta(seconds=5))  # the other process's heartbeat
    await accounts_usecases.refresh_answering(shop_context, t0 + timedelta(seconds=6))
    assert answerers(shop_context, GROUP.id, A, B) == [A]


async def test_the_last_account_of_a_group_lost_leaves_it_to_whoever_receives(
    shop_context: ShopContext,
) -> None:
    t0 = utcnow()
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], t0)
    accounts_usecases.account_lost(shop_context, A, t0 + timedelta(seconds=1))
    assert answerers(shop_context, GROUP.id, A, B) == [A, B]


async def test_the_dispatcher_round_rereads_who_answers_only_now_and_then(
    shop_context: ShopContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B joins the group through another process: this process learns it at its next
    refresh, which the dispatcher's flush runs every ANSWERING_REFRESH_SECONDS."""
    db = shop_context.database
    now = utcnow()
    await accounts_usecases.account_connected(shop_context, B, [GROUP.id], now)
    assert answerers(shop_context, GROUP.id, A, B) == [B]
    await present(db, A, at=now)
    await reach(db, A, GROUP, now)
    await accounts_usecases.flush(shop_context, [B], now)
    assert answerers(shop_context, GROUP.id, A, B) == [B]  # not due yet: no read
    monkeypatch.setattr(accounts, "ANSWERING_REFRESH_SECONDS", 0.0)
    await accounts_usecases.flush(shop_context, [B], now)
    assert answerers(shop_context, GROUP.id, A, B) == [A]


async def test_an_account_back_in_another_process_is_next_in_line_again(
    shop_context: ShopContext,
) -> None:
    """B left this process and came back in another one; when A is lost later, B (not
    C) takes over."""
    db = shop_context.database
    t0 = utcnow()
    for account in (A, B, C):
        await accounts_usecases.account_connected(shop_context, account, [GROUP.id], t0)
    accounts_usecases.account_lost(shop_context, B, t0 + timedelta(seconds=1))
    await present(db, B, at=t0 + timedelta(seconds=5))  # the other process's heartbeat
    await accounts_usecases.refresh_answering(shop_context, t0 + timedelta(seconds=6))
    accounts_usecases.account_lost(shop_context, A, t0 + timedelta(seconds=7))
    assert answerers(shop_context, GROUP.id, A, B, C) == [B]
