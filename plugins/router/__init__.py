"""The single matcher behind every shop command.

NoneBot checks every registered matcher on every message (~1.6 ms of CPU each here), so
the shop registers exactly one: it looks the first word up in the command registry that
the area plugins fill, and dispatches. Start-up opens and migrates the database."""

from __future__ import annotations

import gc

from nonebot import get_driver, logger, on_message
from nonebot.adapters.onebot.v11 import ActionFailed, Bot, MessageEvent, NetworkError
from nonebot.plugin import PluginMetadata
from nonebot.typing import T_State

from config import load_settings
from plugins._common.dispatch import Invocation, execute, recognise, to_message
from plugins._common.runtime import current_runtime, start_runtime, stop_runtime

__plugin_meta__ = PluginMetadata(
    name="命令路由",
    description="店铺所有命令的统一入口：查表分发、权限、群开关、防刷屏",
    usage="发送 /帮助 查看命令",
)

driver = get_driver()
_INVOCATION = "shop_invocation"


@driver.on_startup
async def _open_shop() -> None:
    settings = load_settings()
    owners = {int(u) for u in driver.config.superusers if u.isdigit()}
    runtime = await start_runtime(settings, owners, set(driver.config.command_start))
    logger.info(
        f"shop ready: database {runtime.database.engine.url.render_as_string(hide_password=True)}"
    )
    # Start-up objects live forever; freezing them keeps full collections short.
    gc.collect()
    gc.freeze()


@driver.on_shutdown
async def _close_shop() -> None:
    await stop_runtime()


async def _is_shop_command(bot: Bot, event: MessageEvent, state: T_State) -> bool:
    runtime = current_runtime()
    if runtime is None:
        return False
    invocation = await recognise(runtime, event, bot.self_id)
    if invocation is None:
        return False
    state[_INVOCATION] = invocation
    return True


shop_command = on_message(rule=_is_shop_command, priority=10, block=True)


@shop_command.handle()
async def _dispatch(bot: Bot, event: MessageEvent, state: T_State) -> None:
    runtime = current_runtime()
    invocation: Invocation = state[_INVOCATION]
    if runtime is None:
        return
    reply = await execute(runtime, invocation, event)
    if reply is None:
        return
    try:
        await bot.send(event, to_message(reply, event))
    except (NetworkError, ActionFailed) as error:
        # The OneBot connection dropped or QQ refused: the command's effect is saved, only
        # this answer is lost (the customer can ask again); not worth a traceback.
        logger.warning(f"reply to {event.user_id} not delivered: {error!r}")
