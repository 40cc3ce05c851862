"""End-to-end: the real `python bot.py` process on a free port with its own database,
driven over the OneBot v11 reverse WebSocket by tools/onebot_sim/, as NapCat would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tools import bot_process

E2E_OWNER = 10001
E2E_TOKEN = "e2e-secret"


class BotProcess(bot_process.BotProcess):
    """`python bot.py` on the e2e shop's settings (demo catalog, its own database under
    `workdir`), which can be stopped and started again on the same database."""

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        settings = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'shop.db'}",
            "DATA_DIR": str(workdir / "data"),
            "SUPERUSERS": f'["{E2E_OWNER}"]',
            "ONEBOT_ACCESS_TOKEN": E2E_TOKEN,
            "SHOP_NAME": "端到端小店",
            "SHOP_DEMO": "true",
            "LOG_LEVEL": "INFO",
        }
        super().__init__(workdir, {**settings, **(extra_env or {})})


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
