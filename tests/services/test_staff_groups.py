"""services.staff and services.groups on a real migrated SQLite database."""

from __future__ import annotations

import pytest

from models.tables import DEFAULT_SHOP_ID
from services import groups, staff
from services.errors import AlreadyStaff, NotStaff, OwnerIsNotStaff
from services.shop import ensure_shop
from services.staff import Role

SHOP = DEFAULT_SHOP_ID
OWNER = 10001
OWNERS = {OWNER}
ALICE = 20002
BOB = 20003
GROUP = 555000
OTHER_GROUP = 666000


def test_role_of() -> None:
    assert staff.role_of(OWNER, OWNERS, {ALICE}) is Role.OWNER
    assert staff.role_of(OWNER, OWNERS, {OWNER}) is Role.OWNER  # owner wins over staff
    assert staff.role_of(ALICE, OWNERS, {ALICE}) is Role.STAFF
    assert staff.role_of(BOB, OWNERS, {ALICE}) is Role.CUSTOMER
    assert staff.role_of(BOB, set(), set()) is Role.CUSTOMER


def test_roles_are_ordered() -> None:
    assert Role.CUSTOMER < Role.STAFF < Role.OWNER
    assert Role.OWNER >= Role.STAFF


async def test_add_and_remove_staff(db) -> None:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == set()
    async with db.write() as s:
        added = await staff.add_staff(s, SHOP, ALICE, OWNER, OWNERS)
        await staff.add_staff(s, SHOP, BOB, OWNER, OWNERS)
    assert (added.user_id, added.added_by, added.shop_id) == (ALICE, OWNER, SHOP)
    assert added.id is not None
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == {ALICE, BOB}
        assert [m.user_id for m in await staff.list_staff(s, SHOP)] == [ALICE, BOB]
    async with db.write() as s:
        await staff.remove_staff(s, SHOP, ALICE)
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == {BOB}


async def test_add_staff_twice(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await staff.add_staff(s, SHOP, ALICE, OWNER, OWNERS)
    async with db.write() as s:
        with pytest.raises(AlreadyStaff) as caught:
            await staff.add_staff(s, SHOP, ALICE, OWNER, OWNERS)
    assert caught.value.user_id == ALICE
    async with db.read() as s:
        assert len(await staff.list_staff(s, SHOP)) == 1


async def test_owner_cannot_be_staff(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        with pytest.raises(OwnerIsNotStaff) as caught:
            await staff.add_staff(s, SHOP, OWNER, OWNER, OWNERS)
    assert caught.value.user_id == OWNER
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == set()


async def test_remove_non_staff(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        with pytest.raises(NotStaff) as caught:
            await staff.remove_staff(s, SHOP, BOB)
    assert caught.value.user_id == BOB
    async with db.write() as s:
        await staff.add_staff(s, SHOP, ALICE, OWNER, OWNERS)
        await staff.remove_staff(s, SHOP, ALICE)
    async with db.write() as s:
        with pytest.raises(NotStaff):
            await staff.remove_staff(s, SHOP, ALICE)


async def test_staff_is_per_shop(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await ensure_shop(s, "别家", shop_id=2)
        await staff.add_staff(s, 2, ALICE, OWNER, OWNERS)
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == set()
        assert await staff.staff_ids(s, 2) == {ALICE}
    async with db.write() as s:
        await staff.add_staff(s, SHOP, ALICE, OWNER, OWNERS)  # not AlreadyStaff here
        with pytest.raises(NotStaff):
            await staff.remove_staff(s, SHOP, BOB)
    async with db.write() as s:
        await staff.remove_staff(s, 2, ALICE)
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == {ALICE}
        assert await staff.staff_ids(s, 2) == set()


async def test_large_qq_numbers_round_trip(db) -> None:  # type: ignore[no-untyped-def]
    big = 99_999_999_999  # 11 digits, beyond 32-bit
    async with db.write() as s:
        await staff.add_staff(s, SHOP, big, OWNER, OWNERS)
        await groups.set_group_enabled(s, SHOP, big, True, OWNER)
    async with db.read() as s:
        assert await staff.staff_ids(s, SHOP) == {big}
        assert await groups.enabled_group_ids(s, SHOP) == {big}


async def _set(db, group_id: int, enabled: bool, by: int = OWNER) -> bool:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        return await groups.set_group_enabled(s, SHOP, group_id, enabled, by)


async def _enabled(db) -> set[int]:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        return await groups.enabled_group_ids(s, SHOP)


async def test_set_group_enabled_reports_changes(db) -> None:  # type: ignore[no-untyped-def]
    assert await _enabled(db) == set()
    assert await _set(db, GROUP, True) is True
    assert await _enabled(db) == {GROUP}
    assert await _set(db, GROUP, True) is False
    assert await _enabled(db) == {GROUP}
    assert await _set(db, OTHER_GROUP, True) is True
    assert await _enabled(db) == {GROUP, OTHER_GROUP}
    assert await _set(db, GROUP, False) is True
    assert await _enabled(db) == {OTHER_GROUP}
    assert await _set(db, GROUP, False) is False
    assert await _set(db, GROUP, True) is True
    assert await _enabled(db) == {GROUP, OTHER_GROUP}


async def test_disable_unknown_group(db) -> None:  # type: ignore[no-untyped-def]
    assert await _set(db, 123456, False) is False
    assert await _enabled(db) == set()
    from sqlalchemy import func, select

    from models.tables import ShopGroup

    async with db.read() as s:
        rows = (await s.execute(select(func.count()).select_from(ShopGroup))).scalar_one()
    assert rows == 0  # no row was written for a group that was never enabled


async def test_group_change_records_who(db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from models.tables import ShopGroup

    await _set(db, GROUP, True, by=OWNER)
    await _set(db, GROUP, False, by=ALICE)
    async with db.read() as s:
        row = (await s.execute(select(ShopGroup))).scalar_one()
    assert (row.group_id, row.enabled, row.changed_by) == (GROUP, False, ALICE)
    assert row.changed_at.tzinfo is not None


async def test_groups_are_per_shop(db) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as s:
        await ensure_shop(s, "别家", shop_id=2)
        assert await groups.set_group_enabled(s, 2, GROUP, True, OWNER) is True
    assert await _enabled(db) == set()
    assert await _set(db, GROUP, True) is True
    async with db.read() as s:
        assert await groups.enabled_group_ids(s, 2) == {GROUP}
    assert await _set(db, GROUP, False) is True
    async with db.read() as s:
        assert await groups.enabled_group_ids(s, 2) == {GROUP}
