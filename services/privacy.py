"""What of a customer's personal data may be shown where. Group chats get a masked view."""

from __future__ import annotations

import re

from .tracking import state_name

_PROVINCE_LEVEL = ("北京", "上海", "天津", "重庆")
# A province is at most a few characters; a city name never contains 区/县/路/街/号 or a
# digit, so "西湖区文三路华联超市" is not mistaken for a city.
_CITY = re.compile(
    r"^([^市区县路街道号\d]{2,7}?(?:省|自治区|特别行政区))?([^省区县路街道号镇乡村\d]{1,10}?(?:市|自治州|地区|盟))"
)


def mask_phone(phone: str) -> str:
    """13800000000 -> 138****0000; anything short is masked whole."""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "****"


def city_of(address: str) -> str:
    """The address cut down to its city (省+市), never the street or house number."""
    text = address.strip()
    for city in _PROVINCE_LEVEL:
        if text.startswith(city):
            return city + "市"
    match = _CITY.match(text)
    if match:
        return (match.group(1) or "") + match.group(2)
    return text[:2] + "…" if text else ""


def mask_name(name: str) -> str:
    return (name[:1] + "*" * max(1, len(name) - 1)) if name else ""


# Digits as people type them: full-width ones too (a Chinese IME gives １３８…).
_ASCII_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# A mobile number, with or without +86 / 86, written straight or as 138-0000-1111 or
# 138 0000 1111; and a landline, 0571-88886666 or 057188886666. Not inside a longer run
# of letters or digits (tracking and order numbers).
_MOBILE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?![0-9A-Za-z])"
)
_LANDLINE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(0\d{2,3})[\s-]?(\d{3,4})(\d{4})(?![0-9A-Za-z])")


def mask_phones_in(text: str) -> str:
    """Free text bound for a group (remarks, reasons, tracking events, notices): mobile
    and landline numbers masked, 138****1111 and 0571-****6666."""
    text = text.translate(_ASCII_DIGITS)
    text = _MOBILE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE_IN_TEXT.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)


# --- courier texts in groups -----------------------------------------------------------
# A courier's event text may carry the receiver's name, street address and phone
# ("派送至 四川省成都市武侯区天府大道北段1700号，收件人 孙悟空，电话 139…"). A group sees
# only the state and the city; the whole text goes to private chats only.

# Which state a text describes when the provider gave none (staff-typed events), checked
# in this order: "请准备签收" is a delivery, "已签收" a signature.
_STATE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rejected", ("拒签", "拒收")),
    ("return_signed", ("退签", "退回签收")),
    ("returning", ("退回", "退件", "返回寄件", "原路返回")),
    ("signed", ("已签收", "签收人", "代签收", "代收", "本人签收", "已取件", "取件成功", "已取出")),
    ("delivering", ("派送", "派件", "投递", "配送", "待取件", "驿站", "快递柜", "丰巢")),
    ("picked_up", ("揽收", "揽件", "已收件", "收寄")),
    ("problem", ("疑难", "异常", "滞留", "无法联系")),
)
_MUNICIPALITIES = ("北京", "上海", "天津", "重庆")
_PROVINCES = (
    "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西", "山东",
    "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
    "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆",
)  # fmt: skip
# What may come right before a place name: a province, or a courier's verb of motion.
_BEFORE_PLACE = (
    "省", "自治区", *_PROVINCES, *_MUNICIPALITIES,
    "至", "往", "达", "到", "从", "在", "于", "经", "开", "抵",
)  # fmt: skip
# Never inside a city's name: the parts of a street address, and words of a person.
_NOT_IN_PLACE = set("省区县旗路街道巷弄号栋楼室村组人的收件电话")
# 超市, 夜市, 菜市 are shops; a 市 followed by 场 is a market.
_NOT_BEFORE_SHI = set("超夜菜")
_HUB_WORDS = ("转运中心", "分拨中心", "集散中心", "分拣中心", "处理中心", "中转场", "转运场")
_PLACE_LENGTHS = (2, 3, 4)


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def _place_ending_at(text: str, end: int) -> str | None:
    """The shortest 2–4 character place name ending right before `end` that starts where
    a name can start (the text's start, punctuation, a province, a verb of motion)."""
    for length in _PLACE_LENGTHS:
        start = end - length
        if start < 0:
            return None
        name = text[start:end]
        if not all(_is_han(char) and char not in _NOT_IN_PLACE for char in name):
            return None
        before = text[:start]
        if not before or not _is_han(before[-1]) or before.endswith(_BEFORE_PLACE):
            return name
    return None


def city_in(text: str) -> str:
    """The first city a courier text names (成都市; 上海市 for 【上海转运中心】; 杭州 for
    【杭州转运中心】), or "" when it names none. Never more than a city."""
    for index, char in enumerate(text):
        if char != "市" or text[index + 1 : index + 2] == "场":
            continue
        if index and text[index - 1] in _NOT_BEFORE_SHI:
            continue
        name = _place_ending_at(text, index)
        if name is not None:
            return name + "市"
    for city in _MUNICIPALITIES:
        if city in text:
            return city + "市"
    for hub in _HUB_WORDS:
        index = text.find(hub)
        while index != -1:
            name = _place_ending_at(text, index)
            if name is not None:
                return name
            index = text.find(hub, index + 1)
    return ""


def courier_state(text: str, state: str | None = None) -> str:
    """The tracking state (a services.tracking.TrackingState value) of an event: the
    provider's when known, else read from the words of the text; in transit by default."""
    if state:
        return state
    for value, words in _STATE_WORDS:
        if any(word in text for word in words):
            return value
    return "in_transit"


def courier_text_for_group(text: str, state: str | None = None) -> str:
    """A courier's event text as a group may see it: its state and city only ("派件 ·
    成都市"), whatever else the text says (receiver's name, street address, phone)."""
    name = state_name(courier_state(text, state))
    city = city_in(text)
    return f"{name} · {city}" if city else name
