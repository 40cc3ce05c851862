"""What of a customer's personal data may be shown where. Group chats get a masked view."""

from __future__ import annotations

import re

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
