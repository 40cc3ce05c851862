"""After-sales tickets: a customer opens one on their order (/售后, with evidence images),
reads it (/工单), adds a message (/留言), gives the return parcel (/退货单号) or withdraws it
(/撤销); staff list the queue (/工单列表), answer (/回复), approve (/同意, a refund at
once or after the parcel is back), reject (/拒绝) and complete (/完成). The other side
hears each step through the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from config import ShopSettings
from models.tables import Ticket, TicketKind, TicketStatus
from models.types import utcnow
from services import aftersales, notices, orders, safeguards
from services.actors import Caller
from services.aftersales import Restock, TicketDetail, Windows
from services.context import ShopContext
from services.errors import RestockRefused
from services.media import download_images, load_image


@dataclass(frozen=True)
class OpenedTicket:
    ticket: Ticket
    order_code: str
    image_count: int


@dataclass(frozen=True)
class TicketView(TicketDetail):
    """A ticket as /工单 shows it, with its evidence images' bytes when they may be shown."""

    images: list[bytes] = field(default_factory=list)


# At most this many evidence images go with one /工单 answer (each message has at most
# aftersales.MAX_TICKET_IMAGES).
SHOWN_IMAGES = 10


@dataclass(frozen=True)
class TicketDecision:
    """What approving or completing a ticket did with the money (and the returned goods)."""

    ticket: Ticket
    amount_fen: int
    refunded: bool  # refunded now, by this decision
    completed: bool = True  # False: /完成 <工单号> 入库 on a 退货 completed before
    restock: Restock | None = None  # the returned goods put back on the shelf now
    restock_offered: bool = False  # a 退货 completed without 入库 whose goods still may go back


def _windows(settings: ShopSettings) -> Windows:
    return Windows(timedelta(days=settings.aftersale_days), timedelta(days=settings.exchange_days))


async def _download_images(shop: ShopContext, image_urls: Sequence[str]) -> list[str]:
    """Evidence images are downloaded now, outside any transaction: QQ image URLs expire
    within hours. Too many are refused before the first download; the rest download
    together, within one deadline for them all."""
    aftersales.check_image_count(len(image_urls))
    return await download_images(image_urls, shop.data_dir)


# --- customers ------------------------------------------------------------------------


async def open_ticket(
    shop: ShopContext,
    caller: Caller,
    order_code: str,
    kind: TicketKind,
    reason: str,
    image_urls: Sequence[str] = (),
    now: datetime | None = None,
) -> OpenedTicket:
    """A ticket on the caller's own order (staff included: one opens tickets as a buyer),
    opened in the chat it came from; owners and staff hear of it. The order is checked
    before any image is downloaded, and again when the ticket is written."""
    now = now or utcnow()
    windows = _windows(shop.settings)
    async with shop.database.read() as session:
        await safeguards.ensure_not_banned(session, shop.shop_id, caller.user_id)
        order = await orders.get_order(
            session, shop.shop_id, order_code, customer_id=caller.user_id
        )
        await aftersales.check_eligible(session, order, kind, windows, now)
    images = await _download_images(shop, image_urls)
    async with shop.database.write() as session:
        order = await orders.get_order(
            session, shop.shop_id, order_code, customer_id=caller.user_id
        )
        ticket = await aftersales.open_ticket(
            session, order, kind, reason, images, caller.actor, caller.group_id, windows, now
        )
        await notices.ticket_to_staff(
            session,
            ticket,
            shop.owners,
            notices.new_ticket_for_staff(ticket, order.code),
            "opened",
            now,
            images,
        )
    return OpenedTicket(ticket, order.code, len(images))


async def my_tickets(shop: ShopContext, caller: Caller) -> list[tuple[Ticket, str]]:
    """The caller's own tickets with their order codes, newest first."""
    async with shop.database.read() as session:
        return await aftersales.list_tickets(session, shop.shop_id, customer_id=caller.user_id)


async def view_ticket(shop: ShopContext, caller: Caller, code: str) -> TicketView:
    """A ticket with its messages and events; a customer asking about someone else's
    ticket gets TicketNotFound, exactly as for a code that does not exist. In a private
    chat the evidence images come along (the stored copies, first SHOWN_IMAGES); a group
    never sees them."""
    async with shop.database.read() as session:
        ticket = await aftersales.get_ticket(
            session, shop.shop_id, code, customer_id=caller.own_only
        )
        detail = await aftersales.ticket_detail(session, ticket)
    images: list[bytes] = []
    if not caller.in_group:
        paths = [path for message in detail.messages for path in aftersales.images_of(message)]
        for path in paths[:SHOWN_IMAGES]:
            data = load_image(path, shop.data_dir)
            if data is not None:  # gone from disk (a backup restored without media)
                images.append(data)
    return TicketView(detail.ticket, detail.order_code, detail.messages, detail.events, images)


async def leave_message(
    shop: ShopContext,
    caller: Caller,
    code: str,
    text: str,
    image_urls: Sequence[str] = (),
    now: datetime | None = None,
) -> Ticket:
    """The customer adds text and/or images to their own ticket; owners and staff hear it.
    The ticket is looked up before any image is downloaded."""
    now = now or utcnow()
    async with shop.database.read() as session:
        await safeguards.ensure_not_banned(session, shop.shop_id, caller.user_id)
        await aftersales.get_ticket(session, shop.shop_id, code, customer_id=caller.user_id)
    images = await _download_images(shop, image_urls)
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(
            session, shop.shop_id, code, customer_id=caller.user_id
        )
        message = await aftersales.add_message(session, ticket, caller.actor, text, images, now)
        await notices.ticket_to_staff(
            session,
            ticket,
            shop.owners,
            notices.ticket_message_for_staff(ticket, text or "[图片]"),
            f"message:{message.id}",
            now,
            images,
        )
    return ticket


async def record_return_parcel(
    shop: ShopContext,
    caller: Caller,
    code: str,
    carrier: str,
    number: str,
    now: datetime | None = None,
) -> Ticket:
    """awaiting_return → return_shipped with the (already checked) carrier name and
    number; owners and staff hear it."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(
            session, shop.shop_id, code, customer_id=caller.user_id
        )
        await aftersales.return_shipped(session, ticket, carrier, number, caller.actor, now)
        await notices.ticket_to_staff(
            session,
            ticket,
            shop.owners,
            notices.return_shipped_for_staff(ticket, carrier, number),
            "return_shipped",
            now,
        )
    return ticket


async def withdraw_ticket(
    shop: ShopContext, caller: Caller, code: str, now: datetime | None = None
) -> Ticket:
    """open → withdrawn by its customer; nobody is told (staff see it in the list)."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(
            session, shop.shop_id, code, customer_id=caller.user_id
        )
        await aftersales.withdraw(session, ticket, caller.actor, now)
    return ticket


# --- staff ----------------------------------------------------------------------------


async def list_tickets(
    shop: ShopContext, caller: Caller, status: TicketStatus | None = None
) -> list[tuple[Ticket, str]]:
    """The staff queue: unfinished tickets first, oldest first; optionally one status."""
    async with shop.database.read() as session:
        return await aftersales.list_tickets(session, shop.shop_id, status=status)


async def answer_ticket(
    shop: ShopContext, caller: Caller, code: str, text: str, now: datetime | None = None
) -> Ticket:
    """A staff message on any ticket (ended ones too); the customer hears it in the chat
    the ticket came from."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(session, shop.shop_id, code)
        message = await aftersales.add_message(session, ticket, caller.actor, text, [], now)
        await notices.ticket_to_customer(
            session,
            ticket,
            notices.ticket_reply(ticket, message.text),
            f"message:{message.id}",
            now,
        )
    return ticket


async def approve_ticket(
    shop: ShopContext,
    caller: Caller,
    code: str,
    amount_fen: int | None = None,
    now: datetime | None = None,
) -> TicketDecision:
    """退款 is refunded at once (default: all still refundable); 退货/换货 wait for the
    parcel; 投诉 is approved. The customer hears the decision."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(session, shop.shop_id, code)
        amount, refunded = await aftersales.approve(
            session, ticket, amount_fen, caller.actor, "", now
        )
        await notices.ticket_to_customer(
            session, ticket, notices.ticket_approved(ticket, amount, refunded), "approved", now
        )
    return TicketDecision(ticket, amount, refunded)


async def reject_ticket(
    shop: ShopContext, caller: Caller, code: str, reason: str, now: datetime | None = None
) -> Ticket:
    """open → rejected with a reason, which the customer hears."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(session, shop.shop_id, code)
        await aftersales.reject(session, ticket, caller.actor, reason, now)
        await notices.ticket_to_customer(
            session, ticket, notices.ticket_rejected(ticket, reason), "rejected", now
        )
    return ticket


async def complete_ticket(
    shop: ShopContext,
    caller: Caller,
    code: str,
    *,
    restock: bool = False,
    now: datetime | None = None,
) -> TicketDecision:
    """退货: the parcel is back, refund now; 换货/投诉: closed. The customer hears it.

    The returned goods go back on the shelf only with `restock` (/完成 <工单号> 入库),
    in this same transaction; without it the decision says whether they still could.
    A 退货 completed earlier without it can be restocked afterwards (once per order),
    which changes the ticket no further and tells the customer nothing."""
    now = now or utcnow()
    async with shop.database.write() as session:
        ticket = await aftersales.get_ticket(session, shop.shop_id, code)
        if restock:
            # Refused before anything moves: a refused 入库 completes nothing either.
            refusal = await aftersales.restock_refusal(session, ticket)
            if refusal is not None:
                raise RestockRefused(refusal, ticket.code)
        else:
            # Asked before completing: the refund may close the order and hide whether
            # its goods ever left.
            offered = await aftersales.restock_refusal(session, ticket) is None
        amount, refunded, completed = 0, False, False
        if not (restock and ticket.status == TicketStatus.REFUNDED.value):
            amount, refunded = await aftersales.complete(session, ticket, caller.actor, now)
            completed = True
            await notices.ticket_to_customer(
                session,
                ticket,
                notices.ticket_completed(ticket, amount, refunded),
                "completed",
                now,
            )
        if restock:
            goods = await aftersales.restock_return(session, ticket, caller.actor, now)
            return TicketDecision(ticket, amount, refunded, completed, restock=goods)
    return TicketDecision(ticket, amount, refunded, restock_offered=offered)
