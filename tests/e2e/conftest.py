"""End-to-end: the real `python bot.py` process on a free port with its own database,
driven over the OneBot v11 reverse WebSocket by tools/onebot_sim.py, as NapCat would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
E2E_OWNER = 10001
E2E_TOKEN = "e2e-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BotProcess:
    """`python bot.py` that can be stopped and started again on the same database."""

    workdir: Path
    port: int = field(default_factory=_free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/onebot/v11/ws"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bot.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'shop.db'}",
            "DATA_DIR": str(self.workdir / "data"),
            "SUPERUSERS": f'["{E2E_OWNER}"]',
            "ONEBOT_ACCESS_TOKEN": E2E_TOKEN,
            "SHOP_NAME": "端到端小店",
            "SHOP_DEMO": "true",
            "LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "bot.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(autouse=True)
def _answers_are_direct_replies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot answers with send_msg and sends its own notices (outbox) with
    send_private_msg/send_group_msg: an ask_* must not take a queued notice for the answer."""
    from tools.onebot_sim import OneBotSimulator

    monkeypatch.setattr(OneBotSimulator, "reply_actions", frozenset({"send_msg"}))


@pytest.fixture
def bot_process(tmp_path: Path) -> Iterator[BotProcess]:
    bot = BotProcess(tmp_path)
    bot.start()
    yield bot
    bot.stop()
    assert "Traceback" not in bot.log(), bot.log()[-4000:]


@pytest.fixture
async def sim(bot_process: BotProcess) -> AsyncIterator[object]:
    from tools.onebot_sim import OneBotSimulator

    simulator = OneBotSimulator(bot_process.url, access_token=E2E_TOKEN)
    await simulator.connect(timeout=60)
    yield simulator
    await simulator.close()
