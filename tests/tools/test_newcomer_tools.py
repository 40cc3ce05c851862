"""A newcomer's tools (issue 14): the simulator's chat mode sets the bot's lines apart
from your prompt and shows a group reply's quote and mention; `./run` prints help without
shell code, fails on an unknown subcommand, and claims no pinned dependencies."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools.onebot_sim.cli import BOT_MARK, CHAT_HELP, bot_text, chat_lines
from tools.onebot_sim.recorder import SentMessage

ROOT = Path(__file__).resolve().parent.parent.parent


def sent(target_type: str, target_id: int, segments: list[dict[str, object]]) -> SentMessage:
    return SentMessage("send_msg", target_type, target_id, segments, "", 0.0)


def test_the_bots_lines_are_marked_and_show_quote_mention_and_images() -> None:
    group_reply = sent(
        "group",
        555,
        [
            {"type": "reply", "data": {"id": "77"}},
            {"type": "at", "data": {"qq": "30003"}},
            {"type": "text", "data": {"text": " 请确认订单：\n合计：¥39.90"}},
            {"type": "image", "data": {"file": "base64://" + "A" * 10_000}},
        ],
    )
    assert bot_text(group_reply) == "[回复] @30003 请确认订单：\n合计：¥39.90[图片]"
    first, second = chat_lines(group_reply)
    assert first == f"{BOT_MARK}[群 555] [回复] @30003 请确认订单："
    assert second.strip() == "合计：¥39.90[图片]" and not second.startswith(BOT_MARK)
    private = sent("private", 10002, [{"type": "text", "data": {"text": "在售商品"}}])
    assert chat_lines(private) == [f"{BOT_MARK}[私聊 10002] 在售商品"]
    # The prompt is `[私聊 10002]> `: a bot line never starts like it.
    assert not chat_lines(private)[0].startswith("[私聊")
    url = sent("private", 1, [{"type": "image", "data": {"file": "http://x/a.png"}}])
    assert bot_text(url) == "[图片:http://x/a.png]"


def test_chat_help_says_how_to_get_back_to_the_private_chat() -> None:
    assert ":private" in CHAT_HELP and "回到私聊" in CHAT_HELP
    doc = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
    assert ":private" in doc and BOT_MARK.strip() in doc


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "run"), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_help_is_text_not_shell_code() -> None:
    for arguments in ((), ("help",), ("--help",)):
        shown = _run(*arguments)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("Usage: ./run <command>")
        for command in ("demo", "bot", "test", "sim", "bench", "setup"):
            assert f"\n  {command} " in shown.stdout
        for shell in ("set -e", "#!", "$PY", "case ", "esac", "# "):
            assert shell not in shown.stdout


def test_run_refuses_an_unknown_subcommand_with_the_help() -> None:
    refused = _run("dmeo")
    assert refused.returncode != 0
    assert "unknown command: dmeo" in refused.stderr
    assert "Usage: ./run <command>" in refused.stderr
    assert refused.stdout == ""


def test_no_pinned_claim_without_a_lock_file() -> None:
    locks = ("requirements.lock", "requirements.txt", "uv.lock", "poetry.lock", "pdm.lock")
    if any((ROOT / name).exists() for name in locks):
        return
    for name in ("README.md", "run", "docs/commands.md", ".env.example"):
        text = (ROOT / name).read_text(encoding="utf-8").lower()
        assert "pinned" not in text, name
        assert "锁定" not in text, name
