"""Several QQ accounts: which account can reach which chat, and which accounts are there.

Each OneBot connection is one QQ account. A queued notice must go out through an account
that can reach its target: one that is in the group, or the one the customer talked to.
The bot learns that from what it sees (`ReachMemory`: every message names the account
that received it and the chat it came from) and from the account's group list when it
connects (`sync_groups`). A process holding connections heartbeats them (`heartbeat`), so
another process can tell that an account is gone and send its rows itself
(services/outbox.claim_due reads both tables).

Learning runs on every message, so it costs no database write per message: the memory
remembers what it wrote lately and hands only what is new, or older than
REACH_REFRESH_SECONDS, to the outbox dispatcher, which writes it in one batch.

Two shop accounts in one group both receive every message there; only one may answer,
or every command is answered twice. `AnsweringAccounts` holds, in memory, which account
answers in each group: the lowest account id among the accounts known to be in the group
and present (`answering_candidates`). The dispatcher refreshes it from the same tables
every ANSWERING_REFRESH_SECONDS, when an account connects and when one of this process's
accounts disconnects, so every process on the database comes to the same answer."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import AccountPresence, AccountReach

from .outbox import ACCOUNT_GONE_SECONDS, TargetKind

# A sighting already written is written again only after this long: `last_seen_at`
# tells which account a customer talked to last, to the nearest few minutes.
REACH_REFRESH_SECONDS = 600.0
# How often a process writes that its accounts are still connected. Well inside
# outbox.ACCOUNT_GONE_SECONDS, after which other processes take the account's rows.
PRESENCE_HEARTBEAT_SECONDS = 60.0
# The memory forgets everything past this many entries (then rewrites what it sees
# again): bounded however many customers write.
REACH_MEMORY_SIZE = 50_000

# How often each process re-reads which account answers in which group: another
# process's account that connected or went away is noticed within this long.
ANSWERING_REFRESH_SECONDS = 60.0

# How often the dispatcher re-reads each connected account's group list: an account
# removed from a group (or added without a word said there since) is noticed this late.
GROUP_LIST_REFRESH_SECONDS = 600.0

ReachKey = tuple[int, str, int]  # account id, TargetKind value, target id


class ReachMemory:
    """What the accounts of this process saw lately, in memory (the router's hot path)."""

    def __init__(self, size: int = REACH_MEMORY_SIZE) -> None:
        self._size = size
        self._written: dict[ReachKey, float] = {}  # key -> monotonic time of its last write
        self._pending: dict[ReachKey, float] = {}  # key -> wall-clock time it was seen
        self._heartbeat_at: dict[int, float] = {}
        # account -> the last presence time this process wrote for it (committed)
        self._presence: dict[int, datetime] = {}

    def saw(self, account_id: int, kind: TargetKind, target_id: int) -> None:
        key = (account_id, kind.value, target_id)
        now = time.monotonic()
        written = self._written.get(key)
        if written is not None and now - written < REACH_REFRESH_SECONDS:
            return
        if len(self._pending) >= self._size:
            return  # nobody flushes (no account connected): seen again later
        if len(self._written) >= self._size:
            self._written.clear()
        # Marked written now, so that the next messages cost one dict lookup again; a
        # failed write loses one sighting, which the next message after the refresh
        # period repeats.
        self._written[key] = now
        self._pending[key] = time.time()

    def pending(self) -> bool:
        return bool(self._pending)

    def take(self) -> dict[ReachKey, float]:
        """The sightings to write (wall-clock seconds), and forgets them."""
        taken, self._pending = self._pending, {}
        return taken

    def heartbeat_due(self, account_ids: Iterable[int]) -> list[int]:
        """The accounts whose presence was not written for PRESENCE_HEARTBEAT_SECONDS;
        marks them written."""
        now = time.monotonic()
        due = [
            account
            for account in account_ids
            if now - self._heartbeat_at.get(account, float("-inf")) >= PRESENCE_HEARTBEAT_SECONDS
        ]
        for account in due:
            self._heartbeat_at[account] = now
        return due

    def forget_heartbeat(self, account_id: int) -> None:
        """The next dispatch round writes this account's presence (a new connection)."""
        self._heartbeat_at.pop(account_id, None)

    def wrote_presence(self, account_ids: Iterable[int], at: datetime) -> None:
        """A committed heartbeat of these accounts at `at` (what `withdraw_presence`
        takes back when this process stops)."""
        for account in account_ids:
            self._presence[account] = at

    def presence_written(self) -> dict[int, datetime]:
        return dict(self._presence)


class AnsweringAccounts:
    """Which account answers in each group (the router asks on every group message: one
    dict lookup). A group missing here (no account known to be in it and present, the
    usual case with one account before anything was learned) is answered by whoever
    receives the message, as with a single account."""

    def __init__(self) -> None:
        self._candidates: dict[int, tuple[int, ...]] = {}  # group -> present accounts, sorted
        self._answerer: dict[int, int] = {}  # group -> the account that answers there
        # Accounts of this process that disconnected (wall-clock time): skipped until a
        # heartbeat newer than that shows them back (here or in another process).
        self._lost: dict[int, datetime] = {}
        self._refreshed_at = float("-inf")

    def answers(self, account_id: int, group_id: int) -> bool:
        answerer = self._answerer.get(group_id)
        return answerer is None or answerer == account_id

    def refresh_due(self) -> bool:
        return time.monotonic() - self._refreshed_at >= ANSWERING_REFRESH_SECONDS

    def replace(self, members: Iterable[tuple[int, int, datetime]]) -> None:
        """From (group, account, its last heartbeat) rows of accounts in a group and
        present (`answering_candidates`)."""
        candidates: dict[int, set[int]] = {}
        back: set[int] = set()
        for group, account, heartbeat_at in members:
            lost_at = self._lost.get(account)
            if lost_at is not None and heartbeat_at <= lost_at:
                continue
            if lost_at is not None:
                back.add(account)  # connected to another process since
            candidates.setdefault(group, set()).add(account)
        for account in back:
            del self._lost[account]
        self._candidates = {group: tuple(sorted(found)) for group, found in candidates.items()}
        self._answerer = {group: found[0] for group, found in self._candidates.items()}
        self._refreshed_at = time.monotonic()

    def lost(self, account_id: int, at: datetime) -> None:
        """This process's connection of `account_id` closed: the next present account of
        each group where it answered takes over at once (no database read)."""
        self._lost[account_id] = at
        for group, found in self._candidates.items():
            if self._answerer.get(group) == account_id:
                rest = [account for account in found if account not in self._lost]
                if rest:
                    self._answerer[group] = rest[0]
                else:
                    self._answerer.pop(group, None)

    def back(self, account_id: int) -> None:
        """`account_id` connected to this process again (the refresh that follows puts
        it back where it answers)."""
        self._lost.pop(account_id, None)


async def answering_candidates(
    session: AsyncSession, now: datetime
) -> list[tuple[int, int, datetime]]:
    """(group, account, last heartbeat) for every account known to be in a group and
    present (heartbeated within outbox.ACCOUNT_GONE_SECONDS, as for routing notices)."""
    rows = await session.execute(
        select(AccountReach.target_id, AccountReach.account_id, AccountPresence.last_seen_at)
        .join(AccountPresence, AccountPresence.account_id == AccountReach.account_id)  # type: ignore[arg-type]
        .where(
            AccountReach.target_type == TargetKind.GROUP.value,  # type: ignore[arg-type]
            AccountPresence.last_seen_at >= now - timedelta(seconds=ACCOUNT_GONE_SECONDS),  # type: ignore[arg-type]
        )
    )
    return [(group, account, seen) for group, account, seen in rows.all()]


def _insert(session: AsyncSession, table: type) -> object:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def record_reach(session: AsyncSession, sightings: Mapping[ReachKey, datetime]) -> None:
    """Adds or refreshes reach rows (one statement); a row never moves back in time."""
    if not sightings:
        return
    values = [
        {"account_id": account, "target_type": kind, "target_id": target, "last_seen_at": seen}
        for (account, kind, target), seen in sightings.items()
    ]
    statement = _insert(session, AccountReach).values(values)  # type: ignore[attr-defined]
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "target_type", "target_id"],
        set_={"last_seen_at": statement.excluded.last_seen_at},
        where=AccountReach.last_seen_at < statement.excluded.last_seen_at,  # type: ignore[arg-type]
    )
    await session.execute(statement)


async def sync_groups(
    session: AsyncSession, account_id: int, group_ids: Collection[int], now: datetime
) -> None:
    """The account is in exactly these groups (its `get_group_list` on connect): groups
    it left are forgotten, so no notice waits for it there."""
    forget = delete(AccountReach).where(
        AccountReach.account_id == account_id,  # type: ignore[arg-type]
        AccountReach.target_type == TargetKind.GROUP.value,  # type: ignore[arg-type]
    )
    if group_ids:
        forget = forget.where(AccountReach.target_id.not_in(list(group_ids)))  # type: ignore[attr-defined]
    await session.execute(forget)
    await record_reach(
        session, {(account_id, TargetKind.GROUP.value, group): now for group in group_ids}
    )


async def heartbeat(session: AsyncSession, account_ids: Collection[int], now: datetime) -> None:
    """These accounts are connected to this process now."""
    if not account_ids:
        return
    statement = _insert(session, AccountPresence).values(  # type: ignore[attr-defined]
        [{"account_id": account, "last_seen_at": now} for account in account_ids]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["account_id"], set_={"last_seen_at": statement.excluded.last_seen_at}
    )
    await session.execute(statement)


async def withdraw_presence(session: AsyncSession, written: Mapping[int, datetime]) -> int:
    """This process stops: the presence rows it wrote go, so that other processes take
    its accounts' groups and notices over at their next answering refresh (within
    ANSWERING_REFRESH_SECONDS) rather than after outbox.ACCOUNT_GONE_SECONDS. A row
    heartbeated since by another process (the account connected there too) is newer
    than what this one wrote, and stays. Returns how many rows went."""
    gone = 0
    for account, at in written.items():
        result = await session.execute(
            delete(AccountPresence).where(
                AccountPresence.account_id == account,  # type: ignore[arg-type]
                AccountPresence.last_seen_at <= at,  # type: ignore[arg-type]
            )
        )
        gone += result.rowcount or 0  # type: ignore[attr-defined]
    return gone
