"""The reply texts of /审核: which of the customer's requests were decided and what that
changed, what became moot, and what is still waiting."""

from __future__ import annotations

from models.tables import OrderRequest, RequestKind
from plugins._common.views import address_text, shown_in
from services.money import format_fen
from services.order_rules import REQUEST_NAMES
from services.usecases.order_admin import RequestsDecided

# The word staff type after 同意/拒绝 to decide one kind of request (/审核 X 同意 地址).
# Only these exact words are a kind there; anything else begins the reason.
KIND_WORDS: dict[RequestKind, str] = {
    RequestKind.ADDRESS: "地址",
    RequestKind.REMARK: "备注",
    RequestKind.CANCEL: "取消",
}


def _names(requests: list[OrderRequest]) -> str:
    return "、".join(REQUEST_NAMES[r.kind] for r in requests)


def _outcome(decided: RequestsDecided, request: OrderRequest, *, in_group: bool) -> str:
    """What deciding one request did to the order. Approved requests show the order as it
    is now (a group sees the new address masked, as everywhere in groups)."""
    order = decided.order
    name = REQUEST_NAMES[request.kind]
    if not decided.approved:
        return f"· {name}：未同意，订单不变"
    kind = RequestKind(request.kind)
    if kind is RequestKind.ADDRESS:
        where = address_text(
            order.receiver_name, order.receiver_phone, order.receiver_address, in_group=in_group
        )
        return f"· {name}：收货信息已改为 {where}"
    if kind is RequestKind.REMARK:
        if not order.remark:
            return f"· {name}：备注已清空"
        return f"· {name}：备注已改为“{shown_in(order.remark, in_group=in_group)}”"
    return f"· {name}：已全额退款 {format_fen(order.refunded_fen)}，库存已退回"


def requests_decided(decided: RequestsDecided, *, in_group: bool) -> str:
    code = decided.order.code
    verdict = "同意" if decided.approved else "拒绝"
    lines = [f"订单号：{code} 已{verdict} {len(decided.requests)} 个申请，已通知顾客："]
    lines += [_outcome(decided, r, in_group=in_group) for r in decided.requests]
    if decided.reason:
        lines.append(f"说明：{shown_in(decided.reason, in_group=in_group)}")
    if decided.superseded:
        lines.append(f"订单已全额退款，其余申请随之作废：{_names(decided.superseded)}。")
    if decided.still_pending:
        waiting = "、".join(
            f"{REQUEST_NAMES[r.kind]}（/审核 {code} <同意|拒绝> {KIND_WORDS[RequestKind(r.kind)]}）"
            for r in decided.still_pending
        )
        lines.append(f"还在等待审核：{waiting}")
    return "\n".join(lines)
