"""Views shared by area plugins: how an address, a time or an item line is shown, and
where. Group chats get the masked view: phone 138****0000, address down to the city."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.catalog import ItemSummary
from services.money import format_fen
from services.privacy import (
    city_of,
    courier_text_for_group,
    mask_name,
    mask_phone,
    mask_phones_in,
)

ACTOR_NAMES = {"customer": "顾客", "staff": "店员", "owner": "店主", "system": "系统"}


def address_text(name: str, phone: str, detail: str, *, in_group: bool) -> str:
    if in_group:
        return f"{mask_name(name)} {mask_phone(phone)} {city_of(detail)}"
    return f"{name} {phone} {detail}"


def local_time(moment: datetime, zone: ZoneInfo, *, with_date: bool = True) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%m-%d %H:%M" if with_date else "%H:%M")


def shown_in(text: str, *, in_group: bool) -> str:
    """Free text (a remark, a reason, a courier's tracking line) as a chat may see it:
    in a group, any phone number in it is masked."""
    return mask_phones_in(text) if in_group else text


def courier_line(text: str, state: str | None, *, in_group: bool) -> str:
    """A tracking event's text as a chat may see it: in full in private; in a group only
    its state and city (courier texts carry the receiver's name, address and phone)."""
    return courier_text_for_group(text, state) if in_group else text


def item_summary_line(item: ItemSummary) -> str:
    """One item in a list: number, name, lowest price (起 when variants differ), 售罄."""
    price = format_fen(item.min_price_fen) + ("起" if item.variant_count > 1 else "")
    return f"{item.id}. {item.name}  {price}" + ("  售罄" if item.sold_out else "")
