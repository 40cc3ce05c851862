"""Races on PostgreSQL, proven rather than argued: two ShopContexts on one database stand
for two bot processes (two engines, two connection pools, nothing shared in memory).
SQLite's single writer cannot even produce these interleavings, so the race tests run
only when TEST_DATABASE_URL names a server (CI sets it); without it they are skipped.

Each test here gets its own fresh schema (tests/databases.py), like every PostgreSQL run
of the rest of the suite."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from config import ShopSettings
from models.db import Database
from models.tables import (
    OrderEvent,
    OrderStatus,
    OutboxMessage,
    Payment,
    ShopOrder,
    Variant,
)
from models.types import utcnow
from services import catalog, outbox
from services.actors import Actor, Caller
from services.addresses import add_address, validate
from services.catalog import VariantRef
from services.clock import OrderClockSettings, run_order_clocks
from services.context import ShopContext, close_shop, open_shop
from services.errors import AlreadyPaid, InvalidTransition, OutOfStock
from services.order_rules import Mode
from services.outbox import Pacer, Segment, Target
from services.staff import Role
from services.usecases import buying, delivery, payments
from tests import databases
from tests.conftest import OWNER_ID
from tests.databases import fresh_schema, postgres_only

OWNER = Actor.of_role(Role.OWNER, OWNER_ID)
HOME = ("张三", "13800001111", "浙江省杭州市西湖区文三路 1 号")
PRICE = 1990
ROUNDS = 5  # races are repeated: one lucky interleaving proves little


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_schema() as url:
        yield url


@pytest.fixture
async def two_shops(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[ShopContext, ...]]:
    """The same shop opened twice on one PostgreSQL schema, as two bot processes would."""
    settings = ShopSettings(
        database_url=postgres_url,
        data_dir=str(tmp_path / "data"),
        shop_name="并发小店",
        max_unpaid_orders=100,
    )
    first = await open_shop(settings, frozenset({OWNER_ID}))
    second = await open_shop(settings, frozenset({OWNER_ID}))
    yield first, second
    await close_shop(second)
    await close_shop(first)


async def _item(shop: ShopContext, stock: int) -> tuple[int, int]:
    """A new item of one variant: (item id, variant id)."""
    async with shop.database.write() as session:
        item, variant = await catalog.create_item(session, shop.shop_id, "限量款", PRICE, stock)
    return item.id or 0, variant.id or 0


async def _variant(shop: ShopContext, variant_id: int) -> Variant:
    async with shop.database.read() as session:
        variant = await session.get(Variant, variant_id)
        assert variant is not None
        return variant


async def _count(shop: ShopContext, model: Any, *conditions: Any) -> int:
    async with shop.database.read() as session:
        query = select(func.count()).select_from(model).where(*conditions)
        return int((await session.execute(query)).scalar_one())


async def _unpaid_order(shop: ShopContext, customer: int, item_id: int) -> str:
    """An order placed through 确认 (the customer's summary of one unit)."""
    caller = Caller(customer, None, Role.CUSTOMER)
    async with shop.database.write() as session:
        await add_address(session, shop.shop_id, customer, validate(*HOME))
    await buying.buy_now(shop, caller, VariantRef(item_id), 1)
    placed = await buying.confirm_summary(shop, caller)
    assert isinstance(placed, buying.OrderPlaced)
    return placed.order.code


async def _both(first: Awaitable[Any], second: Awaitable[Any]) -> list[Any]:
    """Runs the two at once; returns results and exceptions alike."""
    return list(await asyncio.gather(first, second, return_exceptions=True))


# --- the database layer ------------------------------------------------------------


def test_search_path_needs_asyncpg() -> None:
    with pytest.raises(ValueError, match="asyncpg"):
        Database("postgresql+psycopg://postgres@127.0.0.1/test?search_path=shop")


def test_unreachable_test_database_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TEST_DATABASE_URL naming a server that does not answer stops the run (it must
    not pass by skipping PostgreSQL)."""
    from tools.bot_process import free_port

    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    monkeypatch.setattr(databases, "TEST_DATABASE_URL", dead)
    with pytest.raises(pytest.UsageError, match="cannot be reached"):
        databases.check_reachable()


@postgres_only
async def test_tables_live_in_the_schema_of_the_url(postgres_url: str) -> None:
    database = Database(postgres_url)
    try:
        await database.migrate()
        assert database.search_path and database.search_path.startswith("pytest_")
        async with database.engine.connect() as connection:
            schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
            names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
            public = set(
                await connection.run_sync(
                    lambda sync: inspect(sync).get_table_names(schema="public")
                )
            )
        assert schema == database.search_path
        assert {"shop", "shop_order", "outbox", "alembic_version"} <= names
        assert "shop_order" not in public
    finally:
        await database.dispose()


@postgres_only
async def test_two_processes_migrating_at_once_both_start(postgres_url: str) -> None:
    """Two bot processes starting together on an empty database: one creates the
    tables (under the migration lock), the other then finds them at head."""
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        results = await _both(first.migrate(), second.migrate())
        assert results == [None, None]
        async with first.engine.connect() as connection:
            versions = (await connection.execute(text("SELECT * FROM alembic_version"))).all()
        assert len(versions) == 1
    finally:
        await first.dispose()
        await second.dispose()


# --- 确认 on the last units --------------------------------------------------------


@postgres_only
async def test_racing_confirms_never_oversell(two_shops: tuple[ShopContext, ...]) -> None:
    """Twelve customers, each with a summary, type 确认 at once through two processes
    while three units are left: three orders, nine refusals, stock exactly 0."""
    first, second = two_shops
    item_id, variant_id = await _item(first, stock=3)
    callers = [Caller(40000 + n, None, Role.CUSTOMER) for n in range(12)]
    async with first.database.write() as session:
        for caller in callers:
            await add_address(session, first.shop_id, caller.user_id, validate(*HOME))
    for n, caller in enumerate(callers):
        shop = first if n % 2 else second
        await buying.buy_now(shop, caller, VariantRef(item_id), 1)

    results = await asyncio.gather(
        *(
            buying.confirm_summary(first if n % 2 else second, caller)
            for n, caller in enumerate(callers)
        ),
        return_exceptions=True,
    )

    placed = [r for r in results if isinstance(r, buying.OrderPlaced)]
    refused = [r for r in results if isinstance(r, OutOfStock)]
    assert (len(placed), len(refused)) == (3, 9), results
    variant = await _variant(first, variant_id)
    assert variant.stock == 0
    assert await _count(first, ShopOrder) == 3


@postgres_only
async def test_racing_confirms_on_the_last_unit(two_shops: tuple[ShopContext, ...]) -> None:
    first, second = two_shops
    for round_number in range(ROUNDS):
        item_id, variant_id = await _item(first, stock=1)
        callers = [Caller(41000 + 2 * round_number + n, None, Role.CUSTOMER) for n in (0, 1)]
        for caller, shop in zip(callers, two_shops, strict=True):
            async with shop.database.write() as session:
                await add_address(session, shop.shop_id, caller.user_id, validate(*HOME))
            await buying.buy_now(shop, caller, VariantRef(item_id), 1)
        results = await _both(
            buying.confirm_summary(first, callers[0]), buying.confirm_summary(second, callers[1])
        )
        assert sorted(type(r).__name__ for r in results) == ["OrderPlaced", "OutOfStock"]
        assert (await _variant(first, variant_id)).stock == 0


# --- /收款 and payment notifies for one order --------------------------------------


async def _paid_rows(shop: ShopContext, code: str) -> tuple[int, int, int]:
    """(payments, events moving the order to paid, 'paid' notices) of the order."""
    async with shop.database.read() as session:
        order_id = (
            await session.execute(select(ShopOrder.id).where(ShopOrder.code == code))
        ).scalar_one()
    return (
        await _count(shop, Payment, Payment.order_id == order_id),
        await _count(
            shop,
            OrderEvent,
            OrderEvent.order_id == order_id,
            OrderEvent.to_status == OrderStatus.PAID.value,
            OrderEvent.from_status != OrderStatus.PAID.value,
        ),
        await _count(shop, OutboxMessage, OutboxMessage.dedupe_key.contains(f"{code}:paid")),  # type: ignore[attr-defined]
    )


async def _pay(shop: ShopContext, code: str, reference: str) -> payments.PaymentOutcome:
    return await payments.record_payment(
        shop, OWNER, code, provider="epay", reference=reference, amount_fen=None
    )


@postgres_only
async def test_racing_payments_with_one_reference_record_it_once(
    two_shops: tuple[ShopContext, ...],
) -> None:
    """The gateway's notify arriving at two processes at once (or twice at one): one
    records it, the other finds it recorded: no error, one Payment, sold counted once."""
    first, second = two_shops
    item_id, variant_id = await _item(first, stock=ROUNDS)
    for round_number in range(ROUNDS):
        code = await _unpaid_order(first, 42000 + round_number, item_id)
        results = await _both(_pay(first, code, f"T{code}"), _pay(second, code, f"T{code}"))
        assert sorted(r.recorded for r in results) == [False, True], results
        assert await _paid_rows(first, code) == (1, 1, 1)
        assert (await _variant(first, variant_id)).sold == round_number + 1


@postgres_only
async def test_racing_payments_with_two_references_pay_the_order_once(
    two_shops: tuple[ShopContext, ...],
) -> None:
    """Two different payments for one order at once (a notify and staff's /收款, two
    notifies of two attempts): exactly one moves the order to paid; the other is
    refused as a second payment (staff are told: the money goes back)."""
    first, second = two_shops
    item_id, variant_id = await _item(first, stock=ROUNDS)
    for round_number in range(ROUNDS):
        code = await _unpaid_order(first, 43000 + round_number, item_id)
        results = await _both(_pay(first, code, f"A{code}"), _pay(second, code, f"B{code}"))
        outcomes = [r for r in results if isinstance(r, payments.PaymentOutcome)]
        refusals = [r for r in results if isinstance(r, AlreadyPaid)]
        assert (len(outcomes), len(refusals)) == (1, 1), results
        assert outcomes[0].recorded
        assert await _paid_rows(first, code) == (1, 1, 1)
        assert (await _variant(first, variant_id)).sold == round_number + 1


@postgres_only
async def test_payment_racing_the_expiry_clock_keeps_the_money_and_the_stock(
    two_shops: tuple[ShopContext, ...],
) -> None:
    """The unpaid-order clock expires an order in one process while its payment arrives
    in the other: whichever wins, the order ends paid (revived if it had expired) with
    its stock reserved once; never cancelled with the money taken."""
    first, second = two_shops
    item_id, variant_id = await _item(first, stock=ROUNDS)
    clock = OrderClockSettings(timedelta(minutes=30), timedelta(hours=48))
    for round_number in range(ROUNDS):
        code = await _unpaid_order(first, 44000 + round_number, item_id)
        later = utcnow() + timedelta(hours=1)  # past the order's payment time
        results = await _both(
            run_order_clocks(first.database, clock, later), _pay(second, code, f"T{code}")
        )
        assert not [r for r in results if isinstance(r, BaseException)], results
        async with first.database.read() as session:
            order = (
                await session.execute(select(ShopOrder).where(ShopOrder.code == code))
            ).scalar_one()
        assert order.status == OrderStatus.PAID.value
        assert await _count(first, Payment, Payment.order_id == order.id) == 1
        variant = await _variant(first, variant_id)
        assert (variant.stock, variant.sold) == (ROUNDS - round_number - 1, round_number + 1)


@postgres_only
async def test_payment_racing_the_customers_cancel(two_shops: tuple[ShopContext, ...]) -> None:
    """/取消 by the customer in one process while the payment arrives in the other. The
    cancel first: the payment is refused (the order is closed; staff are told). The
    payment first: the order stays paid and the cancel becomes a request to staff.
    Never a cancelled order with a payment on it, never stock released twice."""
    first, second = two_shops
    item_id, variant_id = await _item(first, stock=ROUNDS)
    for round_number in range(ROUNDS):
        customer = 45000 + round_number
        code = await _unpaid_order(first, customer, item_id)
        caller = Caller(customer, None, Role.CUSTOMER)
        cancelled, paid = await _both(
            buying.cancel_order(first, caller, code), _pay(second, code, f"T{code}")
        )
        async with first.database.read() as session:
            order = (
                await session.execute(select(ShopOrder).where(ShopOrder.code == code))
            ).scalar_one()
        payments_made = await _count(first, Payment, Payment.order_id == order.id)
        if isinstance(paid, payments.PaymentOutcome):
            assert paid.recorded and cancelled.mode is Mode.REQUEST, (cancelled, paid)
            assert (order.status, payments_made) == (OrderStatus.PAID.value, 1)
        else:
            assert isinstance(paid, InvalidTransition), paid
            assert cancelled.mode is Mode.DIRECT, cancelled
            assert (order.status, payments_made) == (OrderStatus.CANCELLED.value, 0)
    variant = await _variant(first, variant_id)
    paid_orders = await _count(first, ShopOrder, ShopOrder.status == OrderStatus.PAID.value)
    assert (variant.stock, variant.sold) == (ROUNDS - paid_orders, paid_orders)


# --- the outbox ----------------------------------------------------------------------


async def _queue(shop: ShopContext, count: int) -> None:
    now = utcnow()
    async with shop.database.write() as session:
        for n in range(count):
            await outbox.enqueue(
                session, Target.private(50000 + n), [outbox.text(f"通知{n}")], f"race:{n}", now
            )


@postgres_only
async def test_a_claim_skips_rows_another_process_is_claiming(
    two_shops: tuple[ShopContext, ...],
) -> None:
    """While one dispatcher's claim is still open, another's takes the next rows at once
    (SKIP LOCKED) instead of waiting for those rows, and never the same ones."""
    first, second = two_shops
    await _queue(first, 4)
    now = utcnow()
    async with first.database.write() as holding:
        mine = await outbox.claim_due(holding, now, 2)
        async with asyncio.timeout(5), second.database.write() as session:
            theirs = await outbox.claim_due(session, now, 2)
    assert len(mine) == len(theirs) == 2
    assert not {m.id for m in mine} & {m.id for m in theirs}


@postgres_only
async def test_two_dispatchers_send_every_row_exactly_once(
    two_shops: tuple[ShopContext, ...],
) -> None:
    first, second = two_shops
    await _queue(first, 40)
    sent: list[tuple[str, int]] = []

    def sender(name: str) -> delivery.Sender:
        async def send(target: Target, segments: list[Segment]) -> None:
            await asyncio.sleep(0.005)  # a send takes a while: the other claims meanwhile
            sent.append((name, target.id))

        return send

    counts = await asyncio.gather(
        delivery.dispatch_due(first, Pacer(0, 10_000), sender("first"), batch=40),
        delivery.dispatch_due(second, Pacer(0, 10_000), sender("second"), batch=40),
    )
    per_target = Counter(target for _, target in sent)
    assert sum(counts) == 40
    assert sorted(per_target) == [50000 + n for n in range(40)]
    assert set(per_target.values()) == {1}
    assert await _count(first, OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0  # type: ignore[union-attr]
