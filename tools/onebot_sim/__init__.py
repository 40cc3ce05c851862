"""OneBot v11 implementation simulator (stands in for NapCat / Lagrange.OneBot).

It connects to the bot through OneBot v11 *reverse WebSocket* ("Universal" role), exactly
like a real QQ protocol implementation does, posts message events on behalf of simulated
QQ users and answers every API call the bot makes (``send_msg``, ``get_msg``, ...).
Every API call is recorded so tests and benchmarks can assert on what the bot sent.

Library usage::

    async with OneBotSimulator("ws://127.0.0.1:8080/onebot/v11/ws", access_token="t") as sim:
        reply = await sim.ask_private(10001, "/商品")
        assert "商品" in reply.text

Command line (from the project root)::

    python -m tools.onebot_sim --url ws://127.0.0.1:8080/onebot/v11/ws [--token T] chat
    python -m tools.onebot_sim script commands.txt
    python -m tools.onebot_sim load --users 20 --commands 10 --message /商品 --json out.json

Modules: ``segments`` (message segments, CQ codes), ``transport`` (the WebSocket
connection, lifecycle, heartbeats), ``api`` (answers to the bot's API calls), ``recorder``
(what was sent and received, waiting for replies), ``files`` (HTTP server for local
images), ``simulator`` (:class:`OneBotSimulator`, which puts them together), ``load``
(load mode) and ``cli`` (the command line).

Only the standard library and ``websockets`` (>= 14, new asyncio API) are used.
"""

from __future__ import annotations

from .api import ApiError
from .cli import CHAT_HELP, MODES, build_parser, main
from .load import percentile, run_load
from .recorder import FORWARD_ACTIONS, SEND_ACTIONS, ApiCall, SendPredicate, SentMessage, Target
from .segments import MessageLike, Seg, Segment, normalize_message, parse_cq, render_text, to_cq
from .simulator import OneBotSimulator
from .transport import DEFAULT_URL, ConnectionRejected

__all__ = [
    "CHAT_HELP",
    "DEFAULT_URL",
    "FORWARD_ACTIONS",
    "MODES",
    "SEND_ACTIONS",
    "ApiCall",
    "ApiError",
    "ConnectionRejected",
    "MessageLike",
    "OneBotSimulator",
    "Seg",
    "Segment",
    "SendPredicate",
    "SentMessage",
    "Target",
    "build_parser",
    "main",
    "normalize_message",
    "parse_cq",
    "percentile",
    "render_text",
    "run_load",
    "to_cq",
]
