"""Helpers shared by the benchmarks: ports, environment, bot processes, statistics."""

from __future__ import annotations

import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import bot_process  # noqa: E402
from tools.bot_process import PROXY_VARIABLES, no_proxy_env  # noqa: E402, F401
from tools.onebot_sim import percentile  # noqa: E402

OWNER = 10001
TOKEN = "bench-secret"


def latency_summary(values_ms: list[float]) -> dict[str, float]:
    if not values_ms:
        return {"n": 0, "min": 0.0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "n": len(values_ms),
        "min": round(min(values_ms), 3),
        "mean": round(sum(values_ms) / len(values_ms), 3),
        "p50": round(percentile(values_ms, 50), 3),
        "p90": round(percentile(values_ms, 90), 3),
        "p99": round(percentile(values_ms, 99), 3),
        "max": round(max(values_ms), 3),
    }


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """ru_maxrss is KiB on Linux."""
    return resource.getrusage(who).ru_maxrss / 1024


def current_rss_mib(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_cpu_seconds(pid: int) -> float:
    """user+system CPU of a running child (from /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _postgres_cpu_by_pid() -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[-1] == "postgres":
            fields = tail.split()
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


class PostgresCpu:
    """CPU of the `postgres` processes on this machine over a stretch: the server's
    share of the work, which a bot's own CPU leaves out. Counted per process that is
    still there at the end (the bots' pooled connections stay; a backend that exits
    takes its CPU with it, which leaves out most of other clients' short connections but
    not their work in long-lived ones): an estimate."""

    def __init__(self) -> None:
        self.start = _postgres_cpu_by_pid()

    def seconds(self) -> float:
        end = _postgres_cpu_by_pid()
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in end.items())


def machine_info() -> dict[str, Any]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, check=False, timeout=10
            ).stdout
        except OSError:
            return ""

    model = ""
    for line in run("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def write_json(path: Path | None, payload: Any) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


class BotProcess(bot_process.BotProcess):
    """`python <script>` (bot.py or bench/echo_bot.py) with the benchmarks' owner, token
    and a quiet log."""

    def __init__(self, script: str, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        settings = {
            "ONEBOT_ACCESS_TOKEN": TOKEN,
            "SUPERUSERS": f'["{OWNER}"]',
            "LOG_LEVEL": "WARNING",
        }
        super().__init__(workdir, {**settings, **(extra_env or {})}, script=script)


def shop_env(workdir: Path, database_url: str | None = None, **overrides: str) -> dict[str, str]:
    """Settings for a throw-away shop: demo catalog, flood guard off. Without
    `database_url`, a SQLite file in `workdir`."""
    env = {
        "DATABASE_URL": database_url or sqlite_url(workdir),
        "DATA_DIR": str(workdir / "data"),
        "SHOP_NAME": "压测小店",
        "SHOP_DEMO": "true",
        "FLOOD_MAX_COMMANDS": "1000000",
        # The order cells place many orders per simulated user, none of them paid.
        "MAX_UNPAID_ORDERS": "0",
        "TRACKING_PROVIDER": "manual",
    }
    env.update(overrides)
    return env


def sqlite_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'shop.db'}"


def database_kind(url: str) -> str:
    """ "sqlite" or "postgresql" (for the reports)."""
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


@asynccontextmanager
async def throwaway_database(server_url: str | None, workdir: Path) -> AsyncIterator[str]:
    """Yields the DATABASE_URL of an empty shop database, gone afterwards.

    No `server_url`: a SQLite file in `workdir` (a temporary directory). A PostgreSQL
    server URL (postgresql+asyncpg://user@host:port/db): a new schema `bench_<random>` in
    that database, reached through `?search_path=` (models/db.py) so that every bot
    process given the URL uses it, and dropped (with its tables) at the end; an existing
    search_path in the URL is replaced. Stop the bots before leaving the block."""
    if not server_url:
        yield sqlite_url(workdir)
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    url = make_url(server_url)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        raise SystemExit(f"--database-url must be postgresql+asyncpg://..., not {url.drivername}")
    base = url.difference_update_query(["search_path"])
    schema = f"bench_{secrets.token_hex(5)}"
    engine = create_async_engine(base, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield base.update_query_dict({"search_path": schema}).render_as_string(hide_password=False)
    finally:
        try:
            async with engine.begin() as connection:
                # A bot killed mid-transaction could still hold locks for a moment.
                await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        except Exception as error:  # the run's results matter more than the cleanup
            print(f"warning: schema {schema} left behind: {error!r}", file=sys.stderr)
        await engine.dispose()


async def query_rows(
    database_url: str, statements: dict[str, str], **params: Any
) -> dict[str, Any]:
    """Runs each read-only SQL statement on the shop's database (SQLite or PostgreSQL,
    through the shop's own `Database`, so `?search_path=` works) and returns its first
    row by name."""
    from sqlalchemy import text

    from models.db import Database

    database = Database(database_url)
    try:
        async with database.read() as session:
            return {
                name: tuple((await session.execute(text(sql), params)).one())
                for name, sql in statements.items()
            }
    finally:
        await database.dispose()


def shown_url(url: str) -> str:
    """A database URL for the reports, password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def code_state() -> dict[str, Any]:
    """Which code ran: HEAD, and a digest of uncommitted changes (tracked diff plus
    untracked files), since the working tree may move between runs."""
    import hashlib

    def git(*args: str) -> bytes:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, check=False, timeout=30
            ).stdout
        except OSError:
            return b""

    digest = hashlib.sha1(git("diff", "HEAD"))
    untracked = git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0")
    for name in sorted(n for n in untracked if n):
        digest.update(name)
        try:
            digest.update((ROOT / name.decode()).read_bytes())
        except OSError:
            pass
    changed = git("status", "--porcelain").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD").decode().strip(),
        "changed_files": len(changed),
        "changes_sha1": digest.hexdigest()[:12] if changed else "",
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class MachineCpu:
    """How busy all cores were over a stretch (from /proc/stat): shows whether a run was
    limited by the machine (bots, simulator, database server and other work together)."""

    @staticmethod
    def _sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def __init__(self) -> None:
        self.busy0, self.total0 = self._sample()

    def busy_fraction(self) -> float:
        busy, total = self._sample()
        return round((busy - self.busy0) / max(1, total - self.total0), 3)


class Door:
    """One bot process and the simulator connected to it (with its reply futures)."""

    def __init__(self, bot: BotProcess) -> None:
        from tools.onebot_sim import OneBotSimulator

        self.bot = bot
        self.sim = OneBotSimulator(bot.url, access_token=TOKEN)
        self.replies: PrivateReplies | None = None

    async def connect(self) -> None:
        await self.sim.connect(timeout=90)
        self.replies = PrivateReplies(self.sim)

    async def ask(self, user_id: int, text: str, timeout: float = 30.0) -> tuple[Any, float]:  # noqa: ASYNC109
        assert self.replies is not None, "not connected"
        return await ask(self.sim, self.replies, user_id, text, timeout)

    async def close(self) -> None:
        if self.replies is not None:
            self.replies.close()
            self.replies = None
        await self.sim.close()
        self.bot.stop()


async def start_shops(processes: int, workdir: Path, database_url: str, **env: str) -> list[Door]:
    """`processes` shop bots on one database, each with its own simulator. One after the
    other: the first creates the tables and the demo catalog, the next ones find them (a
    second process would wait on the migration lock anyway)."""
    doors: list[Door] = []
    try:
        for index in range(processes):
            where = workdir / ("shop" if index == 0 else f"shop{index}")
            door = Door(BotProcess("bot.py", where, shop_env(where, database_url, **env)))
            doors.append(door)
            door.bot.start()
            await door.connect()
    except BaseException:
        for door in doors:
            await door.close()
        raise
    return doors


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


class PrivateReplies:
    """Futures for "the next message the bot sends to private user X", resolved by a send
    listener: O(1) per message however many users wait (the simulator's `ask_private`
    wakes every waiter on every send, which costs O(waiters) per message)."""

    def __init__(self, sim: Any) -> None:
        self._waiting: dict[int, Any] = {}
        self._remove = sim.add_send_listener(self._on_send)

    def _on_send(self, sent: Any) -> None:
        if sent.target_type != "private":
            return
        future = self._waiting.pop(sent.target_id, None)
        if future is not None and not future.done():
            future.set_result(sent)

    def expect(self, user_id: int) -> Any:
        import asyncio

        future = asyncio.get_running_loop().create_future()
        self._waiting[int(user_id)] = future
        return future

    def forget(self, user_id: int) -> None:
        self._waiting.pop(int(user_id), None)

    def close(self) -> None:
        self._remove()


async def ask(
    sim: Any,
    replies: PrivateReplies,
    user_id: int,
    text: str,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> tuple[Any, float]:
    """Send `text` privately as `user_id`; return (reply, latency ms send → reply received)."""
    import asyncio

    future = replies.expect(user_id)
    t0 = time.perf_counter()
    try:
        await sim.send_private(user_id, text, f"压测{user_id}")
        sent = await asyncio.wait_for(future, timeout)
    finally:
        replies.forget(user_id)
    return sent, (sent.mono - t0) * 1000.0


async def bounded_gather(limit: int, factories: list[Any]) -> list[Any]:
    """Run coroutine factories with at most `limit` at a time; results in order."""
    import asyncio

    semaphore = asyncio.Semaphore(limit)

    async def one(factory: Any) -> Any:
        async with semaphore:
            return await factory()

    return await asyncio.gather(*(one(f) for f in factories))
