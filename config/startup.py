"""What the operator should read when the bot starts: the reverse-WebSocket URL to give
NapCat / Lagrange, and the settings that are missing or still placeholders.

Pure (no NoneBot, no environment reads): the router's start-up hook passes in what NoneBot
parsed and logs the notes `startup_notes` returns. A fresh clone started with no `.env`
must not start silently with nobody as its owner."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

REVERSE_WS_PATH = "/onebot/v11/ws"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})
# .env.example's owner: obviously not a QQ number, so nobody becomes the owner by copying it.
EXAMPLE_OWNER = "<你的QQ号>"
# Numbers people put in examples; whoever holds such an account would own the shop.
SAMPLE_QQ_NUMBERS = frozenset({"123456", "12345678", "123456789", "1234567890", "987654321"})
_PLACEHOLDER = re.compile(
    r"^<.*>$|你的|填写|替换|your|change.?me|replace|example|placeholder|xxx|todo", re.IGNORECASE
)


class Level(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"


@dataclass(frozen=True)
class StartupNote:
    level: Level
    text: str


def looks_like_placeholder(value: str) -> bool:
    """`<你的QQ号>`, `your-token`, `change-me`, `xxx`…: a value copied from an example."""
    return bool(_PLACEHOLDER.search(value.strip()))


def reverse_ws_urls(host: str, port: int) -> list[str]:
    """The URL(s) a OneBot implementation connects to. Listening on every interface, the
    machine's own address is not known here: the local URL and a template are given."""
    host = host.strip()
    if host in ALL_INTERFACES:
        return [
            f"ws://127.0.0.1:{port}{REVERSE_WS_PATH}",
            f"ws://<this machine's address>:{port}{REVERSE_WS_PATH}",
        ]
    shown = f"[{host}]" if ":" in host else host
    return [f"ws://{shown}:{port}{REVERSE_WS_PATH}"]


def startup_notes(
    *,
    host: str,
    port: int,
    superusers: Iterable[str],
    access_token: str | None,
    env_file_found: bool = True,
    secrets: Mapping[str, str] | None = None,
) -> list[StartupNote]:
    """Everything worth telling at start, in order: the connection URL (INFO), then a
    WARNING for each problem: no owner, an owner that is a placeholder or a sample
    number, no access token while reachable from other machines, placeholder values in
    the token or in `secrets` (other settings by their .env name: EPAY_KEY, …)."""
    notes: list[StartupNote] = []
    urls = " or ".join(reverse_ws_urls(host, port))
    token_hint = "with the access token ONEBOT_ACCESS_TOKEN" if access_token else "(no token)"
    notes.append(
        StartupNote(
            Level.INFO,
            f"NapCat / Lagrange: add a reverse WebSocket (WebSocket 客户端 / ReverseWebSocket) "
            f"to {urls} {token_hint}",
        )
    )
    if not env_file_found:
        notes.append(
            StartupNote(
                Level.INFO,
                "No .env file found: settings come from the environment and the defaults. Copy .env.example to .env and set "
                "at least SUPERUSERS and ONEBOT_ACCESS_TOKEN.",
            )
        )
    owners = [str(user).strip() for user in superusers if str(user).strip()]
    if not owners:
        notes.append(
            StartupNote(
                Level.WARNING,
                "SUPERUSERS is empty: the shop has no owner, nobody can add items, staff or "
                'payment details. Set SUPERUSERS=["<the owner\'s QQ number>"] in .env.',
            )
        )
    for user in owners:
        if not user.isdigit():
            notes.append(
                StartupNote(
                    Level.WARNING,
                    f"SUPERUSERS contains {user!r}, a placeholder, not a QQ number (ignored): "
                    "replace it with the owner's QQ number in .env.",
                )
            )
        elif user in SAMPLE_QQ_NUMBERS:
            notes.append(
                StartupNote(
                    Level.WARNING,
                    f"SUPERUSERS contains {user}, a sample number from examples: whoever holds "
                    "that QQ account owns this shop. Replace it with the owner's QQ number.",
                )
            )
    if owners and not any(user.isdigit() for user in owners):
        notes.append(
            StartupNote(Level.WARNING, "SUPERUSERS names no QQ number: the shop has no owner.")
        )
    token = (access_token or "").strip()
    if not token and host.strip() not in LOCAL_HOSTS:
        notes.append(
            StartupNote(
                Level.WARNING,
                f"ONEBOT_ACCESS_TOKEN is empty while listening on {host or 'every interface'}: "
                "anyone who reaches the port can connect as the shop's QQ account and act as "
                "any customer or the owner. Set a long random token (and the same in NapCat / "
                "Lagrange), or listen on HOST=127.0.0.1.",
            )
        )
    if token and looks_like_placeholder(token):
        notes.append(
            StartupNote(
                Level.WARNING,
                "ONEBOT_ACCESS_TOKEN is still a placeholder: set a long random secret.",
            )
        )
    for name, value in (secrets or {}).items():
        if value and looks_like_placeholder(value):
            notes.append(
                StartupNote(Level.WARNING, f"{name} looks like a placeholder: set the real value.")
            )
    return notes
