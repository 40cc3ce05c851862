"""Argument parsing and validation, in one place for every command.

Words are separated by white space; the last free-text argument takes the rest of the
line. Identifier words are NFKC-normalised so `１２－２` typed with a Chinese IME works.
Every failure raises `UsageError` with a Chinese reason; the router appends the
command's usage and example.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import TypeVar

from services.catalog import StockChange, VariantRef
from services.codes import looks_like_code
from services.errors import InvalidValue
from services.limits import MAX_PAGE, MAX_QQ, MAX_QUANTITY, MAX_STOCK, check_stock
from services.money import parse_yuan

T = TypeVar("T")

_VARIANT_REF = re.compile(r"^(\d{1,9})(?:-(\d{1,3}))?$")
_INT = re.compile(r"^\d{1,12}$")
_MONEY_CHARS = re.compile(r"^[¥￥]?[0-9.]+元?$")
_ID = re.compile(r"^\d{1,9}$")  # ids are 32-bit columns (PostgreSQL rejects larger values)


class UsageError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_word(word: str) -> str:
    return unicodedata.normalize("NFKC", word).strip()


class ArgReader:
    def __init__(self, text: str) -> None:
        self._rest = text.strip()

    @property
    def remaining(self) -> str:
        return self._rest

    def has_more(self) -> bool:
        return bool(self._rest)

    def _take(self) -> str | None:
        if not self._rest:
            return None
        parts = self._rest.split(maxsplit=1)
        self._rest = parts[1] if len(parts) > 1 else ""
        return parts[0]

    def peek(self) -> str | None:
        return self._rest.split(maxsplit=1)[0] if self._rest else None

    def word(self, what: str) -> str:
        word = self._take()
        if word is None:
            raise UsageError(f"缺少{what}。")
        return word

    def optional_word(self) -> str | None:
        return self._take()

    def rest(self, what: str, *, required: bool = True) -> str:
        text, self._rest = self._rest, ""
        if required and not text:
            raise UsageError(f"缺少{what}。")
        return text

    def end(self) -> None:
        if self._rest:
            extra = self._rest if len(self._rest) <= 20 else self._rest[:20] + "…"
            raise UsageError(f"多余的内容：{extra}")

    # --- typed words --------------------------------------------------------------

    def item_id(self) -> int:
        word = normalise_word(self.word("商品编号"))
        if not _ID.match(word) or int(word) == 0:
            raise UsageError(f"商品编号应是 1 到 9 位数字（如 12），而不是“{word}”。")
        return int(word)

    def variant_ref(self) -> VariantRef:
        word = normalise_word(self.word("规格编号"))
        match = _VARIANT_REF.match(word)
        if match is None or int(match.group(1)) == 0 or match.group(2) in {"0", "00", "000"}:
            raise UsageError(f"规格编号应像 12 或 12-2（商品编号-第几个规格），而不是“{word}”。")
        position = int(match.group(2)) if match.group(2) else None
        return VariantRef(int(match.group(1)), position)

    def price(self) -> int:
        word = normalise_word(self.word("价格"))
        try:
            return parse_yuan(word)
        except InvalidValue as error:
            if error.reason == "format":
                raise UsageError(
                    f"价格应是以元为单位的数字，最多两位小数（如 59.9），而不是“{word}”。"
                ) from None
            raise

    def stock(self) -> int:
        word = normalise_word(self.word("库存"))
        if not _INT.match(word):
            raise UsageError(f"库存应是 0 到 {MAX_STOCK} 的整数，而不是“{word}”。")
        return check_stock(int(word))

    def stock_change(self) -> StockChange:
        word = normalise_word(self.word("库存变化"))
        mode = "add" if word.startswith("+") else "sub" if word.startswith("-") else "set"
        digits = word[1:] if mode != "set" else word
        if not _INT.match(digits):
            raise UsageError(f"库存应写成 +N（增加）、-N（减少）或 N（设为），而不是“{word}”。")
        return StockChange(mode, check_stock(int(digits)))  # type: ignore[arg-type]

    def page(self) -> int:
        word = normalise_word(self.word("页码"))
        if not _INT.match(word) or not 1 <= int(word) <= MAX_PAGE:
            raise UsageError(f"页码应是正整数，而不是“{word}”。")
        return int(word)

    def qq(self) -> int:
        word = normalise_word(self.word("QQ号")).removeprefix("@")
        if not _INT.match(word) or not 10_000 <= int(word) < MAX_QQ:
            raise UsageError(f"QQ号应是 5 到 12 位数字，而不是“{word}”。")
        return int(word)

    def quantity(self, *, allow_zero: bool = False) -> int:
        word = normalise_word(self.word("数量")).removesuffix("个").removesuffix("件")
        low = 0 if allow_zero else 1
        if not _INT.match(word) or not low <= int(word) <= MAX_QUANTITY:
            raise UsageError(f"数量应是 {low} 到 {MAX_QUANTITY} 的整数，而不是“{word}”。")
        return int(word)

    def optional_quantity(self) -> int | None:
        """A quantity if the next word looks like one (`3`, `3个`, `-1`); otherwise None
        and the word is left for the free text that follows (e.g. a remark)."""
        word = self.peek()
        if word is None or normalise_word(word)[:1] not in set("0123456789+-"):
            return None
        return self.quantity()

    def order_code(self, what: str = "订单号") -> str:
        word = normalise_word(self.word(what)).upper()
        if not looks_like_code(word):
            raise UsageError(
                f"{what}是 10 位字母和数字（下单回复里的“{what}：…”），而不是“{word}”。"
            )
        return word

    def number(self, what: str, limit: int = 99) -> int:
        word = normalise_word(self.word(what))
        if not _INT.match(word) or not 1 <= int(word) <= limit:
            raise UsageError(f"{what}应是 1 到 {limit} 的数字，而不是“{word}”。")
        return int(word)

    def amount(self) -> int:
        word = normalise_word(self.word("金额"))
        try:
            return parse_yuan(word)
        except InvalidValue as error:
            if error.reason == "format":
                raise UsageError(
                    f"金额应是以元为单位的数字，最多两位小数（如 10 或 9.9），而不是“{word}”。"
                ) from None
            raise UsageError(
                "金额至少 0.01 元。" if error.reason == "too_small" else "金额太大了，请检查。"
            ) from None

    def optional_amount(self) -> int | None:
        """An amount if the next word is made of money characters (`10`, `9.9`, `¥10`,
        and also typos like `1.234` or `0`, which are refused rather than read as a
        reason: a mistyped partial refund must never become a full one). Otherwise
        None, and the word stays for the free text (`1件没发` is a reason)."""
        word = self.peek()
        if word is None or not _MONEY_CHARS.match(normalise_word(word)):
            return None
        return self.amount()

    def choice(self, what: str, options: Mapping[str, T]) -> T:
        word = normalise_word(self.word(what))
        value = options.get(word.lower())
        if value is None:
            raise UsageError(f"{what}应是 {'、'.join(options)} 之一，而不是“{word}”。")
        return value


def is_integer_word(word: str | None) -> bool:
    return word is not None and bool(_INT.match(normalise_word(word)))
