"""End-to-end: the real `python bot.py` process on a free port with its own database,
driven over the OneBot v11 reverse WebSocket by tools/onebot_sim/, as NapCat would.

Every test runs on SQLite, and on PostgreSQL as well when TEST_DATABASE_URL is set
(tests/databases.py): each bot process a test starts gets that test's database (a file
in tmp_path, or a fresh PostgreSQL schema), so two processes in one test share it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.databases import parametrize_database
from tools import bot_process

E2E_OWNER = 10001
E2E_TOKEN = "e2e-secret"


class BotProcess(bot_process.BotProcess):
    """`python bot.py` on the e2e shop's settings (demo catalog, its own database under
    `workdir`, or the test's database), which can be stopped and started again on the
    same database."""

    # The running test's database (set by `_test_database` below for every e2e test).
    test_database_url: ClassVar[str | None] = None

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        settings = {
            "DATABASE_URL": self.test_database_url or f"sqlite+aiosqlite:///{workdir / 'shop.db'}",
            "DATA_DIR": str(workdir / "data"),
            "SUPERUSERS": f'["{E2E_OWNER}"]',
            "ONEBOT_ACCESS_TOKEN": E2E_TOKEN,
            "SHOP_NAME": "端到端小店",
            "SHOP_DEMO": "true",
            "LOG_LEVEL": "INFO",
        }
        super().__init__(workdir, {**settings, **(extra_env or {})})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_database(metafunc)


@pytest.fixture(autouse=True)
def _test_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bot process of the test runs on the test's database (see the module doc)."""
    monkeypatch.setattr(BotProcess, "test_database_url", database_url)


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
