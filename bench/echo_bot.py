"""The floor for the load benchmark: a bare NoneBot2 bot with one `/echo` command.

Same stack and settings as the shop (`python bot.py`): FastAPI + websockets drivers,
OneBot v11 adapter over reverse WebSocket at ws://HOST:PORT/onebot/v11/ws, and the
same environment variables (HOST, PORT, ONEBOT_ACCESS_TOKEN, LOG_LEVEL, ...). It answers
`/echo <text>` with `<text>` as a text message and nothing else.

    HOST=127.0.0.1 PORT=8081 python bench/echo_bot.py
"""

import os

import nonebot
from nonebot import on_command
from nonebot.adapters.onebot.v11 import Adapter as OneBotV11Adapter
from nonebot.adapters.onebot.v11 import Message
from nonebot.params import CommandArg

os.environ.setdefault("DRIVER", "~fastapi+~websockets")

nonebot.init()
nonebot.get_driver().register_adapter(OneBotV11Adapter)

echo = on_command("echo")


@echo.handle()
async def _(arg: Message = CommandArg()) -> None:  # noqa: B008
    await echo.send(arg.extract_plain_text())


if __name__ == "__main__":
    nonebot.run()
