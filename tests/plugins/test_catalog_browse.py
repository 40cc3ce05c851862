"""/商品 /分类 /搜索 /详情 in private chats and groups."""

from __future__ import annotations

import pytest
from nonebug import App

from tests.conftest import CUSTOMER_ID, GROUP_ID, OWNER_ID
from tests.fake import Says, group, private, v11_bot


async def test_items_private_lists_demo_free_empty_shop(app: App, shop) -> None:
    event = private("/商品", CUSTOMER_ID)
    async with app.test_matcher() as ctx:
        bot = v11_bot(ctx)
        ctx.receive_event(bot, event)
        ctx.should_call_send(event, Says(event, "还没有在售商品"))
