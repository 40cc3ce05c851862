"""Money is integer fen everywhere; yuan exist only in what users type and read."""

from __future__ import annotations

import re

from .errors import InvalidValue
from .limits import FIELD_PRICE, check_price

_YUAN = re.compile(r"^([0-9]{1,9})(?:\.([0-9]{1,2}))?$")


def parse_yuan(text: str) -> int:
    """`59`, `59.9`, `59.90` (an optional leading ¥ or trailing 元) -> fen, within bounds."""
    cleaned = text.strip().removeprefix("¥").removeprefix("￥").removesuffix("元")
    match = _YUAN.match(cleaned)
    if match is None:
        raise InvalidValue(FIELD_PRICE, "format")
    whole, cents = match.groups()
    fen = int(whole) * 100 + int((cents or "0").ljust(2, "0"))
    return check_price(fen)


def format_fen(fen: int) -> str:
    """12345 -> ¥123.45; whole yuan keep two decimals so columns line up."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"
