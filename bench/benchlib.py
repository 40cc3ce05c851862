"""Helpers shared by the benchmarks: ports, environment, bot processes, statistics."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
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


def shop_env(workdir: Path, **overrides: str) -> dict[str, str]:
    """Settings for a throw-away shop: demo catalog, flood guard off."""
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'shop.db'}",
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
