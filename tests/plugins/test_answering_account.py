"""Several shop accounts in one group: both receive every message there, exactly one
answers (the group's answering account, services/accounts.AnsweringAccounts); the other
only learns that it is in the group."""

from __future__ import annotations

from typing import Any

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID
from tests.fake import SELF_ID, Says, group

SECOND_ID = 2854196311  # a higher QQ number than SELF_ID: SELF_ID answers while present


@pytest.fixture
async def two_accounts_in_the_group(shop: Any) -> Any:
    """Both accounts connected to this process, both listing the shop's group."""
    from services.usecases import accounts
    from tests.plugins.helpers import enable_group, seed_demo

    await seed_demo(shop)
    await enable_group(shop)
    for account in (SECOND_ID, SELF_ID):
        await accounts.account_connected(shop.shop, account, [GROUP_ID])
    return shop


def received_by(account: int, text: str) -> Any:
    """The group message as the OneBot implementation of `account` delivers it."""
    return group(text, CUSTOMER_ID, GROUP_ID).model_copy(update={"self_id": account})


async def test_one_command_in_a_group_of_two_accounts_is_answered_once(
    app: App, two_accounts_in_the_group: Any
) -> None:
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    to_first = received_by(SELF_ID, "/商品")
    to_second = received_by(SECOND_ID, "/商品")
    async with app.test_matcher() as ctx:
        adapter = nonebot.get_adapter(Adapter)
        first = ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SELF_ID))
        second = ctx.create_bot(base=Bot, adapter=adapter, self_id=str(SECOND_ID))
        # Any answer through the second account would be an unexpected call: nonebug fails.
        ctx.receive_event(second, to_second)
        ctx.receive_event(first, to_first)
        ctx.should_call_send(to_first, Says(to_first, "在售商品"), bot=first)


async def test_the_other_account_answers_once_the_first_is_lost(
    app: App, two_accounts_in_the_group: Any
) -> None:
    """The dispatcher loop finds the first account's connection gone (account_lost):
    from the next message on the second account answers, without a database refresh."""
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter, Bot

    from services.usecases import accounts

    accounts.account_lost(two_accounts_in_the_group.shop, SELF_ID)
    event = received_by(SECOND_ID, "/商品")
    async with app.test_matcher() as ctx:
        second = ctx.create_bot(
            base=Bot, adapter=nonebot.get_adapter(Adapter), self_id=str(SECOND_ID)
        )
        ctx.receive_event(second, event)
        ctx.should_call_send(event, Says(event, "在售商品"), bot=second)
