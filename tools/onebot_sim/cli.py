"""The command line: ``python -m tools.onebot_sim [options] [chat|script|load] ...``.

``chat`` (the default) is an interactive terminal chat, ``script`` replays a conversation
file and checks the replies, ``load`` measures latency and throughput; docs/simulator.md
describes them all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .recorder import ApiCall, SentMessage
from .segments import Seg, Segment
from .simulator import OneBotSimulator
from .transport import DEFAULT_URL, ConnectionRejected

__all__ = ["build_parser", "main"]


def _label(target_type: str, target_id: int) -> str:
    return f"[群 {target_id}]" if target_type == "group" else f"[私聊 {target_id}]"


def _print_sent(message: SentMessage, prefix: str = "") -> None:
    text = message.text if message.text else "(空消息)"
    lines = text.split("\n")
    head = f"{prefix}{_label(message.target_type, message.target_id)} "
    print(head + lines[0], flush=True)
    for line in lines[1:]:
        print(" " * len(head) + line, flush=True)


# Marks the bot's lines in chat mode, so they never look like your own prompt.
BOT_MARK = "🤖 "


def bot_text(message: SentMessage) -> str:
    """A message the bot sent, as the chat shows it: a quote of your message as `[回复]`,
    a mention as `@<qq>`, an image as `[图片]` (its inline base64 bytes are not printed)."""
    parts: list[str] = []
    for segment in message.segments:
        kind = segment.get("type")
        data = segment.get("data") or {}
        if kind == "text":
            parts.append(str(data.get("text", "")))
        elif kind == "reply":
            parts.append("[回复] ")
        elif kind == "at":
            parts.append(f"@{data.get('qq')}")
        elif kind == "image":
            file = str(data.get("file") or data.get("url") or "")
            inline = not file or file.startswith("base64://")
            parts.append("[图片]" if inline else f"[图片:{file}]")
        else:
            parts.append(f"[{kind}]")
    return "".join(parts)


def chat_lines(message: SentMessage) -> list[str]:
    """The lines chat mode prints for one message of the bot: `🤖 [私聊 10002] …` or
    `🤖 [群 555] [回复] …`, continuation lines indented under the first."""
    text = bot_text(message) or "(空消息)"
    head = f"{BOT_MARK}{_label(message.target_type, message.target_id)} "
    first, *rest = text.split("\n")
    # The robot is two columns wide in a terminal.
    return [head + first, *(" " * (len(head) + 1) + line for line in rest)]


def _new_sim(args: argparse.Namespace) -> OneBotSimulator:
    return OneBotSimulator(
        args.url, self_id=args.self_id, access_token=args.token, heartbeat_interval=args.heartbeat
    )


CHAT_HELP = """命令 (commands):
  :user <qq>          切换用户 / switch user
  :group <gid>        切换到群聊 / switch to a group chat
  :private            回到私聊 / back to private chat
  :role <member|admin|owner>  群内角色 / group role
  :image <url|path>   下一条消息附带图片 (空行则单独发送) / attach an image to the next line
  :at <qq|bot>        下一条消息 @ 某人 / mention someone in the next line
  :reply [message_id] 下一条消息引用 (默认引用机器人上一条消息) / quote a message
  :pay [订单号]        演示网关付款 (PAYMENT_PROVIDER=epay ./run demo) / pay at the demo's fake EPay gateway
  :who                当前身份 / show current identity
  :help               帮助
  :quit               退出"""


# A payment link of the demo's fake EPay gateway (tools/fake_epay.py), which only ever
# runs on this machine: `:pay` never calls a real gateway.
_DEMO_PAY_LINK = re.compile(
    r"(https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+/)submit/([0-9A-Za-z]+)"
)
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def demo_payment_link(sent: Sequence[SentMessage]) -> tuple[str, str] | None:
    """(gateway base URL, trade_no) of the newest demo-gateway payment link the bot sent."""
    for message in reversed(sent):
        found = _DEMO_PAY_LINK.findall(message.text)
        if found:
            base, trade_no = found[-1]
            return str(base), str(trade_no)
    return None


def _get_json(url: str) -> dict[str, Any]:
    with _DIRECT.open(url, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read().decode())
        return answer


async def demo_pay(sent: Sequence[SentMessage], order_code: str = "") -> str:
    """`:pay [订单号]`: the customer pays at the demo's fake gateway, the newest payment of
    that order (without one: of the newest link shown). The gateway then notifies the
    bot, which confirms the payment by itself. Returns a line to show."""
    link = demo_payment_link(sent)
    if link is None:
        return "还没有看到演示网关的付款链接：先 /付款 <订单号>（需用 PAYMENT_PROVIDER=epay ./run demo 启动）"
    base, trade_no = link
    query = {"order": order_code} if order_code else {"trade_no": trade_no}
    url = f"{base}demo/pay?{urllib.parse.urlencode(query)}"
    try:
        answer = await asyncio.to_thread(_get_json, url)
    except (OSError, ValueError) as exc:
        return f"演示网关没有回应（{exc}）：演示重启过的话，请重新 /付款"
    if answer.get("code") != 1:
        return f"演示网关：{answer.get('msg', answer)}"
    if answer.get("already_paid"):
        return f"演示网关：{answer['out_trade_no']} 已经付过了（¥{answer['money']}）"
    return f"演示网关：已付款 ¥{answer['money']}（{answer['out_trade_no']}），等待机器人确认收款…"


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Read stdin in a daemon thread (Ctrl-C / :quit never wait for a blocked readline)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="onebot-sim-stdin", daemon=True).start()
    return queue


async def _chat(args: argparse.Namespace) -> int:
    sim = _new_sim(args)
    await sim.connect(timeout=args.connect_timeout)
    interactive = sys.stdin.isatty()
    user: int = args.user
    group: int | None = args.group
    role: str = args.role
    attachments: list[Segment] = []

    def prompt() -> None:
        if interactive:
            where = (
                f"{_label('group', group)} {user}" if group is not None else _label("private", user)
            )
            sys.stdout.write(f"{where}> ")
            sys.stdout.flush()

    def show(message: SentMessage) -> None:
        if interactive:
            sys.stdout.write("\r")
        print("\n".join(chat_lines(message)), flush=True)
        prompt()

    def show_api(call: ApiCall) -> None:
        if call.sent is None:
            if interactive:
                sys.stdout.write("\r")
            print(
                f"  (api) {call.action} {json.dumps(call.params, ensure_ascii=False)}", flush=True
            )

    sim.add_send_listener(show)
    if args.verbose:
        sim.add_api_listener(show_api)
    print(
        f"已连接 {args.url} (bot {args.self_id})。机器人的消息以 {BOT_MARK}开头；"
        "输入 :help 查看命令，:group <群号> 进入群聊，:private 回到私聊。",
        flush=True,
    )
    lines = _stdin_lines(asyncio.get_running_loop())
    quit_requested = False
    try:
        while True:
            prompt()
            line = await lines.get()
            if line is None:
                break
            line = line.rstrip("\r\n")
            if line.startswith(":"):
                cmd, _, arg = line[1:].strip().partition(" ")
                arg = arg.strip()
                try:
                    if cmd in ("quit", "q", "exit"):
                        quit_requested = True
                        break
                    if cmd == "help":
                        print(CHAT_HELP)
                    elif cmd == "user":
                        user = int(arg)
                    elif cmd == "group":
                        group = int(arg)
                        print(f"现在在群 {group} 里（命令要加 /），:private 回到私聊。")
                    elif cmd == "private":
                        group = None
                        print(f"现在是 {user} 的私聊。")
                    elif cmd == "role":
                        if arg not in ("member", "admin", "owner"):
                            raise ValueError("role must be member, admin or owner")
                        role = arg
                    elif cmd == "image":
                        attachments.append(await sim.image_segment(arg))
                    elif cmd == "at":
                        attachments.append(Seg.at(sim.self_id if arg == "bot" else int(arg)))
                    elif cmd == "reply":
                        if arg:
                            attachments.insert(0, Seg.reply(int(arg)))
                        else:
                            here = (
                                sim.to_group(group) if group is not None else sim.to_private(user)
                            )
                            last = next((m for m in reversed(sim.sent) if here(m)), None)
                            if last is None:
                                raise ValueError("no bot message to quote here yet")
                            attachments.insert(0, Seg.reply(last.message_id))
                    elif cmd == "pay":
                        if not interactive and demo_payment_link(sim.sent) is None:
                            # Piped lines do not wait for answers: give /付款 time to answer.
                            with contextlib.suppress(TimeoutError):
                                await sim.wait_for_send(
                                    lambda m: bool(_DEMO_PAY_LINK.search(m.text)), timeout=5
                                )
                        print(await demo_pay(sim.sent, arg), flush=True)
                    elif cmd == "who":
                        where = f"群 {group} ({role})" if group is not None else "私聊"
                        print(f"用户 {user} @ {where}; bot {sim.self_id}")
                    else:
                        print(f"未知命令 :{cmd} (:help)")
                except (ValueError, OSError) as exc:
                    print(f"错误: {exc}")
                continue
            if not line and not attachments:
                continue
            segments = [*attachments, *([Seg.text(line)] if line else [])]
            attachments = []
            if group is None:
                await sim.send_private(user, segments)
            else:
                await sim.send_group(group, user, segments, role)
        if not quit_requested and sim.connected:
            await asyncio.sleep(args.linger)  # stdin ended: let late replies print
    except ConnectionError as exc:
        print(f"连接已断开: {exc}", file=sys.stderr)
        return 1
    finally:
        await sim.close()
    return 0


async def _script(args: argparse.Namespace, lines: list[str]) -> int:
    sim = _new_sim(args)
    await sim.connect(timeout=args.connect_timeout)
    failures = 0
    last_replies: list[SentMessage] = []
    try:
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            cmd, _, rest = line.partition(" ")
            if cmd == "sleep":
                await asyncio.sleep(float(rest))
                continue
            if cmd == "expect":
                if any(rest in m.text for m in last_replies):
                    print(f"  ✓ expect {rest!r}")
                else:
                    failures += 1
                    print(f"  ✗ line {lineno}: expected {rest!r} in the reply", file=sys.stderr)
                continue
            parts = rest.split(" ", 2 if cmd == "group" else 1)
            if cmd not in ("private", "group") or len(parts) < (3 if cmd == "group" else 2):
                print(f"line {lineno}: cannot parse {line!r}", file=sys.stderr)
                return 2
            text = parts[-1].replace("\\n", "\n")
            start = sim.mark()
            if cmd == "private":
                user_id, group_id = int(parts[0]), None
                target = sim.to_private(user_id)
                print(f"> {_label('private', user_id)} {text}", flush=True)
                await sim.send_private(user_id, text)
            else:
                group_id, user_id = int(parts[0]), int(parts[1])
                target = sim.to_group(group_id)
                print(f"> {_label('group', group_id)} {user_id}: {text}", flush=True)
                await sim.send_group(group_id, user_id, text)
            try:
                await sim.wait_for_send(target, args.timeout, since=start)
            except TimeoutError:
                failures += 1
                last_replies = []
                print(f"! line {lineno}: no reply within {args.timeout:g}s", file=sys.stderr)
                continue
            last_replies = await sim.collect(target, args.settle, since=start)
            for message in last_replies:
                _print_sent(message, "< ")
    except ConnectionError as exc:
        print(f"connection lost: {exc}", file=sys.stderr)
        return 1
    finally:
        await sim.close()
    return 1 if failures else 0


def _format_load(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    where = f"group {result['group_id']}" if result["group_id"] is not None else "private"
    return "\n".join(
        [
            f"load: {result['users']} users x {result['commands_per_user']} commands "
            f"{result['message']!r} ({where})",
            f"  replies     {result['ok']}/{result['total']} ok, {result['timeouts']} timeouts, "
            f"{result['errors']} errors",
            f"  duration    {result['duration_s']:.3f} s",
            f"  throughput  {result['throughput_cmd_s']:.2f} commands/s",
            f"  latency ms  p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}  "
            f"max {lat['max']:.1f}",
        ]
    )


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    sim = _new_sim(args)
    await sim.connect(timeout=args.connect_timeout)
    try:
        return await sim.run_load(
            args.users,
            args.commands,
            args.message,
            args.group,
            timeout=args.timeout,
            base_user_id=args.base_user,
        )
    finally:
        await sim.close()


MODES = ("chat", "script", "load")
_CHAT_FLAGS = ("--user", "--group", "--role", "--linger")


def _with_default_mode(argv: list[str]) -> list[str]:
    """No mode given -> ``chat``; chat flags written without the mode word are moved after it."""
    if any(token in MODES for token in argv):
        return argv
    head: list[str] = []
    chat: list[str] = ["chat"]
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _CHAT_FLAGS:
            chat.extend(argv[i : i + 2])
            i += 2
            continue
        (chat if token.split("=", 1)[0] in _CHAT_FLAGS else head).append(token)
        i += 1
    return head + chat


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onebot_sim",
        description="OneBot v11 implementation simulator (reverse WebSocket, Universal role).",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"bot WebSocket URL (default {DEFAULT_URL})"
    )
    parser.add_argument("--token", default=None, help="access token (Authorization: Bearer ...)")
    parser.add_argument("--self-id", type=int, default=10000, help="bot QQ (X-Self-ID)")
    parser.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds to keep retrying"
    )
    parser.add_argument("--heartbeat", type=float, default=5.0, help="heartbeat interval, seconds")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print non-send API calls"
    )
    sub = parser.add_subparsers(dest="mode")

    chat = sub.add_parser("chat", help="interactive terminal chat (default)")
    chat.add_argument("--user", type=int, default=10001, help="initial user QQ")
    chat.add_argument("--group", type=int, default=None, help="start in this group chat")
    chat.add_argument("--role", default="member", choices=["member", "admin", "owner"])
    chat.add_argument("--linger", type=float, default=2.0, help="wait for replies after stdin EOF")

    script = sub.add_parser("script", help="send lines from a file, print the replies")
    script.add_argument("file", nargs="?", default="-", help="script file ('-' = stdin)")
    script.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per reply")
    script.add_argument(
        "--settle", type=float, default=0.3, help="extra seconds to collect more replies"
    )

    load = sub.add_parser("load", help="concurrent users, latency and throughput")
    load.add_argument("--users", type=int, default=10)
    load.add_argument("--commands", type=int, default=10, help="commands per user")
    load.add_argument("--message", default="/商品")
    load.add_argument(
        "--group", type=int, default=None, help="send in this group instead of private"
    )
    load.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per reply")
    load.add_argument("--base-user", type=int, default=20001, help="first simulated user QQ")
    load.add_argument("--json", dest="json_out", default=None, help="write the result as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(
        _with_default_mode(list(sys.argv[1:] if argv is None else argv))
    )
    try:
        if args.mode == "script":
            if args.file == "-":
                lines = sys.stdin.read().splitlines()
            else:
                lines = Path(args.file).read_text(encoding="utf-8").splitlines()
            return asyncio.run(_script(args, lines))
        if args.mode == "load":
            result = asyncio.run(_load(args))
            print(_format_load(result))
            if args.json_out:
                Path(args.json_out).write_text(
                    json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
                )
            return 0 if result["ok"] == result["total"] else 2
        return asyncio.run(_chat(args))
    except (TimeoutError, ConnectionRejected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
