"""The order state machine: the one place that says what may happen in which status."""

from __future__ import annotations

from enum import StrEnum

from models.tables import OrderStatus

from .errors import InvalidTransition

S = OrderStatus

# Every status change the shop knows. Anything else is refused.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.COMPLETED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.COMPLETED, S.REFUNDED}),
    S.COMPLETED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

STATUS_NAMES: dict[OrderStatus, str] = {
    S.PENDING_PAYMENT: "待付款",
    S.PAID: "待发货",
    S.SHIPPED: "已发货",
    S.DELIVERED: "已签收",
    S.COMPLETED: "已完成",
    S.CANCELLED: "已取消",
    S.REFUNDED: "已退款",
}
STATUS_BY_NAME: dict[str, OrderStatus] = {name: status for status, name in STATUS_NAMES.items()}

# What a customer's change/cancel request asks for (RequestKind values), as people read it.
REQUEST_NAMES: dict[str, str] = {"address": "修改地址", "remark": "修改备注", "cancel": "取消订单"}

# Refunds are possible once money came in and as long as the order is not closed.
REFUNDABLE = frozenset({S.PAID, S.SHIPPED, S.DELIVERED, S.COMPLETED})


class Change(StrEnum):
    """What a customer may ask to change."""

    ADDRESS = "address"
    REMARK = "remark"
    QUANTITY = "quantity"
    CANCEL = "cancel"


class Mode(StrEnum):
    DIRECT = "direct"  # applied at once
    REQUEST = "request"  # staff decide with /审核


# Unpaid orders are the customer's to change; paid ones need the shop's agreement
# (the parcel may already be packed); shipped ones go through after-sales.
_CHANGE_MODES: dict[tuple[OrderStatus, Change], Mode] = {
    (S.PENDING_PAYMENT, Change.ADDRESS): Mode.DIRECT,
    (S.PENDING_PAYMENT, Change.REMARK): Mode.DIRECT,
    (S.PENDING_PAYMENT, Change.QUANTITY): Mode.DIRECT,
    (S.PENDING_PAYMENT, Change.CANCEL): Mode.DIRECT,
    (S.PAID, Change.ADDRESS): Mode.REQUEST,
    (S.PAID, Change.REMARK): Mode.REQUEST,
    (S.PAID, Change.CANCEL): Mode.REQUEST,
}


def change_mode(status: str, change: Change) -> Mode:
    mode = _CHANGE_MODES.get((OrderStatus(status), change))
    if mode is None:
        raise InvalidTransition(status, change.value)
    return mode


# Transitions open to one action only. A payment that reaches the shop after the unpaid
# order expired ("paid_late": the customer transferred at minute 31) brings the order
# back, provided its stock can be reserved again; nothing else reopens a closed order.
GUARDED_TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], str] = {
    (S.CANCELLED, S.PAID): "paid_late",
    # A virtual order is complete once its card keys are handed out with the payment
    # (services/card_keys.deliver): nothing is shipped.
    (S.PAID, S.COMPLETED): "keys_delivered",
}
# The cancellation that a late payment may undo: expiry, not the customer's own cancel.
REVIVABLE_CANCELLATION = "expired"


def check_transition(status: str, target: OrderStatus, action: str) -> None:
    source = OrderStatus(status)
    if target in TRANSITIONS[source] or GUARDED_TRANSITIONS.get((source, target)) == action:
        return
    raise InvalidTransition(status, action)


def status_name(status: str) -> str:
    return STATUS_NAMES[OrderStatus(status)]
