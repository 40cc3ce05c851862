"""Cart and ordering: /加购 /购物车 /移出 /清空购物车 /结算 /下单 (with the 确认
dialogue), /地址, /订单, /付款, /修改, /取消."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nonebot.plugin import PluginMetadata
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import CheckoutDraft, OrderStatus, ShopOrder
from models.types import utcnow
from plugins._common.args import ArgReader, UsageError, is_integer_word, normalise_word
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import (
    DialogueMessage,
    command,
    dialogue,
    dialogue_probe,
    registry,
)
from services import addresses, cart, catalog, checkout, notices, orders, reviews, shipping
from services.catalog import VariantRef
from services.codes import looks_like_code
from services.errors import NoAddress, ShopError
from services.media import load_image
from services.order_rules import STATUS_BY_NAME, Mode
from services.shop import get_shop

from . import render

T = TypeVar("T")

__plugin_meta__ = PluginMetadata(
    name="购物车与下单",
    description="加购、结算、下单确认、收货地址、订单查询、付款、修改与取消",
    usage="/加购 /购物车 /结算 /下单 /地址 /订单 /付款 /修改 /取消",
)

AREA = "下单"


def chat_key(ctx: CommandContext) -> int | None:
    return ctx.group_id


def wake_outbox(ctx: CommandContext) -> None:
    pass  # woken on commit


# --- cart ---------------------------------------------------------------------------


@command(
    "加购",
    aliases=("add",),
    usage="加购 <规格编号> [数量]",
    example="加购 12-2 3",
    summary="加入购物车",
    area=AREA,
)
async def add_to_cart(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    quantity = ctx.args.quantity() if ctx.args.has_more() else 1
    ctx.args.end()
    async with ctx.runtime.database.write() as session:
        item, variant, total = await cart.add_to_cart(
            session, ctx.shop_id, ctx.user_id, ref, quantity
        )
    return Reply(
        render.added_to_cart(
            VariantRef(ref.item_id, variant.position), item.name, variant.name, total
        )
    )


@command(
    "购物车", aliases=("cart",), usage="购物车", example="购物车", summary="查看购物车", area=AREA
)
async def show_cart(ctx: CommandContext) -> Reply:
    ctx.args.end()
    async with ctx.runtime.database.read() as session:
        views = await cart.view_cart(session, ctx.shop_id, ctx.user_id)
    return Reply(render.cart(views))


@command(
    "移出",
    aliases=("remove",),
    usage="移出 <规格编号>",
    example="移出 12-2",
    summary="从购物车移出",
    area=AREA,
)
async def remove_from_cart(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    ctx.args.end()
    async with ctx.runtime.database.write() as session:
        view = await cart.remove_from_cart(session, ctx.shop_id, ctx.user_id, ref)
    return Reply(render.removed_from_cart(view))


@command(
    "清空购物车",
    aliases=("clear",),
    usage="清空购物车",
    example="清空购物车",
    summary="清空购物车",
    area=AREA,
)
async def clear_cart(ctx: CommandContext) -> Reply:
    ctx.args.end()
    async with ctx.runtime.database.write() as session:
        count = await cart.clear_cart(session, ctx.shop_id, ctx.user_id)
    return Reply(render.cart_cleared(count))


# --- checkout and the confirmation dialogue -----------------------------------------


async def _start_checkout(
    ctx: CommandContext, source: str, wanted: list[tuple[int, int]], remark: str
) -> Reply:
    settings = ctx.runtime.settings
    now = utcnow()
    try:
        async with ctx.runtime.database.write() as session:
            summary = await checkout.start(
                session,
                ctx.shop_id,
                ctx.user_id,
                ctx.group_id,
                source,
                wanted,
                remark,
                now,
                settings.confirm_timeout,
            )
    except NoAddress:
        ctx.runtime.drafts.drop(chat_key(ctx), ctx.user_id)
        return Reply(render.address_in_private_first())
    if summary.address is None:
        ctx.runtime.drafts.put(chat_key(ctx), ctx.user_id, summary.draft.expires_at, True)
        return Reply(render.ask_address(summary))
    return _summary_reply(ctx, summary)


@command(
    "下单",
    aliases=("buy",),
    usage="下单 <规格编号> [数量] [备注]",
    example="下单 12-2 3",
    summary="直接购买一个规格（先确认再生成订单）",
    area=AREA,
)
async def buy(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    quantity = ctx.args.optional_quantity() or 1
    remark = ctx.args.rest("备注", required=False)
    async with ctx.runtime.database.read() as session:
        _, variant = await catalog.resolve_variant(session, ctx.shop_id, ref)
    return await _start_checkout(ctx, "buy", [(variant.id or 0, quantity)], remark)


@command(
    "结算",
    aliases=("checkout",),
    usage="结算 [备注]",
    example="结算 周末送货",
    summary="购物车下单（先确认再生成订单）",
    area=AREA,
)
async def checkout_cart(ctx: CommandContext) -> Reply:
    remark = ctx.args.rest("备注", required=False)
    async with ctx.runtime.database.read() as session:
        views = await cart.view_cart(session, ctx.shop_id, ctx.user_id)
    wanted = [(view.variant.id or 0, view.line.quantity) for view in views if view.available]
    return await _start_checkout(ctx, "cart", wanted, remark)


async def _or_discard(
    ctx: CommandContext,
    session: AsyncSession,
    draft: CheckoutDraft,
    work: Callable[[], Awaitable[T]],
) -> tuple[T | None, ShopError | None]:
    """Runs `work` in a savepoint. If it fails for a shop reason (stock gone, item delisted,
    price changed since the summary), only its part is undone: the summary is deleted in
    the same transaction (so the customer starts afresh) and the error is returned for the
    caller to raise once the transaction has committed. One write lock per message."""
    try:
        async with session.begin_nested():
            return await work(), None
    except ShopError as error:
        await checkout.discard(session, draft)
        ctx.runtime.drafts.drop(chat_key(ctx), ctx.user_id)
        return None, error


# Deliberately not "yes"/"no"/"ok": in a busy group those are ordinary chatter.
CONFIRM_WORDS = frozenset({"确认", "确定", "confirm"})
DISCARD_WORDS = frozenset({"取消", "放弃", "discard"})
# A line is taken as the address the summary asked for only if it looks like one (a phone
# number, or three words with digits in them, e.g. a mistyped phone); other chatter in
# the private chat is left alone.
_PHONE_LIKE = re.compile(r"(?:\+?86)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")


def looks_like_address(text: str) -> bool:
    return bool(_PHONE_LIKE.search(text)) or (
        len(text.split()) >= 3 and any(ch.isdigit() for ch in text)
    )


@dialogue_probe
def _summary_reply(message: DialogueMessage) -> str | None:
    """确认, 取消, or (private, when the summary asked for one) an address line, from the
    user who has an order summary waiting in this chat."""
    drafts = message.runtime.shop.drafts
    if not drafts:
        return None
    pending = drafts.get(message.group_id, message.user_id)
    if pending is None:
        return None
    lowered = message.text.lower()
    if lowered in CONFIRM_WORDS:
        return "confirm"
    if lowered in DISCARD_WORDS:
        return "discard"
    if (
        pending.awaiting_address
        and not message.in_group
        and looks_like_address(message.text)
        and registry.lookup(message.text.split()[0]) is None
    ):
        return "address"
    return None


@dialogue("confirm", area=AREA, usage="确认", example="确认")
async def confirm(ctx: CommandContext) -> Reply:
    now = utcnow()
    settings = ctx.runtime.settings
    async with ctx.runtime.database.write() as session:
        draft = await checkout.find(session, ctx.shop_id, ctx.user_id, ctx.group_id)
        if draft is None or draft.expires_at <= now:
            ctx.runtime.drafts.drop(chat_key(ctx), ctx.user_id)
            if draft is not None:
                await checkout.discard(session, draft)
            return Reply(render.draft_expired())
        summary: checkout.Summary | None = None
        order: ShopOrder | None = None
        if draft.awaiting_address:
            # The address may have come by /地址 添加 instead of a bare line: show the
            # summary with it, and let the customer confirm what they now see.
            if await addresses.default_address(session, ctx.shop_id, ctx.user_id) is None:
                ctx.runtime.drafts.put(chat_key(ctx), ctx.user_id, draft.expires_at, True)
                return Reply(render.ask_address(await checkout.summary_of(session, draft)))
            summary, failure = await _or_discard(
                ctx,
                session,
                draft,
                lambda: checkout.address_given(session, draft, now, settings.confirm_timeout),
            )
        else:
            # From here the summary is used up, whatever happens to the order (a flash
            # sale queues on this one write lock: bench/flash_sale.py).
            ctx.runtime.drafts.drop(chat_key(ctx), ctx.user_id)

            async def place() -> ShopOrder:
                order = await checkout.confirm(session, draft, now, settings.unpaid_timeout)
                await notices.to_staff(
                    session,
                    ctx.shop_id,
                    ctx.runtime.access.owners,
                    notices.new_order_for_staff(order),
                    f"order:{order.code}:new",
                    now,
                )
                return order

            order, failure = await _or_discard(ctx, session, draft, place)
    if failure is not None:
        raise failure
    if summary is not None:
        return _summary_reply(ctx, summary)
    assert order is not None
    wake_outbox(ctx)
    return Reply(render.order_created_text(order, settings.timezone))


@dialogue("discard", area=AREA, usage="取消", example="取消")
async def discard(ctx: CommandContext) -> Reply:
    ctx.runtime.drafts.drop(chat_key(ctx), ctx.user_id)
    async with ctx.runtime.database.write() as session:
        draft = await checkout.find(session, ctx.shop_id, ctx.user_id, ctx.group_id)
        if draft is not None:
            await checkout.discard(session, draft)
    return Reply(render.discarded())


@dialogue(
    "address",
    area=AREA,
    usage="<姓名> <手机号> <详细地址>",
    example="张三 13800001111 浙江省杭州市西湖区文三路 1 号",
)
async def address_reply(ctx: CommandContext) -> Reply:
    snapshot = _read_address(ctx.args)
    now = utcnow()
    settings = ctx.runtime.settings
    async with ctx.runtime.database.write() as session:
        draft = await checkout.find(session, ctx.shop_id, ctx.user_id, None)
        if draft is None or draft.expires_at <= now:
            ctx.runtime.drafts.drop(chat_key(ctx), ctx.user_id)
            return Reply(render.draft_expired())
        await addresses.add_address(session, ctx.shop_id, ctx.user_id, snapshot)
        # The address is kept even when the goods are gone meanwhile.
        summary, failure = await _or_discard(
            ctx,
            session,
            draft,
            lambda: checkout.address_given(session, draft, now, settings.confirm_timeout),
        )
    if failure is not None:
        raise failure
    assert summary is not None
    return _summary_reply(ctx, summary)


def _summary_reply(ctx: CommandContext, summary: checkout.Summary) -> Reply:
    """Indexes the summary for the 确认/取消 that follow, and shows it."""
    ctx.runtime.drafts.put(
        chat_key(ctx), ctx.user_id, summary.draft.expires_at, summary.address is None
    )
    minutes = max(1, round(ctx.runtime.settings.confirm_timeout_seconds / 60))
    return Reply(render.summary(summary, in_group=ctx.in_group, timeout_minutes=minutes))


# --- addresses ----------------------------------------------------------------------


def _read_address(args: ArgReader) -> addresses.AddressSnapshot:
    name = args.word("姓名")
    phone = args.word("手机号")
    detail = args.rest("详细地址")
    return addresses.validate(name, phone, detail)


_ADDRESS_ACTIONS = {
    "添加": "add",
    "默认": "default",
    "删除": "delete",
    "add": "add",
    "default": "default",
    "delete": "delete",
}


@command(
    "地址",
    aliases=("address",),
    usage="地址 [添加 <姓名> <手机号> <详细地址> | 默认 <序号> | 删除 <序号>]",
    example="地址 添加 张三 13800001111 浙江省杭州市西湖区文三路 1 号",
    summary="收货地址：查看、添加（仅私聊）、设默认、删除",
    area=AREA,
)
async def manage_addresses(ctx: CommandContext) -> Reply:
    if not ctx.args.has_more():
        async with ctx.runtime.database.read() as session:
            rows = await addresses.list_addresses(session, ctx.shop_id, ctx.user_id)
        return Reply(render.address_list(rows, in_group=ctx.in_group))
    action = ctx.args.choice("操作", _ADDRESS_ACTIONS)
    if action == "add":
        if ctx.in_group:
            # Nothing of the typed line is echoed: it may contain the phone number.
            return Reply(render.address_private_only())
        snapshot = _read_address(ctx.args)
        async with ctx.runtime.database.write() as session:
            address, number = await addresses.add_address(
                session, ctx.shop_id, ctx.user_id, snapshot
            )
        return Reply(render.address_added(address, number))
    number = ctx.args.number("序号")
    ctx.args.end()
    async with ctx.runtime.database.write() as session:
        if action == "default":
            address = await addresses.set_default(session, ctx.shop_id, ctx.user_id, number)
            return Reply(render.address_default(address, number, ctx.in_group))
        await addresses.delete_address(session, ctx.shop_id, ctx.user_id, number)
    return Reply(render.address_deleted(number))


# --- orders -------------------------------------------------------------------------


@command(
    "订单",
    aliases=("orders",),
    usage="订单 [状态] [页码] | 订单 <订单号>",
    example="订单 待付款",
    summary="我的订单；加订单号看详情和记录",
    area=AREA,
    details=("状态：待付款、待发货、已发货、已签收、已完成、已取消、已退款",),
)
async def my_orders(ctx: CommandContext) -> Reply:
    word = ctx.args.peek()
    zone = ctx.runtime.settings.timezone
    if word is not None and word not in STATUS_BY_NAME and not is_integer_word(word):
        if not looks_like_code(normalise_word(word)):
            raise UsageError(
                f"“{word}”不是订单号，也不是订单状态（待付款、待发货、已发货、已签收、已完成、已取消、已退款）。"
            )
        code = ctx.args.order_code()
        ctx.args.end()
        async with ctx.runtime.database.read() as session:
            order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.own_only)
            detail = await orders.order_detail(session, order)
            tracking = await shipping.tracking_view(session, order)
        return Reply(
            render.order_detail(
                order,
                detail.lines,
                detail.events,
                detail.pending_requests,
                zone,
                in_group=ctx.in_group,
                tracking=tracking,
            )
        )
    status = STATUS_BY_NAME[ctx.args.word("状态")] if word in STATUS_BY_NAME else None
    page = ctx.args.page() if ctx.args.has_more() else 1
    ctx.args.end()
    async with ctx.runtime.database.read() as session:
        rows, total = await orders.list_orders(
            session, ctx.shop_id, customer_id=ctx.user_id, status=status, page=page
        )
        with_lines = [(order, await orders.order_lines(session, order.id or 0)) for order in rows]
    return Reply(
        render.order_list(
            with_lines, total, page, zone, title="你的订单", hint="发 /订单 <订单号> 查看详情"
        )
    )


@command(
    "付款",
    aliases=("pay",),
    usage="付款 <订单号>",
    example="付款 2K7QH9M3XA",
    summary="付款金额和方式",
    area=AREA,
)
async def pay(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    ctx.args.end()
    async with ctx.runtime.database.read() as session:
        order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.own_only)
        shop = await get_shop(session, ctx.shop_id)
    if order.status != OrderStatus.PENDING_PAYMENT.value:
        return Reply(render.not_payable(order))
    image = load_image(shop.payment_qr_path, ctx.shop.data_dir) if shop.payment_qr_path else None
    return Reply(render.payment_instructions(order, shop.payment_text), image=image)


_AMEND_FIELDS = {
    "地址": "address",
    "数量": "quantity",
    "备注": "remark",
    "address": "address",
    "quantity": "quantity",
    "remark": "remark",
}


@command(
    "修改",
    aliases=("amend",),
    usage="修改 <订单号> <地址 <序号>|数量 <规格编号> <数量>|备注 <文字>>",
    example="修改 2K7QH9M3XA 数量 12-2 1",
    summary="改地址、数量（仅待付款）、备注；已付款的改动需店家审核",
    area=AREA,
)
async def amend(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    field = ctx.args.choice("修改项", _AMEND_FIELDS)
    now = utcnow()
    who = ctx.actor
    if field == "address":
        number = ctx.args.number("地址序号")
        ctx.args.end()
    elif field == "quantity":
        ref = ctx.args.variant_ref()
        quantity = ctx.args.quantity(allow_zero=True)
        ctx.args.end()
    else:
        remark = ctx.args.rest("备注")
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.user_id)
        if field == "address":
            address = await addresses.get_by_number(session, ctx.shop_id, ctx.user_id, number)
            mode = await orders.amend_address(
                session, order, addresses.AddressSnapshot.of(address), who, now
            )
            text = render.amended(order, "修改地址", mode)
        elif field == "quantity":
            line, old = await orders.amend_quantity(session, order, ref, quantity, who, now)
            mode = Mode.DIRECT
            text = render.quantity_changed(order, line, old, quantity)
        else:
            mode = await orders.amend_remark(session, order, remark, who, now)
            text = render.amended(order, "修改备注", mode)
        if mode is Mode.REQUEST:
            await notices.to_staff(
                session,
                ctx.shop_id,
                ctx.runtime.access.owners,
                notices.request_for_staff(order, field, ""),
                f"order:{order.code}:request:{field}:{now.timestamp()}",
                now,
            )
    if mode is Mode.REQUEST:
        wake_outbox(ctx)
    return Reply(text)


@command(
    "取消",
    aliases=("cancel",),
    usage="取消 <订单号> [原因]",
    example="取消 2K7QH9M3XA 拍错了",
    summary="取消订单（已付款的需店家同意，全额退款）",
    area=AREA,
)
async def cancel(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    reason = ctx.args.rest("原因", required=False)
    now = utcnow()
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.user_id)
        mode = await orders.cancel(session, order, ctx.actor, reason, now)
        if mode is Mode.REQUEST:
            await notices.to_staff(
                session,
                ctx.shop_id,
                ctx.runtime.access.owners,
                notices.request_for_staff(order, "cancel", reason),
                f"order:{order.code}:request:cancel:{now.timestamp()}",
                now,
            )
    if mode is Mode.REQUEST:
        wake_outbox(ctx)
    return Reply(render.cancelled(order, mode))


@command(
    "评价",
    aliases=("review",),
    usage="评价 <订单号> <1-5> [内容]",
    example="评价 2K7QH9M3XA 5 豆子很新鲜",
    summary="给已完成的订单打分（每单一次）",
    area=AREA,
)
async def review(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    rating = ctx.args.number("评分", limit=5)
    text = ctx.args.rest("内容", required=False)
    async with ctx.runtime.database.write() as session:
        order = await orders.get_order(session, ctx.shop_id, code, customer_id=ctx.user_id)
        saved = await reviews.add_review(session, order, ctx.user_id, rating, text, utcnow())
    return Reply(render.reviewed(order, saved.rating))
