"""Argument parsing and validation, in one place for every command.

Words are separated by white space; a word that opens with a quotation mark runs to the
closing one, spaces and all (`/新品 "iPhone 15 Pro" 5999 10`); the last free-text
argument takes the rest of the line as typed. Identifier words are NFKC-normalised so
`１２－２` typed with a Chinese IME works. Every failure raises `UsageError` with a
Chinese reason; the router appends the command's usage and example.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import TypeVar

from services.catalog import StockChange, VariantRef
from services.codes import looks_like_code
from services.errors import InvalidValue
from services.limits import MAX_PAGE, MAX_QQ, MAX_QUANTITY, MAX_STOCK, check_stock, clip, quote
from services.money import parse_yuan

T = TypeVar("T")

_VARIANT_REF = re.compile(r"^(\d{1,9})(?:-(\d{1,3}))?$")
_INT = re.compile(r"^\d{1,12}$")
_MONEY_CHARS = re.compile(r"^[¥￥]?[0-9.]+元?$")
_ID = re.compile(r"^\d{1,9}$")  # ids are 32-bit columns (PostgreSQL rejects larger values)


# Quotation marks around a name with spaces (`"iPhone 15 Pro"`). Chinese IMEs type “…”,
# some keyboards ”…” or “…“, phones the full-width ＂: double quotes of any kind close one
# another. Corner brackets close only with their own partner.
_DOUBLE_QUOTES = '"“”＂'
_CLOSERS = {**dict.fromkeys(_DOUBLE_QUOTES, _DOUBLE_QUOTES), "「": "」", "『": "』"}
NAME_QUOTE_HINT = '名称含空格时请用引号括起来，如 "iPhone 15 Pro"。'


class UsageError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_word(word: str) -> str:
    return unicodedata.normalize("NFKC", word).strip()


def starts_quoted(text: str) -> bool:
    return text[:1] in _CLOSERS


def _closing_quote(text: str) -> int:
    """Where the quotation that opens `text` closes, or -1 when it does not."""
    closers = _CLOSERS[text[0]]
    return next((i for i in range(1, len(text)) if text[i] in closers), -1)


def _split(text: str) -> tuple[str, str, bool]:
    """The first word of `text` (stripped, not empty), the rest, and whether the word was
    in quotes (then it is what is between them, spaces and all)."""
    if not starts_quoted(text):
        parts = text.split(maxsplit=1)
        return parts[0], parts[1] if len(parts) > 1 else "", False
    end = _closing_quote(text)
    if end < 0:
        raise UsageError(f"引号没有配对：{quote(text)}。{NAME_QUOTE_HINT}")
    after = text[end + 1 :]
    if after and not after[0].isspace():
        raise UsageError(
            f"右引号后面要空一格再写下一项：{quote(text[: end + 2])}。"
            '名称本身以引号开头时，请整个再用引号括起来，如 "「限定」冷萃"。'
        )
    return text[1:end], after.lstrip(), True


def _one_line(name: str) -> str:
    """A name is shown on one line: white space inside (a quoted line break, a run of
    spaces) becomes one space."""
    return " ".join(name.split())


class ArgReader:
    def __init__(self, text: str) -> None:
        self._rest = text.strip()
        self._last_quoted = False
        # A name was read without quotes: a later word that fails may be the rest of it.
        self._bare_name = False

    @property
    def remaining(self) -> str:
        return self._rest

    def has_more(self) -> bool:
        return bool(self._rest)

    def _error(self, reason: str) -> UsageError:
        """A wrong word; after an unquoted name (`/新品 iPhone 15 Pro 5999 10` reads the
        name `iPhone`, then fails on `Pro`) it says how to keep the spaces in a name."""
        if self._bare_name:
            reason = f"{reason}\n{NAME_QUOTE_HINT}"
        return UsageError(reason)

    def _take(self) -> str | None:
        if not self._rest:
            return None
        word, self._rest, self._last_quoted = _split(self._rest)
        return word

    def peek(self) -> str | None:
        if not self._rest:
            return None
        try:
            return _split(self._rest)[0]
        except UsageError:  # an unclosed quote: the word that reads it says so
            return self._rest.split(maxsplit=1)[0]

    def word(self, what: str) -> str:
        word = self._take()
        if word is None:
            raise UsageError(f"缺少{what}。")  # missing, not wrong: no quoting hint
        return word

    def optional_word(self) -> str | None:
        return self._take()

    def name(self, what: str) -> str:
        """A name (an item's, a variant's, a category's): one word, or several in quotes
        (`"iPhone 15 Pro"`, `“大号 黑色”`, `「冷萃 咖啡」`), on one line. Its length and
        emptiness are the services' to check."""
        name = _one_line(self.word(what))
        if not self._last_quoted:
            self._bare_name = True
        return name

    def optional_name(self, what: str) -> str | None:
        return self.name(what) if self._rest else None

    def rest_name(self, what: str) -> str:
        """A name as the last argument: the rest of the line, quotes optional (`/改名 12
        iPhone 15 Pro` and `/改名 12 "iPhone 15 Pro"` alike). Quotes that do not wrap
        the whole rest are part of the name (`「限定」冷萃`); an unclosed one is refused."""
        if starts_quoted(self._rest):
            end = _closing_quote(self._rest)
            if end < 0:
                raise UsageError(f"引号没有配对：{quote(self._rest)}。{NAME_QUOTE_HINT}")
            if end == len(self._rest) - 1:
                return self.name(what)
        return _one_line(self.rest(what))

    def rest(self, what: str, *, required: bool = True) -> str:
        text, self._rest = self._rest, ""
        if required and not text:
            raise UsageError(f"缺少{what}。")  # missing, not wrong: no quoting hint
        return text

    def end(self) -> None:
        if self._rest:
            raise self._error(f"多余的内容：{clip(self._rest)}")

    # --- typed words --------------------------------------------------------------

    def item_id(self) -> int:
        word = normalise_word(self.word("商品编号"))
        if not _ID.match(word) or int(word) == 0:
            raise self._error(f"商品编号应是 1 到 9 位数字（如 12），而不是{quote(word)}。")
        return int(word)

    def variant_ref(self) -> VariantRef:
        word = normalise_word(self.word("规格编号"))
        match = _VARIANT_REF.match(word)
        if match is None or int(match.group(1)) == 0 or match.group(2) in {"0", "00", "000"}:
            raise self._error(
                f"规格编号应像 12 或 12-2（商品编号-第几个规格），而不是{quote(word)}。"
            )
        position = int(match.group(2)) if match.group(2) else None
        return VariantRef(int(match.group(1)), position)

    def price(self) -> int:
        word = normalise_word(self.word("价格"))
        try:
            return parse_yuan(word)
        except InvalidValue as error:
            if error.reason == "format":
                raise self._error(
                    f"价格应是以元为单位的数字，最多两位小数（如 59.9），而不是{quote(word)}。"
                ) from None
            raise

    def stock(self) -> int:
        word = normalise_word(self.word("库存"))
        if not _INT.match(word):
            raise self._error(f"库存应是 0 到 {MAX_STOCK} 的整数，而不是{quote(word)}。")
        return check_stock(int(word))

    def stock_change(self) -> StockChange:
        word = normalise_word(self.word("库存变化"))
        mode = "add" if word.startswith("+") else "sub" if word.startswith("-") else "set"
        digits = word[1:] if mode != "set" else word
        if not _INT.match(digits):
            raise self._error(
                f"库存应写成 +N（增加）、-N（减少）或 N（设为），而不是{quote(word)}。"
            )
        return StockChange(mode, check_stock(int(digits)))  # type: ignore[arg-type]

    def page(self) -> int:
        word = normalise_word(self.word("页码"))
        if not _INT.match(word) or not 1 <= int(word) <= MAX_PAGE:
            raise self._error(f"页码应是正整数，而不是{quote(word)}。")
        return int(word)

    def qq(self) -> int:
        word = normalise_word(self.word("QQ号")).removeprefix("@")
        if not _INT.match(word) or not 10_000 <= int(word) < MAX_QQ:
            raise self._error(f"QQ号应是 5 到 12 位数字，而不是{quote(word)}。")
        return int(word)

    def quantity(self, *, allow_zero: bool = False) -> int:
        """`3`, `３`, `3个`, `两`, `十二件`; anything else is refused."""
        word = normalise_word(self.word("数量"))
        value = quantity_value(word)
        low = 0 if allow_zero else 1
        if value is None or not low <= value <= MAX_QUANTITY:
            raise self._error(f"数量应是 {low} 到 {MAX_QUANTITY} 的整数，而不是{quote(word)}。")
        return value

    def optional_quantity(self) -> int | None:
        """A quantity if the next word looks like one (`3`, `3个`, `两`, and also typos
        like `-1`, `0`, `3.5`, which are refused rather than read as a remark: a mistyped
        quantity must never become a remark and an order of one). Otherwise None, and
        the word stays for the free text that follows (`一定要新鲜` is a remark)."""
        word = self.peek()
        if word is None or not looks_like_quantity(word):
            return None
        return self.quantity()

    def order_code(self, what: str = "订单号") -> str:
        word = normalise_word(self.word(what)).upper()
        if not looks_like_code(word):
            raise self._error(
                f"{what}是 10 位字母和数字（下单回复里的“{what}：…”），而不是{quote(word)}。"
            )
        return word

    def number(self, what: str, limit: int = 99) -> int:
        word = normalise_word(self.word(what))
        if not _INT.match(word) or not 1 <= int(word) <= limit:
            raise self._error(f"{what}应是 1 到 {limit} 的数字，而不是{quote(word)}。")
        return int(word)

    def amount(self) -> int:
        word = normalise_word(self.word("金额"))
        try:
            return parse_yuan(word)
        except InvalidValue as error:
            if error.reason == "format":
                raise self._error(
                    f"金额应是以元为单位的数字，最多两位小数（如 10 或 9.9），而不是{quote(word)}。"
                ) from None
            raise self._error(
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
            raise self._error(f"{what}应是 {'、'.join(options)} 之一，而不是{quote(word)}。")
        return value


# Everyday Chinese numerals (an IME user types 两 or 三 for a quantity).
_CHINESE_DIGITS = {
    "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9
}  # fmt: skip
_CHINESE_ZEROS = frozenset("零〇")
_CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000}
_CHINESE_NUMERALS = frozenset(_CHINESE_DIGITS) | _CHINESE_ZEROS | frozenset(_CHINESE_UNITS)
# Counters a quantity may end with (`3个`, `两盒`): the variant says what one unit is.
_QUANTITY_SUFFIXES = tuple("个件份只盒袋包瓶杯套支张本条罐双把块台")
# Units that change the count (`两打` is 24, `3箱` is not 3 units): such a word is a
# quantity all the same, and refused.
_OTHER_UNITS = frozenset("打箱斤")
_NUMBER_STARTS = frozenset("0123456789+-")


def chinese_number(text: str) -> int | None:
    """A number written in Chinese below 10,000 (`两`, `十二`, `二十`, `一百零五`,
    `三百二十`), or None: not a numeral, or an ambiguous one (`一百五`)."""
    if text in _CHINESE_ZEROS:
        return 0
    total, pending, last_unit, after_zero = 0, None, 10_000, False
    for char in text:
        if char in _CHINESE_ZEROS:
            if pending is not None or total == 0 or after_zero:
                return None
            after_zero = True
        elif char in _CHINESE_DIGITS:
            if pending is not None:
                return None
            pending = _CHINESE_DIGITS[char]
        elif char in _CHINESE_UNITS:
            unit = _CHINESE_UNITS[char]
            if unit >= last_unit or (after_zero and unit != 10):
                return None
            if pending is None:
                if unit != 10 or total:  # only 十 stands alone at the start (十二 = 12)
                    return None
                pending = 1
            total, pending, last_unit, after_zero = total + pending * unit, None, unit, False
        else:
            return None
    if pending is not None:
        if total and last_unit > 10 and not after_zero:
            return None  # 一百五 is 150 to some and 105 to others: ask for digits
        total += pending
    return total if text else None


def _without_suffix(word: str) -> str:
    for suffix in _QUANTITY_SUFFIXES:
        if word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def quantity_value(word: str) -> int | None:
    """The number a quantity word means (`3`, `3个`, `两件`, full-width digits after
    normalise_word), or None."""
    bare = _without_suffix(normalise_word(word))
    if _INT.match(bare):
        return int(bare)
    return chinese_number(bare)


def looks_like_quantity(word: str) -> bool:
    """Whether a word was meant as a quantity, valid or not: it starts like a number
    (`3`, `-1`, `0`, `3.5`, `3x`) or is a Chinese numeral, with a counter or unit
    (`两`, `三个`, `一百五`, `两打`)."""
    normal = normalise_word(word)
    if normal[:1] in _NUMBER_STARTS:
        return True
    counted = normal[:-1] if normal[-1:] in _OTHER_UNITS else _without_suffix(normal)
    return bool(counted) and set(counted) <= _CHINESE_NUMERALS


def is_integer_word(word: str | None) -> bool:
    return word is not None and bool(_INT.match(normalise_word(word)))
