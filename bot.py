"""Start the shop bot: NoneBot2 + OneBot v11 over reverse WebSocket (/onebot/v11/ws)."""

import os

import nonebot
from nonebot.adapters.onebot.v11 import Adapter as OneBotV11Adapter

# The stack is FastAPI (serves the reverse WebSocket) + websockets; an environment
# variable may still override it, a .env line may not need to say it.
os.environ.setdefault("DRIVER", "~fastapi+~websockets")

nonebot.init()
nonebot.get_driver().register_adapter(OneBotV11Adapter)
nonebot.load_from_toml("pyproject.toml")

if __name__ == "__main__":
    nonebot.run()
