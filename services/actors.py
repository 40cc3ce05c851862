"""Who acts: a customer, a staff member, an owner, or the shop's own clocks. Order and
ticket events record it; the chat door derives it from the sender's role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .staff import Role


class ActorKind(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    OWNER = "owner"
    SYSTEM = "system"


_KIND_OF_ROLE = {
    Role.CUSTOMER: ActorKind.CUSTOMER,
    Role.STAFF: ActorKind.STAFF,
    Role.OWNER: ActorKind.OWNER,
}


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    user_id: int | None = None

    def __post_init__(self) -> None:
        # Accepts the plain value too ("customer"), as stored in event rows.
        object.__setattr__(self, "kind", ActorKind(self.kind))

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorKind.SYSTEM)

    @classmethod
    def of_role(cls, role: Role, user_id: int) -> Actor:
        return cls(_KIND_OF_ROLE[role], user_id)


@dataclass(frozen=True)
class Caller:
    """A person asking something of the shop, and where: whatever door they came
    through (a private chat, a group), the use cases see this."""

    user_id: int
    group_id: int | None
    role: Role

    @property
    def in_group(self) -> bool:
        return self.group_id is not None

    @property
    def is_staff(self) -> bool:
        return self.role >= Role.STAFF

    @property
    def own_only(self) -> int | None:
        """The `customer_id` filter for reading orders and tickets: customers only ever
        see their own; staff see all."""
        return None if self.is_staff else self.user_id

    @property
    def actor(self) -> Actor:
        return Actor.of_role(self.role, self.user_id)
