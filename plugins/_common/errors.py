"""Chinese text for every domain error: the one place where services' typed errors
become what a user reads. Each says what was wrong and what to do instead."""

from __future__ import annotations

from nonebot import logger

from services import aftersales, epay, limits, reports, reviews, safeguards, tracking
from services import errors as e
from services.catalog import line_name
from services.limits import quote
from services.money import format_fen
from services.order_rules import REQUEST_NAMES

_FIELD_NAMES = {
    limits.FIELD_ITEM_NAME: "商品名称",
    limits.FIELD_VARIANT_NAME: "规格名",
    limits.FIELD_CATEGORY: "分类名",
    limits.FIELD_DESCRIPTION: "描述",
    limits.FIELD_ANNOUNCEMENT: "公告",
    limits.FIELD_PRICE: "价格",
    limits.FIELD_STOCK: "库存",
    limits.FIELD_SEARCH: "搜索关键词",
    limits.FIELD_PAGE: "页码",
    limits.FIELD_QQ: "QQ号",
    limits.FIELD_QUANTITY: "数量",
    limits.FIELD_RECEIVER: "收货人姓名",
    limits.FIELD_PHONE: "手机号",
    limits.FIELD_ADDRESS: "详细地址",
    limits.FIELD_REMARK: "备注",
    limits.FIELD_REASON: "原因",
    limits.FIELD_AMOUNT: "金额",
    limits.FIELD_PAYMENT_TEXT: "收款说明",
    "tracking_text": "物流描述",
    "review": "评价内容",
    "ticket_text": "内容",
    "ticket_images": "一次附带的图片数",
    "rating": "评分",
}


def _invalid_value(error: e.InvalidValue) -> str:
    name = _FIELD_NAMES.get(error.field, error.field)
    if error.field == limits.FIELD_PRICE:
        if error.reason == "too_small":
            return "价格至少 0.01 元。"
        if error.reason == "too_large":
            return f"价格不能超过 {format_fen(limits.MAX_PRICE_FEN)}，请检查是否多打了数字。"
        return "价格应是以元为单位的数字，最多两位小数（如 59.9）。"
    if error.field == limits.FIELD_CATEGORY and error.reason == "unknown":
        return f"没有叫{quote(str(error.limit))}的分类，发 /分类 查看全部分类。"
    if error.field == limits.FIELD_CATEGORY and error.reason == "digits":
        return "分类名不能全是数字（/商品 后面的数字会被当成页码），例如写成“2024新品”。"
    if error.field == "tracking_text" and error.reason == "duplicate":
        return "这条物流刚刚已经记录过了。"
    if error.field == limits.FIELD_VARIANT_NAME and error.reason == "duplicate":
        return f"这个商品已有叫{quote(str(error.limit))}的规格，请换个名字。"
    if error.field == limits.FIELD_PHONE:
        return (
            "手机号格式不对，应是 11 位手机号（如 13800001111）或带区号的座机（如 0571-88888888）。"
        )
    if error.field == limits.FIELD_ADDRESS and error.reason == "too_short":
        return "详细地址太短了，请写到门牌号，如 浙江省杭州市西湖区文三路 1 号。"
    if error.field == limits.FIELD_AMOUNT and error.reason == "mismatch":
        return f"金额应与订单应付 {format_fen(int(error.limit or 0))} 一致。"
    if error.reason == "empty":
        return f"{name}不能为空。"
    if error.reason == "too_long":
        return f"{name}最多 {error.limit} 个字。"
    if error.reason == "too_small":
        return f"{name}不能小于 {error.limit}。"
    if error.reason == "too_large":
        return f"{name}不能超过 {error.limit}。"
    return f"{name}格式不对。"


_STATUS_HINTS = {
    "pending_payment": "订单还没付款",
    "paid": "订单已付款",
    "shipped": "订单已发货",
    "delivered": "订单已签收",
    "completed": "订单已完成",
    "cancelled": "订单已取消",
    "refunded": "订单已退款关闭",
}


def _invalid_transition(status: str, action: str) -> str:
    state = _STATUS_HINTS.get(status, "订单当前状态")
    if status in {"shipped", "delivered", "completed"} and action in {
        "address",
        "remark",
        "quantity",
        "cancel",
    }:
        return (
            f"{state}，不能再修改或取消。如有问题请发 /售后 <订单号> <退款|退货|换货|投诉> <原因>。"
        )
    if action == "quantity":
        return f"{state}，只有待付款的订单能改数量。"
    if action == "refund":
        return f"{state}，不能退款。"
    if action == "review":
        return f"{state}，确认收货、订单完成后才能评价（/确认收货 <订单号>）。"
    if action == "ship":
        return f"{state}，只有待发货的订单能发货。"
    if action == "track":
        return f"{state}，只有已发货、未签收的订单能更新物流。"
    if action in {"completed", "received"}:
        return f"{state}，还不能确认收货。"
    if action == "pay":
        return f"{state}，不能收款。"
    if action.startswith("approve_"):
        return f"{state}，这个申请已不能同意，请拒绝后走售后。"
    return f"{state}，不能这样操作。"


UNRENDERED = "操作没有成功，请检查后重试。"


def _pay_type_name(value: str) -> str:
    try:
        return epay.PAY_TYPE_NAMES[epay.PayType(value)]
    except ValueError:
        return value


def render_error(error: e.ShopError, *, staff: bool = False) -> str:
    """`staff`: the asker is staff or an owner, whose lists are /订单列表 and /工单列表."""
    match error:
        case e.ItemNotFound(item_id=item_id):
            return f"没有编号为 {item_id} 的在售商品。发 /商品 查看在售商品。"
        case e.VariantNotFound(item_id=item_id, position=position, variant_count=count):
            return (
                f"商品 {item_id} 没有第 {position} 个规格（共 {count} 个）。"
                f"发 /详情 {item_id} 查看规格编号。"
            )
        case e.VariantRequired(item_id=item_id, variant_count=count):
            return (
                f"商品 {item_id} 有 {count} 个规格，请写明规格编号，如 {item_id}-1。"
                f"发 /详情 {item_id} 查看。"
            )
        case e.InvalidValue():
            return _invalid_value(error)
        case e.DeleteBlocked(why=e.DeleteBlock.ORDERED, ref=ref, item_id=item_id, count=count):
            instead = (
                f"不想再卖请发 /下架 {item_id}"
                if ref == str(item_id)
                else f"不想再卖这个规格，可以把库存设为 0（/库存 {ref} 0），或下架整个商品（/下架 {item_id}）"
            )
            return f"{ref} 已出现在 {count} 个订单里，不能删除：订单要保留当时买的商品。{instead}。"
        case e.DeleteBlocked(why=e.DeleteBlock.IN_CHECKOUT, ref=ref, item_id=item_id, count=count):
            return (
                f"有 {count} 个顾客正在确认含有 {ref} 的订单，现在不能删除。"
                f"请等几分钟（确认超时后）再试；可以先 /下架 {item_id}，让人不能再下单。"
            )
        case e.DeleteBlocked(why=e.DeleteBlock.UNUSED_KEYS, ref=ref, item_id=item_id, count=count):
            return (
                f"{ref} 还有 {count} 个未售出的卡密，不能删除。请先清空：/卡密 清空 <规格编号>"
                f"（/详情 {item_id} 查看规格编号），再删除。"
            )
        case e.DeleteBlocked(why=e.DeleteBlock.LAST_VARIANT, ref=ref, item_id=item_id):
            return (
                f"{ref} 是商品 {item_id} 唯一的规格，不能单独删除。"
                f"要删除整个商品请发 /删除 {item_id}。"
            )
        case e.DeletionNotPending(why=e.DeletionLapse.EXPIRED, ref=ref):
            return f"删除 {ref} 的确认已超时，没有删除。要删除请重新发 /删除 {ref}。"
        case e.DeletionNotPending(why=e.DeletionLapse.CHANGED, ref=ref):
            return (
                f"{ref} 的规格在确认前有了变化，没有删除。请重新发 /删除 {ref} 查看要删除的内容。"
            )
        case e.DeletionNotPending():
            return "没有等待确认的删除。要删除商品或规格，请先发 /删除 <商品编号|规格编号>。"
        case e.StockTooLow(current=current, requested=requested):
            return f"库存只有 {current}，不能减少 {requested}。"
        case e.AlreadyStaff(user_id=user_id):
            return f"{user_id} 已经是店员了。"
        case e.NotStaff(user_id=user_id):
            return f"{user_id} 不是店员。发 /店员 查看店员列表。"
        case e.OwnerIsNotStaff(user_id=user_id):
            return f"{user_id} 是店主（SUPERUSERS），不需要添加为店员。"
        case e.TooManyVariants(limit=limit):
            return f"一个商品最多 {limit} 个规格。"
        case e.MediaUnavailable(reason=e.MediaProblem.TOO_LARGE):
            return "图片太大了（最大 10MB），请压缩后再发。"
        case e.MediaUnavailable(reason=e.MediaProblem.NOT_IMAGE):
            return "附件不是图片，请发送 JPG/PNG/GIF 图片。"
        case e.MediaUnavailable(reason=e.MediaProblem.DOWNLOAD):
            return "图片下载失败，请稍后重新发送一次。"
        case e.AddressNotFound(number=number, count=count):
            if count == 0:
                return "你还没有收货地址。私聊我发送：/地址 添加 <姓名> <手机号> <详细地址>"
            return f"没有第 {number} 个地址（共 {count} 个）。发 /地址 查看序号。"
        case e.TooManyAddresses(limit=limit):
            return f"最多保存 {limit} 个地址，请先 /地址 删除 <序号>。"
        case e.CartFull(limit=limit):
            return f"购物车最多 {limit} 种商品，请先 /结算 或 /移出 一些。"
        case e.CartEmpty():
            return "购物车里没有可以结算的商品。发 /商品 逛逛，/加购 <规格编号> 加入购物车。"
        case e.NotInCart(ref=ref):
            return f"购物车里没有 {ref}。发 /购物车 查看。"
        case e.ItemUnavailable(name=name):
            return f"“{name}”已下架，不能购买。"
        case e.OutOfStock(name=name, requested=requested, available=available):
            if available <= 0:
                return f"库存不足：“{name}”已售罄。"
            return f"库存不足：“{name}”只剩 {available} 件，不够 {requested} 件。可以少买一点。"
        case e.OrderNotFound(code=code) if staff:
            return f"没有找到订单 {code}。发 /订单列表 查看全部订单。"
        case e.OrderNotFound(code=code):
            return f"没有找到订单 {code}。发 /订单 查看你的订单。"
        case e.InvalidTransition(status=status, action=action):
            return _invalid_transition(status, action)
        case e.LineNotInOrder(ref=ref):
            return f"这个订单里没有 {ref}。发 /订单 <订单号> 查看订单里的规格编号。"
        case e.LastLine(code=code):
            return f"订单至少要保留一种商品。不想要了请发 /取消 {code}。"
        case e.RequestPending(kind=kind):
            return f"已有一个{REQUEST_NAMES.get(kind, '')}申请在等店家审核，请耐心等待。"
        case e.NoPendingRequest(code=code):
            return f"订单 {code} 没有待审核的申请。"
        case e.NoPendingRequestOfKind(code=code, kind=kind, pending=()):
            return f"订单 {code} 没有待审核的{REQUEST_NAMES[kind]}申请，也没有别的待审核申请。"
        case e.NoPendingRequestOfKind(code=code, kind=kind, pending=pending):
            names = "、".join(REQUEST_NAMES[other] for other in pending)
            return (
                f"订单 {code} 没有待审核的{REQUEST_NAMES[kind]}申请，待审核的是：{names}。"
                f"请发 /审核 {code} <同意|拒绝> [地址|备注|取消] [原因]。"
            )
        case e.RefundTooLarge(refundable=0):
            return (
                "这个订单已经全额退款，没有可退的金额了。售后工单请用 /拒绝 <工单号> <原因> 说明。"
            )
        case e.RefundTooLarge(requested=requested, refundable=refundable):
            return f"退款金额 {format_fen(requested)} 超过可退金额 {format_fen(refundable)}。"
        case e.LatePaymentStockGone(code=code, name=name, available=available):
            return (
                f"订单号：{code} 已超时取消，“{name}”现在只剩 {available} 件，无法恢复订单。"
                f"请把货款退给顾客，或先补库存（/库存）再 /收款 {code}。"
            )
        case e.AlreadyPaid(code=code):
            return f"订单号：{code} 已经收过款了，无需重复操作。"
        case e.NoAddress():
            return "你还没有收货地址。为保护隐私，请先私聊我添加：/地址 添加 <姓名> <手机号> <详细地址>"
        case e.PriceChanged(shown_fen=shown, current_fen=current):
            return f"商品价格刚刚有变动（{format_fen(shown)} → {format_fen(current)}），订单没有提交。请重新 /下单 或 /结算 确认新价格。"
        case tracking.UnknownCarrier(text=text, known=known):
            return f"不认识快递公司{quote(text)}。可用：{'、'.join(known)}。"
        case tracking.InvalidTrackingNumber(text=text):
            return f"运单号应是 6 到 30 位字母或数字，而不是{quote(text)}。"
        case reviews.AlreadyReviewed(code=code):
            return f"订单号：{code} 已经评价过了，每单只能评价一次。"
        case e.TicketNotFound(code=code) if staff:
            return f"没有找到工单 {code}。发 /工单列表 查看全部工单。"
        case e.TicketNotFound(code=code):
            return f"没有找到工单 {code}。发 /售后 查看你的工单。"
        case e.TicketNotAllowed(why=e.TicketRefusal.ORDER_STATUS):
            return "这个订单还没付款或已关闭，不能申请售后。"
        case e.TicketNotAllowed(why=e.TicketRefusal.WINDOW, days=days):
            return f"订单完成已超过 {days} 天，超出售后期限。如有问题请联系店主。"
        case e.TicketNotAllowed(why=e.TicketRefusal.NO_REASON):
            return "订单里有不支持七天无理由的商品，不能申请无理由退款/退货；质量问题请选“换货”或“投诉”。"
        case e.TicketNotAllowed(why=e.TicketRefusal.VIRTUAL):
            return "虚拟商品（卡密）不支持退货/换货，如有问题请选 退款 或 投诉。"
        case e.TicketNotAllowed(why=e.TicketRefusal.DUPLICATE, kind=kind):
            name = aftersales.KIND_NAMES[aftersales.TicketKind(kind)]
            return f"这个订单已有一个处理中的{name}工单，发 /售后 查看。"
        case e.RestockRefused(why=e.RestockRefusal.NOT_RETURN, code=code):
            return f"工单 {code} 不是退货工单，没有寄回的商品可以入库。完成请发 /完成 {code}。"
        case e.RestockRefused(why=e.RestockRefusal.VIRTUAL, code=code):
            return (
                f"工单 {code} 的订单是卡密商品，发出的卡密不能放回库存（需要时用 /卡密 导入新卡密）。"
                f"完成请发 /完成 {code}。"
            )
        case e.RestockRefused(why=e.RestockRefusal.NOT_SHIPPED, code=code):
            return (
                f"工单 {code} 的订单没有发过货，商品一直在店里（全额退款时库存已自动退回），"
                f"不用入库。完成请发 /完成 {code}。"
            )
        case e.RestockRefused(why=e.RestockRefusal.ALREADY, code=code):
            return (
                f"工单 {code} 的订单商品已经入库过了，不能重复入库。"
                f"工单还没完成的话，请发 /完成 {code}。"
            )
        case e.InvalidTicketTransition(status=status, action=action):
            state = aftersales.STATUS_NAMES[aftersales.TicketStatus(status)]
            if action == "approve_with_amount":
                return "换货和投诉不涉及退款金额，直接 /同意 <工单号>。"
            if action == "message":
                return f"这个工单已结束（{state}），不能再留言。还有问题请重新申请：/售后 <订单号> <类型> <原因>。"
            return f"工单当前{state}，不能这样操作。"
        case e.PaymentGatewayError(reason=reason) if reason:
            return f"支付平台拒绝了这笔付款：{reason}。请稍后再试，或联系店家。"
        case e.PaymentGatewayError():
            return "暂时连不上支付平台，请稍后再试。"
        case e.PayTypeNotOffered(offered=offered):
            names = "、".join(_pay_type_name(value) for value in offered)
            return f"本店不支持这种付款方式，可用：{names}。"
        case e.DraftExpired():
            return "订单确认已超时或已提交，请重新发 /下单 或 /结算。"
        case e.VirtualSwitchBlocked(why=e.VirtualSwitchBlock.PHYSICAL_STOCK, item_id=item_id):
            return (
                f"商品 {item_id} 还有 {error.count} 件实物库存，不能改成虚拟商品。"
                f"请先用 /库存 <规格编号> 0 把每个规格的库存设为 0（/详情 {item_id} 查看规格）。"
            )
        case e.VirtualSwitchBlocked(why=e.VirtualSwitchBlock.UNUSED_KEYS, item_id=item_id):
            return (
                f"商品 {item_id} 还有 {error.count} 个未售出的卡密，不能改回实物商品。"
                "请先用 /卡密 清空 <规格编号> 清空每个规格的卡密。"
            )
        case e.VirtualSwitchBlocked(why=e.VirtualSwitchBlock.OPEN_ORDERS, item_id=item_id):
            codes = "、".join(error.orders)
            more = "等" if error.count > len(error.orders) else ""
            return (
                f"商品 {item_id} 有 {error.count} 个未完成的订单（待付款或待发货：{codes}{more}），"
                "现在切换会改变这些订单的含义。请先处理完（收款后发货，或取消/退款）再切换。"
            )
        case e.NotVirtual(item_id=item_id):
            return f"商品 {item_id} 不是虚拟商品，没有卡密。要按卡密销售，先发 /虚拟 {item_id} 开。"
        case e.KeyStockOnly(ref=ref):
            return (
                f"{ref} 是虚拟商品，库存就是未售出的卡密数，不能直接改。"
                f"补货：私聊发 /卡密 导入 {ref}，换行后每行一个卡密；清空：/卡密 清空 {ref}。"
            )
        case e.MixedVirtualOrder():
            return "虚拟商品（卡密）要和实物商品分开下单：请用 /下单 <规格编号> 单独购买虚拟商品，或先把它 /移出 购物车。"
        case e.NotForVirtualOrder(code=code, action=e.VirtualOrderAction.SHIP):
            return f"订单号：{code} 是虚拟商品订单，卡密在付款时已自动私聊发给顾客，无需发货。"
        case e.NotForVirtualOrder(code=code, action=e.VirtualOrderAction.ADDRESS):
            return f"订单号：{code} 是虚拟商品订单，不需要收货地址：卡密付款后会私聊发给你。"
        case e.KeysPrivateOnly():
            return "卡密只在私聊里处理，群里不显示。请加我为好友后私聊发送这条命令。"
        case e.CardKeysRejected(problem=e.CardKeysProblem.EMPTY):
            return "没有读到卡密：请在命令后换行，每行写一个卡密（同一条消息里）。"
        case e.CardKeysRejected(problem=e.CardKeysProblem.TOO_MANY, limit=limit):
            return f"一次最多导入 {limit} 个卡密，请分几条消息导入。本次没有导入任何卡密。"
        case e.CardKeysRejected(problem=e.CardKeysProblem.TOO_LONG, limit=limit, line=line):
            return f"第 {line} 个卡密超过 {limit} 个字，请检查是否少了换行。本次没有导入任何卡密。"
        case e.NoCardKeys(code=code):
            return (
                f"订单号：{code} 没有卡密：订单还没付款，或买的不是虚拟商品。发 /订单 {code} 查看。"
            )
        case e.CardKeysShort(code=code, name=name, missing=missing):
            return (
                f"订单号：{code} 的“{name}”卡密不够（还差 {missing} 个），这次收款没有记录。"
                "请先导入卡密（/卡密 导入）再收款。"
            )
        case e.CardKeysUnreadable():
            return "卡密暂时无法读取（密钥设置有误），请联系店主检查 CARD_KEY_SECRET。"
        case safeguards.Banned():
            return "你已被本店限制下单、付款和售后，如有疑问请联系店主。"
        case safeguards.CannotBan(user_id=user_id, why=safeguards.Unbannable.OWNER):
            return f"{user_id} 是店主，不能拉黑。"
        case safeguards.CannotBan(user_id=user_id, why=safeguards.Unbannable.STAFF):
            return f"{user_id} 是店员，不能拉黑；确需拉黑请先 /店员 删除 {user_id}。"
        case safeguards.AlreadyBanned(user_id=user_id):
            return f"{user_id} 已在黑名单中。发 /黑名单 查看。"
        case safeguards.NotBanned(user_id=user_id):
            return f"{user_id} 不在黑名单中。发 /黑名单 查看。"
        case safeguards.TooManyUnpaidOrders(limit=limit, codes=codes):
            shown = "、".join(codes[:3]) + (" 等" if len(codes) > 3 else "")
            return (
                f"你已有 {len(codes)} 个未付款订单（{shown}），每人最多 {limit} 个。"
                "请先付款（/付款 <订单号>）或取消（/取消 <订单号>）后再下单。"
            )
        case safeguards.PurchaseLimitReached(
            item_name=item_name, variant_name=variant_name, limit=limit, bought=bought
        ):
            name = line_name(item_name, variant_name)
            left = limit - bought
            more = f"这次最多还能买 {left} 件。" if left > 0 else "不能再买了。"
            return f"“{name}”每人限购 {limit} 件，你的订单里已有 {bought} 件，{more}"
        case reports.ExportPrivateOnly():
            return "导出文件包含所有顾客的订单，请私聊我发送 /导出。"
    # Unreachable while tests/plugins/test_error_rendering.py passes: it renders every
    # ShopError subclass and every value of their kinds. Loud, never silent.
    logger.error(f"no rendering for {error!r}; add a case to plugins/_common/errors.py")
    return UNRENDERED


def shows_usage(error: e.ShopError) -> bool:
    """Input errors are followed by the command's usage line; state errors are not."""
    return isinstance(
        error, e.InvalidValue | tracking.UnknownCarrier | tracking.InvalidTrackingNumber
    )
