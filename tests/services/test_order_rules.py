"""services.order_rules: the order state machine, as a table."""

from __future__ import annotations

import itertools

import pytest

from models.tables import OrderStatus
from services import order_rules
from services.errors import InvalidTransition
from services.order_rules import REFUNDABLE, STATUS_BY_NAME, STATUS_NAMES, Change, Mode

S = OrderStatus

ALLOWED: set[tuple[OrderStatus, OrderStatus]] = {
    (S.PENDING_PAYMENT, S.PAID),
    (S.PENDING_PAYMENT, S.CANCELLED),
    (S.PAID, S.SHIPPED),
    (S.PAID, S.REFUNDED),
    (S.SHIPPED, S.DELIVERED),
    (S.SHIPPED, S.COMPLETED),
    (S.SHIPPED, S.REFUNDED),
    (S.DELIVERED, S.COMPLETED),
    (S.DELIVERED, S.REFUNDED),
    (S.COMPLETED, S.REFUNDED),
}

ALL_PAIRS = list(itertools.product(list(S), list(S)))


@pytest.mark.parametrize(("status", "target"), sorted(ALLOWED))
def test_allowed_transitions_pass(status: OrderStatus, target: OrderStatus) -> None:
    order_rules.check_transition(status.value, target, "act")


@pytest.mark.parametrize(("status", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_every_other_transition_is_refused(status: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidTransition) as caught:
        order_rules.check_transition(status.value, target, "some_action")
    assert caught.value.status == status.value
    assert caught.value.action == "some_action"


def test_transition_table_covers_every_status_and_matches_expectation() -> None:
    assert set(order_rules.TRANSITIONS) == set(S)
    table = {(s, t) for s, targets in order_rules.TRANSITIONS.items() for t in targets}
    assert table == ALLOWED


def test_no_status_goes_back_to_unpaid_and_closed_ones_are_final() -> None:
    for status in S:
        with pytest.raises(InvalidTransition):
            order_rules.check_transition(status.value, S.PENDING_PAYMENT, "reopen")
    assert order_rules.TRANSITIONS[S.CANCELLED] == frozenset()
    assert order_rules.TRANSITIONS[S.REFUNDED] == frozenset()


EXPECTED_MODES: dict[tuple[OrderStatus, Change], Mode] = {
    (S.PENDING_PAYMENT, Change.ADDRESS): Mode.DIRECT,
    (S.PENDING_PAYMENT, Change.REMARK): Mode.DIRECT,
    (S.PENDING_PAYMENT, Change.QUANTITY): Mode.DIRECT,
    (S.PENDING_PAYMENT, Change.CANCEL): Mode.DIRECT,
    (S.PAID, Change.ADDRESS): Mode.REQUEST,
    (S.PAID, Change.REMARK): Mode.REQUEST,
    (S.PAID, Change.CANCEL): Mode.REQUEST,
}


@pytest.mark.parametrize(("status", "change"), list(itertools.product(list(S), list(Change))))
def test_change_mode_for_every_status_and_change(status: OrderStatus, change: Change) -> None:
    expected = EXPECTED_MODES.get((status, change))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            order_rules.change_mode(status.value, change)
        assert caught.value.status == status.value
        assert caught.value.action == change.value
    else:
        assert order_rules.change_mode(status.value, change) is expected


def test_paid_quantity_and_shipped_anything_are_refused() -> None:
    with pytest.raises(InvalidTransition):
        order_rules.change_mode("paid", Change.QUANTITY)
    for change in Change:
        with pytest.raises(InvalidTransition):
            order_rules.change_mode("shipped", change)


def test_unknown_status_string_is_a_value_error_not_a_silent_pass() -> None:
    with pytest.raises(ValueError):
        order_rules.check_transition("lost", S.PAID, "pay")
    with pytest.raises(ValueError):
        order_rules.change_mode("lost", Change.CANCEL)


def test_status_names_are_exactly_the_chinese_ones() -> None:
    assert [STATUS_NAMES[s] for s in S] == [
        "待付款",
        "待发货",
        "已发货",
        "已签收",
        "已完成",
        "已取消",
        "已退款",
    ]
    assert STATUS_NAMES == {
        S.PENDING_PAYMENT: "待付款",
        S.PAID: "待发货",
        S.SHIPPED: "已发货",
        S.DELIVERED: "已签收",
        S.COMPLETED: "已完成",
        S.CANCELLED: "已取消",
        S.REFUNDED: "已退款",
    }
    for status in S:
        assert order_rules.status_name(status.value) == STATUS_NAMES[status]
        assert STATUS_BY_NAME[STATUS_NAMES[status]] is status


def test_refundable_statuses() -> None:
    assert frozenset({S.PAID, S.SHIPPED, S.DELIVERED, S.COMPLETED}) == REFUNDABLE
    # Everything refundable may move to refunded.
    for status in REFUNDABLE:
        order_rules.check_transition(status.value, S.REFUNDED, "refund")
