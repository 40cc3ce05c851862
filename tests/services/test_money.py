"""services.money: what users type in yuan -> integer fen, and back."""

from __future__ import annotations

import pytest

from services.errors import InvalidValue
from services.limits import FIELD_PRICE, MAX_PRICE_FEN, MIN_PRICE_FEN
from services.money import format_fen, parse_yuan


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("59", 5900),
        ("59.9", 5990),
        ("59.90", 5990),
        ("59.09", 5909),
        ("0.01", 1),
        ("0.1", 10),
        ("¥12", 1200),
        ("￥12", 1200),
        ("12元", 1200),
        ("¥12.5元", 1250),
        ("  7.25  ", 725),
        ("1000000", MAX_PRICE_FEN),
        ("999999.99", MAX_PRICE_FEN - 1),
    ],
)
def test_parse_yuan_accepts(text: str, fen: int) -> None:
    result = parse_yuan(text)
    assert result == fen
    assert type(result) is int


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "too_small"),
        ("0.00", "too_small"),
        ("-1", "format"),
        ("1.234", "format"),
        ("abc", "format"),
        ("1e3", "format"),
        ("", "format"),
        ("   ", "format"),
        ("¥", "format"),
        ("59.", "format"),
        (".5", "format"),
        ("1,000", "format"),
        ("12元元", "format"),
        ("1000000.01", "too_large"),
        ("1000001", "too_large"),
        ("999999999", "too_large"),
    ],
)
def test_parse_yuan_rejects(text: str, reason: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_yuan(text)
    assert caught.value.field == FIELD_PRICE
    assert caught.value.reason == reason


def test_parse_yuan_bound_errors_carry_the_limit() -> None:
    with pytest.raises(InvalidValue) as small:
        parse_yuan("0")
    assert small.value.limit == MIN_PRICE_FEN
    with pytest.raises(InvalidValue) as large:
        parse_yuan("2000000")
    assert large.value.limit == MAX_PRICE_FEN


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (5990, "¥59.90"),
        (5, "¥0.05"),
        (0, "¥0.00"),
        (100, "¥1.00"),
        (12345, "¥123.45"),
        (-5, "-¥0.05"),
        (-12345, "-¥123.45"),
        (MAX_PRICE_FEN, "¥1000000.00"),
    ],
)
def test_format_fen(fen: int, text: str) -> None:
    assert format_fen(fen) == text


@pytest.mark.parametrize("fen", [1, 9, 10, 99, 5990, 123456, MAX_PRICE_FEN])
def test_format_then_parse_round_trips(fen: int) -> None:
    assert parse_yuan(format_fen(fen)) == fen
