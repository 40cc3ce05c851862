"""Cart and ordering: /加购 /购物车 /移出 /清空购物车 /结算 /下单 (with the 确认
dialogue), /地址, /订单, /付款, /修改, /取消."""

from __future__ import annotations

import re

from models.tables import PayType
from plugins._common.args import ArgReader, UsageError, is_integer_word, normalise_word
from plugins._common.context import CommandContext, Reply
from plugins._common.registry import (
    DialogueMessage,
    command,
    dialogue,
    dialogue_probe,
    plugin_metadata,
    registry,
)
from services import addresses
from services.codes import looks_like_code
from services.errors import KeysPrivateOnly
from services.limits import quote
from services.order_rules import STATUS_BY_NAME
from services.usecases import buying, card_keys
from services.usecases.buying import NextStep
from services.usecases.epay import PaymentLink

from . import render

AREA = "下单"


# --- cart ---------------------------------------------------------------------------


@command(
    "加购",
    aliases=("add",),
    usage="加购 <规格编号> [数量]",
    example="加购 1-2 3",
    summary="加入购物车",
    area=AREA,
)
async def add_to_cart(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    quantity = ctx.args.quantity() if ctx.args.has_more() else 1
    ctx.args.end()
    added = await buying.add_to_cart(ctx.shop, ctx.caller, ref, quantity)
    return Reply(
        render.added_to_cart(added.ref, added.item.name, added.variant.name, added.quantity)
    )


@command(
    "购物车", aliases=("cart",), usage="购物车", example="购物车", summary="查看购物车", area=AREA
)
async def show_cart(ctx: CommandContext) -> Reply:
    ctx.args.end()
    return Reply(render.cart(await buying.view_cart(ctx.shop, ctx.caller)))


@command(
    "移出",
    aliases=("remove",),
    usage="移出 <规格编号>",
    example="移出 1-2",
    summary="从购物车移出",
    area=AREA,
)
async def remove_from_cart(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    ctx.args.end()
    view = await buying.remove_from_cart(ctx.shop, ctx.caller, ref)
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
    return Reply(render.cart_cleared(await buying.clear_cart(ctx.shop, ctx.caller)))


# --- checkout and the confirmation dialogue -----------------------------------------


def _step_reply(ctx: CommandContext, step: buying.CheckoutStep) -> Reply:
    """What the customer is asked next: the summary, an address, or to start again."""
    if step.next_step is NextStep.START_AGAIN:
        return Reply(render.draft_expired())
    if step.next_step is NextStep.ADD_ADDRESS_PRIVATELY:
        return Reply(render.address_in_private_first())
    assert step.summary is not None
    if step.next_step is NextStep.GIVE_ADDRESS:
        return Reply(render.ask_address(step.summary))
    minutes = max(1, round(ctx.shop.settings.confirm_timeout_seconds / 60))
    return Reply(render.summary(step.summary, in_group=ctx.in_group, timeout_minutes=minutes))


@command(
    "下单",
    aliases=("buy",),
    usage="下单 <规格编号> [数量] [备注]",
    example="下单 1-2 3",
    summary="直接购买一个规格（先确认再生成订单）",
    area=AREA,
)
async def buy(ctx: CommandContext) -> Reply:
    ref = ctx.args.variant_ref()
    quantity = ctx.args.optional_quantity() or 1
    remark = ctx.args.rest("备注", required=False)
    return _step_reply(ctx, await buying.buy_now(ctx.shop, ctx.caller, ref, quantity, remark))


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
    return _step_reply(ctx, await buying.check_out_cart(ctx.shop, ctx.caller, remark))


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
    user who has an order summary waiting in this chat (the checkout use cases keep the
    index it reads in step with the summaries)."""
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
    outcome = await buying.confirm_summary(ctx.shop, ctx.caller)
    if isinstance(outcome, buying.OrderPlaced):
        return Reply(render.order_created_text(outcome.order, ctx.shop.settings.timezone))
    return _step_reply(ctx, outcome)


@dialogue("discard", area=AREA, usage="取消", example="取消")
async def discard(ctx: CommandContext) -> Reply:
    await buying.discard_summary(ctx.shop, ctx.caller)
    return Reply(render.discarded())


@dialogue(
    "address",
    area=AREA,
    usage="<姓名> <手机号> <详细地址>",
    example="张三 13800001111 浙江省杭州市西湖区文三路 1 号",
)
async def address_reply(ctx: CommandContext) -> Reply:
    snapshot = _read_address(ctx.args)
    return _step_reply(ctx, await buying.give_address(ctx.shop, ctx.caller, snapshot))


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
        rows = await buying.list_addresses(ctx.shop, ctx.caller)
        return Reply(render.address_list(rows, in_group=ctx.in_group))
    action = ctx.args.choice("操作", _ADDRESS_ACTIONS)
    if action == "add":
        if ctx.in_group:
            # Nothing of the typed line is read or echoed: it may contain the phone number.
            return Reply(render.address_private_only())
        added = await buying.add_address(ctx.shop, ctx.caller, _read_address(ctx.args))
        if added is None:
            return Reply(render.address_private_only())
        return Reply(render.address_added(added.address, added.number))
    number = ctx.args.number("序号")
    ctx.args.end()
    if action == "default":
        address = await buying.set_default_address(ctx.shop, ctx.caller, number)
        return Reply(render.address_default(address, number, ctx.in_group))
    await buying.delete_address(ctx.shop, ctx.caller, number)
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
    zone = ctx.shop.settings.timezone
    if word is not None and word not in STATUS_BY_NAME and not is_integer_word(word):
        if not looks_like_code(normalise_word(word)):
            raise UsageError(
                f"{quote(word)}不是订单号，也不是订单状态（待付款、待发货、已发货、已签收、已完成、已取消、已退款）。"
            )
        code = ctx.args.order_code()
        ctx.args.end()
        view = await buying.order_detail(ctx.shop, ctx.caller, code)
        return Reply(
            render.order_detail(
                view.order,
                view.detail.lines,
                view.detail.events,
                view.detail.pending_requests,
                zone,
                in_group=ctx.in_group,
                tracking=view.tracking,
            )
        )
    status = STATUS_BY_NAME[ctx.args.word("状态")] if word in STATUS_BY_NAME else None
    page = ctx.args.page() if ctx.args.has_more() else 1
    ctx.args.end()
    mine = await buying.my_orders(ctx.shop, ctx.caller, status, page)
    return Reply(
        render.order_list(
            mine.rows,
            mine.total,
            mine.page,
            zone,
            title="你的订单",
            hint="发 /订单 <订单号> 查看详情",
        )
    )


# How customers name a payment method; the gateway's own names work too.
_PAY_TYPE_WORDS = {
    "支付宝": PayType.ALIPAY,
    "微信": PayType.WXPAY,
    "qq": PayType.QQPAY,
    "alipay": PayType.ALIPAY,
    "wxpay": PayType.WXPAY,
    "qqpay": PayType.QQPAY,
}


def _read_pay_type(args: ArgReader) -> PayType | None:
    word = args.optional_word()
    if word is None:
        return None
    pay_type = _PAY_TYPE_WORDS.get(normalise_word(word).lower())
    if pay_type is None:
        raise UsageError(
            f"付款方式应是 支付宝、微信、QQ 之一，而不是{quote(normalise_word(word))}。"
        )
    return pay_type


@command(
    "付款",
    aliases=("pay",),
    usage="付款 <订单号> [支付宝|微信|QQ]",
    example="付款 2K7QH9M3XA",
    summary="付款金额和方式",
    area=AREA,
)
async def pay(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    pay_type = _read_pay_type(ctx.args)
    ctx.args.end()
    how = await buying.pay_order(ctx.shop, ctx.caller, code, pay_type)
    if isinstance(how, PaymentLink):
        return Reply(render.payment_link(how, ctx.shop.settings.timezone), image=how.qr_png)
    if not how.payable:
        return Reply(render.not_payable(how.order))
    return Reply(render.payment_instructions(how.order, how.text), image=how.qr_image)


_AMEND_FIELDS = {
    "地址": "address",
    "数量": "quantity",
    "备注": "remark",
    "address": "address",
    "quantity": "quantity",
    "remark": "remark",
}


def _read_amendment(args: ArgReader) -> buying.Amendment:
    field = args.choice("修改项", _AMEND_FIELDS)
    if field == "address":
        number = args.number("地址序号")
        args.end()
        return buying.NewAddress(number)
    if field == "quantity":
        ref = args.variant_ref()
        quantity = args.quantity(allow_zero=True)
        args.end()
        return buying.NewQuantity(ref, quantity)
    return buying.NewRemark(args.rest("备注"))


@command(
    "修改",
    aliases=("amend",),
    usage="修改 <订单号> <地址 <序号>|数量 <规格编号> <数量>|备注 <文字>>",
    example="修改 2K7QH9M3XA 数量 1-2 1",
    summary="改地址、数量（仅待付款）、备注；已付款的改动需店家审核",
    area=AREA,
)
async def amend(ctx: CommandContext) -> Reply:
    code = ctx.args.order_code()
    change = _read_amendment(ctx.args)
    amended = await buying.amend_order(ctx.shop, ctx.caller, code, change)
    if isinstance(change, buying.NewQuantity):
        assert amended.line is not None and amended.old_quantity is not None
        return Reply(
            render.quantity_changed(
                amended.order, amended.line, amended.old_quantity, change.quantity
            )
        )
    what = "修改地址" if isinstance(change, buying.NewAddress) else "修改备注"
    return Reply(render.amended(amended.order, what, amended.mode))


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
    outcome = await buying.cancel_order(ctx.shop, ctx.caller, code, reason)
    return Reply(render.cancelled(outcome.order, outcome.mode))


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
    reviewed = await buying.review_order(ctx.shop, ctx.caller, code, rating, text)
    return Reply(render.reviewed(reviewed.order, reviewed.review.rating))


@command(
    "提货",
    aliases=("keys",),
    usage="提货 <订单号> [页码]",
    example="提货 2K7QH9M3XA",
    summary="再次查看已付款虚拟商品的卡密（仅私聊）",
    area=AREA,
)
async def order_keys(ctx: CommandContext) -> Reply:
    if ctx.in_group:
        # Before anything is read: a group learns nothing, not even whether it exists.
        raise KeysPrivateOnly()
    code = ctx.args.order_code()
    page = ctx.args.page() if ctx.args.has_more() else 1
    ctx.args.end()
    keys = await card_keys.reveal_keys(ctx.shop, ctx.caller, code, page)
    return Reply(render.order_keys(keys))


# Last, after every @command above has registered: NoneBot reads it once the module ran.
__plugin_meta__ = plugin_metadata(
    __name__,
    name="购物车与下单",
    description="加购、结算、下单确认、收货地址、订单查询、付款、修改、取消与评价",
)
