"""config.startup: what the bot tells its operator at start (the reverse-WebSocket URL,
missing or placeholder settings), and .env.example shipping no real-looking owner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.startup import (
    EXAMPLE_OWNER,
    Level,
    looks_like_placeholder,
    reverse_ws_urls,
    startup_notes,
)

ROOT = Path(__file__).resolve().parent.parent


def _warnings(**kwargs: object) -> list[str]:
    defaults: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 8080,
        "superusers": ["2233445566"],
        "access_token": "a-long-random-token-8f3k2",
    }
    notes = startup_notes(**{**defaults, **kwargs})  # type: ignore[arg-type]
    return [note.text for note in notes if note.level is Level.WARNING]


def test_a_good_setup_gets_the_url_and_no_warning() -> None:
    notes = startup_notes(
        host="127.0.0.1",
        port=8080,
        superusers=["2233445566"],
        access_token="a-long-random-token-8f3k2",
        secrets={"EPAY_KEY": "k9d8s7f6", "PUBLIC_BASE_URL": ""},
    )
    assert [note.level for note in notes] == [Level.INFO]
    assert "ws://127.0.0.1:8080/onebot/v11/ws" in notes[0].text
    assert "ONEBOT_ACCESS_TOKEN" in notes[0].text


@pytest.mark.parametrize(
    ("host", "urls"),
    [
        ("127.0.0.1", ["ws://127.0.0.1:8080/onebot/v11/ws"]),
        ("192.168.1.20", ["ws://192.168.1.20:8080/onebot/v11/ws"]),
        ("::1", ["ws://[::1]:8080/onebot/v11/ws"]),
        (
            "0.0.0.0",
            [
                "ws://127.0.0.1:8080/onebot/v11/ws",
                "ws://<this machine's address>:8080/onebot/v11/ws",
            ],
        ),
    ],
)
def test_reverse_ws_urls(host: str, urls: list[str]) -> None:
    assert reverse_ws_urls(host, 8080) == urls


def test_no_env_file_is_said_without_alarm() -> None:
    notes = startup_notes(
        host="127.0.0.1",
        port=8080,
        superusers=["2233445566"],
        access_token="",
        env_file_found=False,
    )
    assert [note.level for note in notes] == [Level.INFO, Level.INFO]
    assert ".env.example" in notes[1].text


def test_empty_superusers_warns() -> None:
    [warning] = _warnings(superusers=[])
    assert "SUPERUSERS is empty" in warning


@pytest.mark.parametrize("placeholder", [EXAMPLE_OWNER, "你的QQ号", "YOUR_QQ"])
def test_a_placeholder_owner_warns_and_leaves_no_owner(placeholder: str) -> None:
    warnings = _warnings(superusers=[placeholder])
    assert any(placeholder in w and "placeholder" in w for w in warnings)
    assert any("no owner" in w for w in warnings)


def test_a_sample_owner_number_warns() -> None:
    [warning] = _warnings(superusers=["123456789", "2233445566"])
    assert "123456789" in warning and "sample" in warning


@pytest.mark.parametrize(
    ("host", "warned"),
    [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True), ("10.0.0.5", True)],
)
def test_an_empty_token_warns_only_beyond_localhost(host: str, warned: bool) -> None:
    warnings = _warnings(host=host, access_token="")
    assert any("ONEBOT_ACCESS_TOKEN is empty" in w for w in warnings) is warned
    assert len(warnings) == int(warned)


@pytest.mark.parametrize("token", ["change-me", "your-token", "<token>", "xxx", "CHANGEME"])
def test_a_placeholder_token_warns(token: str) -> None:
    [warning] = _warnings(access_token=token)
    assert "ONEBOT_ACCESS_TOKEN is still a placeholder" in warning


def test_placeholder_secrets_warn_by_name() -> None:
    warnings = _warnings(
        secrets={
            "EPAY_KEY": "your-merchant-key",
            "PUBLIC_BASE_URL": "https://shop.example.com",
            "KUAIDI100_KEY": "",
            "EPAY_PID": "1001",
        }
    )
    assert warnings == [
        "EPAY_KEY looks like a placeholder: set the real value.",
        "PUBLIC_BASE_URL looks like a placeholder: set the real value.",
    ]


def test_looks_like_placeholder() -> None:
    assert looks_like_placeholder("<你的QQ号>")
    assert looks_like_placeholder("填写你的密钥")
    assert not looks_like_placeholder("k9d8s7f6a5")
    assert not looks_like_placeholder("2233445566")


def test_env_example_ships_an_obvious_placeholder_owner_that_is_warned_about() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    [superusers] = [line for line in lines if line.startswith("SUPERUSERS=")]
    owners = json.loads(superusers.removeprefix("SUPERUSERS="))
    assert owners == [EXAMPLE_OWNER]
    assert not any(owner.isdigit() for owner in owners)
    assert any(EXAMPLE_OWNER in w for w in _warnings(superusers=owners))
    # No real-looking QQ number anywhere near it, not even in a comment.
    near = "\n".join(lines[max(0, lines.index(superusers) - 5) : lines.index(superusers) + 1])
    assert not any(number in near for number in ("123456789", "10001"))
