"""Reviews: once per completed order, by its customer; shown per item in /详情."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import OrderLine, OrderStatus, Review, ShopOrder

from .errors import InvalidTransition, InvalidValue, ShopError
from .limits import check_text

MAX_REVIEW_TEXT = 200
FIELD_RATING = "rating"
FIELD_REVIEW = "review"
LATEST_SHOWN = 3


@dataclass
class AlreadyReviewed(ShopError):
    code: str


@dataclass(frozen=True)
class ItemRating:
    average: float | None
    count: int
    latest: list[Review]


async def add_review(
    session: AsyncSession, order: ShopOrder, user_id: int, rating: int, text: str, now: datetime
) -> Review:
    if not 1 <= rating <= 5:
        raise InvalidValue(FIELD_RATING, "range", 5)
    text = check_text(FIELD_REVIEW, text, MAX_REVIEW_TEXT) if text.strip() else ""
    if order.status != OrderStatus.COMPLETED.value:
        raise InvalidTransition(order.status, "review")
    existing = (await session.execute(select(Review.id).where(Review.order_id == order.id))).first()
    if existing is not None:
        raise AlreadyReviewed(order.code)
    review = Review(
        shop_id=order.shop_id,
        order_id=order.id or 0,
        user_id=user_id,
        rating=rating,
        text=text,
        created_at=now,
    )
    session.add(review)
    await session.flush()
    return review


# Prebuilt: /详情 is the second most frequent command and building a select costs more
# CPU than SQLite spends running it.
_ORDERS_WITH_ITEM = (
    select(OrderLine.order_id).where(OrderLine.item_id == bindparam("item_id")).scalar_subquery()
)
_RATING_SUMMARY = select(func.avg(Review.rating), func.count(Review.id)).where(
    Review.order_id.in_(_ORDERS_WITH_ITEM)  # type: ignore[attr-defined]
)
_LATEST_WITH_TEXT = (
    select(Review)
    .where(Review.order_id.in_(_ORDERS_WITH_ITEM), Review.text != "")  # type: ignore[attr-defined]
    .order_by(Review.created_at.desc(), Review.id.desc())  # type: ignore[attr-defined]
    .limit(LATEST_SHOWN)
)


async def item_rating(session: AsyncSession, item_id: int) -> ItemRating:
    params = {"item_id": item_id}
    average, count = (await session.execute(_RATING_SUMMARY, params)).one()
    if not count:
        return ItemRating(None, 0, [])
    latest = list((await session.execute(_LATEST_WITH_TEXT, params)).scalars())
    return ItemRating(float(average) if average is not None else None, int(count), latest)
