"""A process that stops cleanly takes back the presence of its QQ accounts
(services/usecases/accounts.leaving): another process on the same database answers in
their groups and sends their notices at its next refresh, not after
outbox.ACCOUNT_GONE_SECONDS. Two shop contexts on one database play the two processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.tables import AccountPresence
from models.types import utcnow
from services import accounts, outbox
from services.context import ShopContext, close_shop, open_shop
from services.outbox import ACCOUNT_GONE_SECONDS, Pacer, Segment, Target
from services.usecases import accounts as accounts_usecases
from services.usecases import delivery
from services.usecases.delivery import Account
from tests.conftest import OWNER_ID

A = 1111
B = 2222
GROUP = Target.group(555000)
CUSTOMER = Target.private(30003)
SOON = timedelta(seconds=30)  # well inside ACCOUNT_GONE_SECONDS


@pytest.fixture
async def other(settings: Any, shop_context: ShopContext) -> AsyncIterator[ShopContext]:
    """A second bot process on the same database."""
    context = await open_shop(settings, frozenset({OWNER_ID}))
    yield context
    await close_shop(context)


def answerers(shop: ShopContext, *account_ids: int) -> list[int]:
    return [a for a in account_ids if accounts_usecases.saw_message(shop, a, GROUP.id, 30003)]


async def present(shop: ShopContext) -> set[int]:
    async with shop.database.read() as session:
        rows = await session.execute(select(AccountPresence.account_id))
        return set(rows.scalars())


async def _never(target: Target, segments: list[Segment]) -> None:
    raise AssertionError("nothing is sent here")


async def test_a_stopping_process_hands_its_groups_over_at_the_next_refresh(
    shop_context: ShopContext, other: ShopContext
) -> None:
    t0 = utcnow()
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], t0)
    await accounts_usecases.account_connected(other, B, [GROUP.id], t0)
    assert answerers(other, A, B) == [A]
    await accounts_usecases.refresh_answering(other, t0 + SOON)
    assert answerers(other, A, B) == [A]  # A's process is still there

    assert await accounts_usecases.leaving(shop_context) == 1
    assert await present(other) == {B}
    await accounts_usecases.refresh_answering(other, t0 + SOON)
    assert answerers(other, A, B) == [B]


async def test_a_stopping_process_hands_its_customers_notices_over(
    shop_context: ShopContext, other: ShopContext
) -> None:
    """A customer who talked to A last: B may send them a notice as soon as A's process
    has left, not only after ACCOUNT_GONE_SECONDS. The presence written by a dispatch
    round (the heartbeat) goes as well as the one written on connect."""
    t0 = utcnow()
    accounts_usecases.saw_message(shop_context, A, None, CUSTOMER.id)
    await delivery.dispatch_accounts(shop_context, [Account(A, _never, Pacer(0, 1000))])
    await accounts_usecases.account_connected(other, B, [GROUP.id], t0)
    async with other.database.write() as session:
        await outbox.enqueue(session, CUSTOMER, [outbox.text("你好")], "notice", t0)
    async with other.database.write() as session:
        assert await outbox.claim_due(session, t0 + SOON, 10, [B]) == []

    assert await accounts_usecases.leaving(shop_context) == 1
    async with other.database.write() as session:
        claimed = await outbox.claim_due(session, t0 + SOON, 10, [B])
    assert [row.dedupe_key for row in claimed] == ["notice"]
    assert t0 + SOON < t0 + timedelta(seconds=ACCOUNT_GONE_SECONDS)


async def test_a_presence_another_process_wrote_since_stays(
    shop_context: ShopContext, other: ShopContext
) -> None:
    """A moved to the other process (it heartbeats A later): this process's leaving
    must not make A look gone there."""
    t0 = utcnow()
    await accounts_usecases.account_connected(shop_context, A, [GROUP.id], t0)
    await accounts_usecases.account_connected(other, A, [GROUP.id], t0 + SOON)
    assert await accounts_usecases.leaving(shop_context) == 0
    assert await present(other) == {A}


async def test_a_process_that_wrote_no_presence_deletes_nothing(
    shop_context: ShopContext, other: ShopContext
) -> None:
    t0 = utcnow()
    async with other.database.write() as session:
        await accounts.heartbeat(session, [B], t0)
    assert await accounts_usecases.leaving(shop_context) == 0
    assert await present(other) == {B}
