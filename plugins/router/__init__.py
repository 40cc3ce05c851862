"""The single matcher behind every shop command (and every friend request).

NoneBot checks every registered matcher on every message (~1.6 ms of CPU each here), so
the shop registers exactly one: it looks the first word up in the command registry that
the area plugins fill, and dispatches. Start-up opens and migrates the database.

Friend requests come through the same matcher: NoneBot starts a task for every matcher on
every event and only then compares the event type, so even a matcher for request events
alone would cost every group message (about 0.1 ms of CPU, measured)."""

from __future__ import annotations

import gc
from pathlib import Path

from nonebot import get_driver, get_plugin_config, logger, on
from nonebot.adapters import Event
from nonebot.adapters.onebot.v11 import (
    ActionFailed,
    Bot,
    FriendRequestEvent,
    GroupMessageEvent,
    MessageEvent,
    NetworkError,
)
from nonebot.adapters.onebot.v11.config import Config as OneBotConfig
from nonebot.plugin import PluginMetadata
from nonebot.typing import T_State

from config import ShopSettings, load_settings
from config.startup import startup_notes
from plugins._common.dispatch import Invocation, execute, recognise, to_message
from plugins._common.runtime import current_runtime, start_runtime, stop_runtime
from services.usecases import accounts, friends

__plugin_meta__ = PluginMetadata(
    name="命令路由",
    description="店铺所有命令的统一入口：查表分发、权限、群开关、防刷屏",
    usage="发送 /帮助 查看命令",
)

driver = get_driver()
_INVOCATION = "shop_invocation"


def _log_startup_notes(settings: ShopSettings) -> None:
    """Where NapCat / Lagrange connect, and warnings about missing or placeholder settings."""
    config = driver.config
    env_files = (Path(".env"), Path(f".env.{driver.env}"))
    notes = startup_notes(
        host=str(config.host),
        port=int(config.port),
        superusers=config.superusers,
        # As the adapter reads it (a .env line or an environment variable).
        access_token=get_plugin_config(OneBotConfig).onebot_access_token,
        env_file_found=any(path.is_file() for path in env_files),
        secrets={
            "EPAY_PID": settings.epay_pid,
            "EPAY_KEY": settings.epay_key.get_secret_value(),
            "KUAIDI100_CUSTOMER": settings.kuaidi100_customer,
            "KUAIDI100_KEY": settings.kuaidi100_key,
            "PUBLIC_BASE_URL": settings.public_base_url,
        },
    )
    for note in notes:
        logger.log(note.level.value, note.text)


@driver.on_startup
async def _open_shop() -> None:
    settings = load_settings()
    _log_startup_notes(settings)
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
    # Which QQ account reaches this chat, for the outbox (several accounts), and whether
    # this account answers here (one answer in a group several shop accounts are in):
    # memory only.
    if bot.self_id.isdigit():
        group_id = event.group_id if isinstance(event, GroupMessageEvent) else None
        if not accounts.saw_message(runtime.shop, int(bot.self_id), group_id, event.user_id):
            return False
    invocation = await recognise(runtime, event, bot.self_id)
    if invocation is None:
        return False
    state[_INVOCATION] = invocation
    return True


async def _is_shop_event(bot: Bot, event: Event, state: T_State) -> bool:
    """A shop command, or a friend request (for `_answer_friend_request`)."""
    if isinstance(event, MessageEvent):
        return await _is_shop_command(bot, event, state)
    return isinstance(event, FriendRequestEvent) and current_runtime() is not None


shop_command = on(rule=_is_shop_event, priority=10, block=True)


@shop_command.handle()
async def _dispatch(bot: Bot, event: MessageEvent, state: T_State) -> None:
    runtime = current_runtime()
    invocation: Invocation = state[_INVOCATION]
    if runtime is None:
        return
    reply = await execute(runtime, invocation, event, bot)
    if reply is None:
        return
    try:
        await bot.send(event, to_message(reply, event))
    except (NetworkError, ActionFailed) as error:
        # The OneBot connection dropped or QQ refused: the command's effect is saved, only
        # this answer is lost (the customer can ask again); not worth a traceback.
        logger.warning(f"reply to {event.user_id} not delivered: {error!r}")


@shop_command.handle()
async def _answer_friend_request(bot: Bot, event: FriendRequestEvent) -> None:
    """FRIEND_REQUESTS=accept: the approval (and a welcome) go out through the outbox,
    paced like every message the shop sends on its own. (A message event skips this
    handler: NoneBot runs only the handlers whose event type fits.)"""
    runtime = current_runtime()
    if runtime is None:
        return
    if bot.self_id.isdigit():  # only this account can approve it
        accounts.saw_friend_request(runtime.shop, int(bot.self_id), event.user_id)
    answer = await friends.friend_request(runtime.shop, event.user_id, event.flag)
    if answer.queued:
        logger.info(f"friend request of {event.user_id}: approval queued")
    elif not answer.approved:
        logger.info(f"friend request of {event.user_id} left to the owner (FRIEND_REQUESTS=ignore)")
