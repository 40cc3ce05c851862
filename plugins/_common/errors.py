"""Chinese text for every domain error: the one place where services' typed errors
become what a user reads. Each says what was wrong and what to do instead."""

from __future__ import annotations

from services import errors as e
from services import limits
from services.money import format_fen

_FIELD_NAMES = {
    limits.FIELD_ITEM_NAME: "商品名称",
    limits.FIELD_VARIANT_NAME: "规格名",
    limits.FIELD_CATEGORY: "分类名",
    limits.FIELD_DESCRIPTION: "描述",
    limits.FIELD_PRICE: "价格",
    limits.FIELD_STOCK: "库存",
    limits.FIELD_SEARCH: "搜索关键词",
    limits.FIELD_PAGE: "页码",
    limits.FIELD_QQ: "QQ号",
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
        return f"没有叫“{error.limit}”的分类，发 /分类 查看全部分类。"
    if error.field == limits.FIELD_CATEGORY and error.reason == "digits":
        return "分类名不能全是数字（/商品 后面的数字会被当成页码），例如写成“2024新品”。"
    if error.field == limits.FIELD_VARIANT_NAME and error.reason == "duplicate":
        return f"这个商品已有叫“{error.limit}”的规格，请换个名字。"
    if error.reason == "empty":
        return f"{name}不能为空。"
    if error.reason == "too_long":
        return f"{name}最多 {error.limit} 个字。"
    if error.reason == "too_small":
        return f"{name}不能小于 {error.limit}。"
    if error.reason == "too_large":
        return f"{name}不能超过 {error.limit}。"
    return f"{name}格式不对。"


def render_error(error: e.ShopError) -> str:
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
        case e.MediaUnavailable(reason="too_large"):
            return "图片太大了（最大 10MB），请压缩后再发。"
        case e.MediaUnavailable(reason="not_image"):
            return "附件不是图片，请发送 JPG/PNG/GIF 图片。"
        case e.MediaUnavailable():
            return "图片下载失败，请稍后重新发送一次。"
    return "操作没有成功，请检查后重试。"


def shows_usage(error: e.ShopError) -> bool:
    """Input errors are followed by the command's usage line; state errors are not."""
    return isinstance(error, e.InvalidValue)
