"""Tests for tools/onebot_sim/ against a fake bot (and one real NoneBot subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the project root on sys.path
    sys.path.insert(0, str(ROOT))

from tools.onebot_sim import (  # noqa: E402
    ConnectionRejected,
    OneBotSimulator,
    Seg,
    SentMessage,
    normalize_message,
    parse_cq,
    percentile,
    render_text,
    run_load,
    to_cq,
)

pytestmark = pytest.mark.asyncio


class FakeBot:
    """Minimal stand-in for NoneBot's reverse-WS endpoint.

    Records headers and frames; optionally answers every message event with a send call
    (private: ``send_private_msg`` with an array; group: ``send_msg`` with a CQ string that
    quotes and @s the asker), after a small random delay so replies interleave.
    """

    def __init__(self, *, auto_reply: bool = True, quote_in_group: bool = True) -> None:
        self.auto_reply = auto_reply
        self.ignore: str | None = None  # never answer events whose raw_message contains it
        self.quote_in_group = quote_in_group
        self.headers: list[Headers] = []
        self.frames: list[dict[str, Any]] = []
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.conn: ServerConnection | None = None
        self.connected = asyncio.Event()
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 0

    async def handler(self, conn: ServerConnection) -> None:
        assert conn.request is not None
        self.headers.append(conn.request.headers)
        self.conn = conn
        self.connected.set()
        with contextlib.suppress(Exception):
            async for raw in conn:
                data = json.loads(raw)
                if "post_type" in data:
                    self.frames.append(data)
                    self.queue.put_nowait(data)
                    if (
                        self.auto_reply
                        and data["post_type"] == "message"
                        and not (self.ignore and self.ignore in data["raw_message"])
                    ):
                        task = asyncio.create_task(self._reply(conn, data))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                elif (future := self._responses.pop(str(data.get("echo")), None)) is not None:
                    future.set_result(data)

    async def _reply(self, conn: ServerConnection, event: dict[str, Any]) -> None:
        await asyncio.sleep(random.uniform(0, 0.02))
        said = render_text(event["message"])
        if event["message_type"] == "private":
            frame = {
                "action": "send_private_msg",
                "params": {"user_id": event["user_id"], "message": [Seg.text(f"echo: {said}")]},
            }
        else:
            prefix = f"[CQ:reply,id={event['message_id']}]" if self.quote_in_group else ""
            frame = {
                "action": "send_msg",
                "params": {
                    "message_type": "group",
                    "group_id": event["group_id"],
                    "user_id": event["user_id"],
                    "message": f"{prefix}[CQ:at,qq={event['user_id']}] echo: {said}",
                },
            }
        self._seq += 1
        frame["echo"] = f"auto-{self._seq}"
        with contextlib.suppress(Exception):
            await conn.send(json.dumps(frame))

    async def call(self, action: str, params: dict[str, Any], echo: str) -> dict[str, Any]:
        """Call an API on the simulator like the adapter does, return the response frame."""
        assert self.conn is not None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[echo] = future
        await self.conn.send(json.dumps({"action": action, "params": params, "echo": echo}))
        return await asyncio.wait_for(future, 5)

    async def next_frame(self, *, skip_heartbeat: bool = True) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.queue.get(), 5)
            if skip_heartbeat and frame.get("meta_event_type") == "heartbeat":
                continue
            return frame


@contextlib.asynccontextmanager
async def fake_bot_server(bot: FakeBot) -> AsyncIterator[str]:
    server: Server = await serve(bot.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1] if server.sockets else 0
    try:
        yield f"ws://127.0.0.1:{port}/onebot/v11/ws"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def bot() -> AsyncIterator[tuple[FakeBot, str]]:
    fake = FakeBot()
    async with fake_bot_server(fake) as url:
        yield fake, url


@pytest.fixture
async def sim(bot: tuple[FakeBot, str]) -> AsyncIterator[OneBotSimulator]:
    fake, url = bot
    simulator = OneBotSimulator(url, self_id=10000, access_token="secret")
    await simulator.connect(timeout=5)
    await fake.next_frame()  # lifecycle
    try:
        yield simulator
    finally:
        await simulator.close()


# ------------------------------------------------------------------------------ pure helpers


async def test_cq_roundtrip_and_render() -> None:
    segs = parse_cq("hi &#91;x&#93; [CQ:at,qq=123][CQ:image,file=a.jpg,url=http://h/a&#44;b]")
    assert segs == [
        {"type": "text", "data": {"text": "hi [x] "}},
        {"type": "at", "data": {"qq": "123"}},
        {"type": "image", "data": {"file": "a.jpg", "url": "http://h/a,b"}},
    ]
    assert parse_cq(to_cq(segs)) == segs
    assert render_text([Seg.reply(5), *segs]) == "hi [x] @123[图片:a.jpg]"
    assert normalize_message({"type": "text", "data": {"text": "x"}}) == [Seg.text("x")]
    assert normalize_message("[CQ:face,id=1]", auto_escape=True) == [Seg.text("[CQ:face,id=1]")]
    assert normalize_message(["a", Seg.at(1)]) == [Seg.text("a"), Seg.at(1)]
    assert Seg.image("http://h/p/x.png") == {
        "type": "image",
        "data": {"file": "x.png", "url": "http://h/p/x.png"},
    }
    assert percentile([], 50) == 0.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


# ------------------------------------------------------------------------------ handshake


async def test_headers_and_lifecycle_first(bot: tuple[FakeBot, str]) -> None:
    fake, url = bot
    async with OneBotSimulator(url, self_id=4242, access_token="tok", heartbeat_interval=0.05):
        first = await fake.next_frame(skip_heartbeat=False)
        heartbeat = await fake.next_frame(skip_heartbeat=False)
    headers = fake.headers[0]
    assert headers["X-Self-ID"] == "4242"
    assert headers["X-Client-Role"] == "Universal"
    assert headers["Authorization"] == "Bearer tok"
    assert headers["User-Agent"] == "OneBot/11"
    assert first["post_type"] == "meta_event"
    assert first["meta_event_type"] == "lifecycle"
    assert first["sub_type"] == "connect"
    assert first["self_id"] == 4242
    assert isinstance(first["time"], int)
    assert heartbeat["meta_event_type"] == "heartbeat"
    assert heartbeat["status"] == {"online": True, "good": True}
    assert heartbeat["interval"] == 50


async def test_no_authorization_header_without_token(bot: tuple[FakeBot, str]) -> None:
    fake, url = bot
    async with OneBotSimulator(url):
        await fake.next_frame()
    assert "Authorization" not in fake.headers[0]
    assert fake.headers[0]["X-Self-ID"] == "10000"


async def test_connect_retries_until_bot_is_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    simulator = OneBotSimulator(f"ws://127.0.0.1:{port}/onebot/v11/ws")
    connecting = asyncio.create_task(simulator.connect(timeout=10))
    await asyncio.sleep(0.5)
    assert not connecting.done()
    fake = FakeBot()
    async with serve(fake.handler, "127.0.0.1", port):
        await asyncio.wait_for(connecting, 5)
        assert (await fake.next_frame())["meta_event_type"] == "lifecycle"
        await simulator.close()


async def test_connect_times_out_without_bot() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TimeoutError):
        await OneBotSimulator(f"ws://127.0.0.1:{port}/ws").connect(timeout=0.5)


async def test_rejected_handshake_raises() -> None:
    def reject(_conn: ServerConnection, _request: Request) -> Response:
        return Response(403, "Forbidden", Headers(), b"Authorization Header is invalid")

    fake = FakeBot()
    async with serve(fake.handler, "127.0.0.1", 0, process_request=reject) as server:
        port = server.sockets[0].getsockname()[1]
        simulator = OneBotSimulator(f"ws://127.0.0.1:{port}/ws", reject_grace=0.3)
        with pytest.raises(ConnectionRejected, match="403"):
            await simulator.connect(timeout=10)


# ------------------------------------------------------------------------------ events


async def test_private_and_group_events_well_formed(
    bot: tuple[FakeBot, str], sim: OneBotSimulator
) -> None:
    fake, _ = bot
    fake.auto_reply = False
    mid1 = await sim.send_private(10001, "/商品", nickname="小明")
    private = await fake.next_frame()
    mid2 = await sim.send_group(
        555, 10002, [Seg.at(10000), Seg.text(" /下单 1")], role="admin", nickname="群友"
    )
    group = await fake.next_frame()
    mid3 = await sim.send_private(10001, [Seg.image("x.jpg", "http://h/x.jpg")])
    third = await fake.next_frame()

    assert mid1 < mid2 < mid3
    assert private == {
        "time": private["time"],
        "self_id": 10000,
        "post_type": "message",
        "message_type": "private",
        "sub_type": "friend",
        "message_id": mid1,
        "user_id": 10001,
        "message": [{"type": "text", "data": {"text": "/商品"}}],
        "raw_message": "/商品",
        "font": 0,
        "sender": {"user_id": 10001, "nickname": "小明", "sex": "unknown", "age": 0},
    }
    assert isinstance(private["time"], int)
    assert group["post_type"] == "message"
    assert group["message_type"] == "group"
    assert group["sub_type"] == "normal"
    assert group["group_id"] == 555
    assert group["user_id"] == 10002
    assert group["self_id"] == 10000
    assert group["message_id"] == mid2
    assert group["anonymous"] is None
    assert group["font"] == 0
    assert group["message"] == [
        {"type": "at", "data": {"qq": "10000"}},
        {"type": "text", "data": {"text": " /下单 1"}},
    ]
    assert group["raw_message"] == "[CQ:at,qq=10000] /下单 1"
    assert group["sender"] == {"user_id": 10002, "nickname": "群友", "card": "", "role": "admin"}
    assert third["message"][0] == {
        "type": "image",
        "data": {"file": "x.jpg", "url": "http://h/x.jpg"},
    }
    assert [e["message_id"] for e in sim.events] == [mid1, mid2, mid3]


async def test_cq_code_in_plain_string_is_literal_text(
    bot: tuple[FakeBot, str], sim: OneBotSimulator
) -> None:
    fake, _ = bot
    fake.auto_reply = False
    await sim.send_group(555, 10001, "[CQ:at,qq=all] 全体看过来")
    event = await fake.next_frame()
    assert event["message"] == [{"type": "text", "data": {"text": "[CQ:at,qq=all] 全体看过来"}}]
    assert event["raw_message"] == "&#91;CQ:at,qq=all&#93; 全体看过来"


# ------------------------------------------------------------------------------ API calls


async def test_api_call_answered_with_echo_and_recorded(
    bot: tuple[FakeBot, str], sim: OneBotSimulator
) -> None:
    fake, _ = bot
    response = await fake.call("get_login_info", {}, "abc")
    assert response == {
        "status": "ok",
        "retcode": 0,
        "data": {"user_id": 10000, "nickname": "小店"},
        "echo": "abc",
    }
    unknown = await fake.call("no_such_action", {"x": 1}, "e2")
    assert unknown["status"] == "failed"
    assert unknown["retcode"] == 1404
    assert unknown["data"] is None
    assert unknown["echo"] == "e2"
    for action, params in [
        ("get_group_member_info", {"group_id": 1, "user_id": 2}),
        ("get_stranger_info", {"user_id": 2}),
        ("get_group_list", {}),
        ("get_friend_list", {}),
        ("get_status", {}),
        ("get_version_info", {}),
        ("can_send_image", {}),
    ]:
        answer = await fake.call(action, params, f"e-{action}")
        assert answer["status"] == "ok", action
        assert answer["echo"] == f"e-{action}"
    assert [c.action for c in sim.api_calls][:2] == ["get_login_info", "no_such_action"]
    assert sim.api_calls[1].params == {"x": 1}
    assert sim.api_calls[0].echo == "abc"
    assert sim.api_calls[0].response is not None
    assert sim.sent == []  # none of these are send calls


async def test_send_calls_recorded_with_target_text_and_get_msg(
    bot: tuple[FakeBot, str], sim: OneBotSimulator
) -> None:
    fake, _ = bot
    await sim.send_group(777, 10005, "hello", role="owner")
    await fake.next_frame()
    await sim.wait_for_send(since=0)  # auto reply

    r1 = await fake.call(
        "send_msg",
        {
            "message_type": "group",
            "group_id": 777,
            "message": "hi[CQ:at,qq=123][CQ:image,file=a.jpg]",
        },
        "s1",
    )
    r2 = await fake.call(
        "send_private_msg",
        {"user_id": 42, "message": {"type": "text", "data": {"text": "x"}}},
        "s2",
    )
    r3 = await fake.call(
        "send_msg", {"user_id": 42, "message": "[CQ:face,id=1]", "auto_escape": True}, "s3"
    )
    ids = [r["data"]["message_id"] for r in (r1, r2, r3)]
    assert len(set(ids)) == 3
    first, second, third = sim.sent[-3:]
    assert isinstance(first, SentMessage)
    assert (first.action, first.target_type, first.target_id) == ("send_msg", "group", 777)
    assert first.text == "hi@123[图片:a.jpg]"
    assert first.mentions == ["123"]
    assert first.images == ["a.jpg"]
    assert (second.target_type, second.target_id, second.text) == ("private", 42, "x")
    assert third.text == "[CQ:face,id=1]"
    assert first.message_id == ids[0]

    got = await fake.call("get_msg", {"message_id": ids[0]}, "g1")
    assert got["data"]["message_id"] == ids[0]
    assert got["data"]["sender"]["user_id"] == 10000
    assert got["data"]["message"][0] == Seg.text("hi")
    member = await fake.call("get_group_member_info", {"group_id": 777, "user_id": 10005}, "m")
    assert member["data"]["role"] == "owner"
    assert (await fake.call("delete_msg", {"message_id": ids[0]}, "d"))["status"] == "ok"
    assert (await fake.call("get_msg", {"message_id": ids[0]}, "g2"))["status"] == "failed"


async def test_custom_api_handler(bot: tuple[FakeBot, str], sim: OneBotSimulator) -> None:
    fake, _ = bot

    async def slow_info(params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"user_id": params["user_id"], "nickname": "VIP"}

    sim.set_api_handler("get_stranger_info", slow_info)
    answer = await fake.call("get_stranger_info", {"user_id": 9}, "c1")
    assert answer["data"] == {"user_id": 9, "nickname": "VIP"}
    assert answer["echo"] == "c1"


# ------------------------------------------------------------------------------ ask / wait


async def test_ask_private_and_group_return_reply(sim: OneBotSimulator) -> None:
    reply = await sim.ask_private(10001, "/商品", timeout=5)
    assert reply.target_type == "private"
    assert reply.target_id == 10001
    assert reply.text == "echo: /商品"
    assert reply.action == "send_private_msg"

    reply = await sim.ask_group(555, 10002, "/帮助", timeout=5)
    assert (reply.target_type, reply.target_id) == ("group", 555)
    assert reply.text == "@10002 echo: /帮助"
    assert reply.reply_to == sim.events[-1]["message_id"]
    assert sim.sent == [m for m in sim.sent if m.action in ("send_private_msg", "send_msg")]


async def test_wait_timeout_and_expect_no_reply(
    bot: tuple[FakeBot, str], sim: OneBotSimulator
) -> None:
    fake, _ = bot
    fake.auto_reply = False
    with pytest.raises(TimeoutError, match="no reply"):
        await sim.ask_private(10001, "hello", timeout=0.2)
    await sim.expect_no_reply(("private", 10001), within=0.2)

    fake.auto_reply = True
    await sim.send_private(10001, "again")
    with pytest.raises(AssertionError, match="echo: again"):
        await sim.expect_no_reply(user_id=10001, within=1.0)
    # a reply to someone else does not count
    await sim.send_private(10003, "other")
    await sim.expect_no_reply(("group", 1), within=0.2)


# ------------------------------------------------------------------------------ load


async def test_run_load_private_counts(bot: tuple[FakeBot, str]) -> None:
    _, url = bot
    result = await run_load(url, users=4, commands=3, message="/商品", token="t", timeout=5)
    assert result["total"] == 12
    assert result["ok"] == 12
    assert result["timeouts"] == 0
    assert result["mode"] == "private"
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["throughput_cmd_s"] > 0


async def test_run_load_group_correlates_quoted_replies(
    bot: tuple[FakeBot, str], sim: OneBotSimulator
) -> None:
    result = await run_load(sim.url, 5, 4, "/商品", group_id=888, sim=sim, timeout=5)
    assert (result["ok"], result["total"], result["mode"]) == (20, 20, "group")
    group_events = [e for e in sim.events if e.get("group_id") == 888]
    assert len(group_events) == 20
    assert len({e["user_id"] for e in group_events}) == 5


async def test_run_load_group_by_mention_and_timeouts(bot: tuple[FakeBot, str]) -> None:
    fake, url = bot
    fake.quote_in_group = False  # replies only @ the user
    result = await run_load(url, 3, 2, "/商品", group_id=9, timeout=5)
    assert result["ok"] == 6
    fake.auto_reply = False
    result = await run_load(url, 2, 1, "/商品", timeout=0.2)
    assert (result["ok"], result["timeouts"], result["total"]) == (0, 2, 2)


# ------------------------------------------------------------------------------ misc


async def test_image_segment_from_local_file(sim: OneBotSimulator, tmp_path: Path) -> None:
    picture = tmp_path / "pay proof.png"
    picture.write_bytes(b"\x89PNG fake")
    seg = await sim.image_segment(str(picture))
    assert seg["data"]["file"] == "pay proof.png"
    async with httpx.AsyncClient() as client:
        response = await client.get(seg["data"]["url"])
    assert response.status_code == 200
    assert response.content == b"\x89PNG fake"
    assert response.headers["content-type"] == "image/png"


async def run_cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.onebot_sim",
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else None), 60
    )
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_modes(bot: tuple[FakeBot, str], tmp_path: Path) -> None:
    fake, url = bot
    fake.ignore = "quiet"
    script = tmp_path / "s.txt"
    script.write_text(
        "# comment\nprivate 10001 ping\nexpect echo: ping\ngroup 5 10002 hi there\n",
        encoding="utf-8",
    )
    code, out, err = await run_cli("--url", url, "script", str(script), "--settle", "0.1")
    assert code == 0, err
    assert "< [私聊 10001] echo: ping" in out
    assert "< [群 5] @10002 echo: hi there" in out

    script.write_text("private 10001 quiet please\n", encoding="utf-8")
    code, _, err = await run_cli("--url", url, "script", str(script), "--timeout", "0.3")
    assert code == 1
    assert "no reply" in err

    # chat is the default mode; stdin may be a pipe
    code, out, err = await run_cli(
        "--url", url, "--user", "777", "--linger", "0.5", stdin="hello\n:group 9\nin group\n:who\n"
    )
    assert code == 0, err
    # The bot's lines are marked, with the group answer's quote and mention.
    assert "🤖 [私聊 777] echo: hello" in out
    assert "🤖 [群 9] [回复] @777 echo: in group" in out
    assert "用户 777 @ 群 9 (member)" in out

    result_file = tmp_path / "load.json"
    code, out, err = await run_cli(
        "--url", url, "load", "--users", "3", "--commands", "2", "--json", str(result_file)
    )
    assert code == 0, err
    assert "6/6 ok" in out
    assert json.loads(result_file.read_text(encoding="utf-8"))["ok"] == 6


# ------------------------------------------------------------------------------ real NoneBot

NONEBOT_APP = """
import sys
import nonebot
from nonebot import on_message
from nonebot.adapters.onebot.v11 import Adapter, Bot, GroupMessageEvent, MessageEvent

nonebot.init(driver="~fastapi", host="127.0.0.1", port=int(sys.argv[1]),
             onebot_access_token="tok", log_level="WARNING")
nonebot.get_driver().register_adapter(Adapter)
echo = on_message()

@echo.handle()
async def _(bot: Bot, event: MessageEvent) -> None:
    info = await bot.get_login_info()
    quoted = f" (quoting {event.reply.message_id})" if event.reply else ""
    if isinstance(event, GroupMessageEvent):
        member = await bot.get_group_member_info(group_id=event.group_id, user_id=event.user_id)
        await echo.finish(f"{member['role']}: {event.get_plaintext()}{quoted}",
                          reply_message=True, at_sender=True)
    await echo.finish(f"{info['nickname']} got {event.get_plaintext()}{quoted}")

nonebot.run()
"""


@pytest.fixture(scope="module")
def nonebot_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("nonebot.adapters.onebot.v11")
    pytest.importorskip("fastapi")
    workdir = tmp_path_factory.mktemp("nonebot_app")
    (workdir / "app.py").write_text(NONEBOT_APP, encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("ONEBOT", "NONEBOT"))}
    env["ENVIRONMENT"] = "prod"
    proc = subprocess.Popen(
        [sys.executable, "app.py", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"ws://127.0.0.1:{port}/onebot/v11/ws"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_against_real_nonebot(nonebot_app: str) -> None:
    with pytest.raises(ConnectionRejected):
        await OneBotSimulator(nonebot_app, access_token="wrong", reject_grace=0.2).connect(30)

    async with OneBotSimulator(nonebot_app, self_id=10000, access_token="tok") as simulator:
        reply = await simulator.ask_private(10001, "/商品", timeout=10)
        assert reply.text == "小店 got /商品"

        reply = await simulator.ask_group(555, 10002, "hi", timeout=10, role="admin")
        assert reply.reply_to == simulator.events[-1]["message_id"]
        assert reply.mentions == ["10002"]
        assert reply.text == "@10002 admin: hi"

        # quoting the bot's message makes the adapter call get_msg on us
        quoted = await simulator.ask_group(
            555, 10002, [Seg.reply(reply.message_id), Seg.text("again")], timeout=10
        )
        assert quoted.text == f"@10002 member: again (quoting {reply.message_id})"
        assert any(c.action == "get_msg" for c in simulator.api_calls)

        result = await run_load(nonebot_app, 4, 3, "/商品", group_id=555, sim=simulator)
        assert (result["ok"], result["total"]) == (12, 12)
