"""The fake OneBot v11 API: the simulator's answers to the bot's API calls.

:class:`FakeApi` keeps what a real implementation would know — the messages in each chat
(for ``get_msg``), users, groups and members — and answers ``send_msg``, ``get_msg``,
``get_group_member_info`` and the other actions listed in docs/simulator.md. Any action
can be overridden with :meth:`FakeApi.set_api_handler`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .recorder import ApiCall, SentMessage, int_param
from .segments import Segment, to_cq

__all__ = ["ApiError", "ApiHandler", "FakeApi", "failed", "ok"]

#: A custom answer: ``handler(params)`` returns the response ``data`` (sync or async).
ApiHandler = Callable[[dict[str, Any]], Any]


class ApiError(Exception):
    """Raise from a custom API handler to answer with ``status: failed``."""

    def __init__(self, retcode: int = 100, message: str = "failed") -> None:
        super().__init__(message)
        self.retcode = retcode
        self.message = message


def ok(data: Any) -> dict[str, Any]:
    """A successful response carrying ``data``."""
    return {"status": "ok", "retcode": 0, "data": data}


def failed(retcode: int, message: str) -> dict[str, Any]:
    """A failed response."""
    return {
        "status": "failed",
        "retcode": retcode,
        "data": None,
        "msg": message,
        "wording": message,
    }


async def _settle(result: Awaitable[Any]) -> dict[str, Any]:
    try:
        return ok(await result)
    except ApiError as exc:
        return failed(exc.retcode, exc.message)
    except Exception as exc:
        return failed(1400, repr(exc))


class FakeApi:
    """Answers the bot's API calls from what the simulator knows about its chats.

    ``online`` says whether the connection is up (``get_status``); ``events`` are the
    events the simulator posted (``get_friend_list`` lists the users who chatted privately).
    """

    def __init__(
        self,
        self_id: int,
        nickname: str,
        *,
        online: Callable[[], bool],
        events: Sequence[dict[str, Any]],
    ) -> None:
        self.self_id = self_id
        self.nickname = nickname
        self._online = online
        self._events = events
        self._messages: dict[int, dict[str, Any]] = {}
        self._deleted: set[int] = set()
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}
        self._members: dict[tuple[int, int], dict[str, Any]] = {}
        self._handlers: dict[str, ApiHandler] = {}

    # ---------------------------------------------------------------- what the API knows

    def set_api_handler(self, action: str, handler: ApiHandler | None) -> None:
        """Override (or with ``None`` restore) the answer to ``action``."""
        if handler is None:
            self._handlers.pop(action, None)
        else:
            self._handlers[action] = handler

    def set_user(self, user_id: int, nickname: str) -> None:
        self._users[int(user_id)] = nickname

    def add_user(self, user_id: int, nickname: str) -> None:
        """Learn a user's nickname unless it is already known."""
        self._users.setdefault(int(user_id), nickname)

    def set_group(self, group_id: int, name: str) -> None:
        self._groups[int(group_id)] = name

    def set_member(
        self,
        group_id: int,
        user_id: int,
        *,
        role: str = "member",
        nickname: str | None = None,
        card: str = "",
    ) -> None:
        """Declare a group member (answers ``get_group_member_info``)."""
        nick = nickname or self._users.get(int(user_id)) or f"用户{user_id}"
        self._groups.setdefault(int(group_id), f"群{group_id}")
        self._members[(int(group_id), int(user_id))] = {
            "user_id": int(user_id),
            "nickname": nick,
            "card": card,
            "role": role,
        }

    def store_message(
        self,
        message_id: int,
        message_type: str,
        sender: dict[str, Any],
        segments: list[Segment],
        target_id: int,
    ) -> None:
        """Remember a message (from a user or the bot) so ``get_msg`` can return it."""
        record: dict[str, Any] = {
            "time": int(time.time()),
            "message_type": message_type,
            "message_id": message_id,
            "real_id": message_id,
            "message_seq": message_id,
            "sender": sender,
            "message": segments,
            "raw_message": to_cq(segments),
        }
        if message_type == "group":
            record["group_id"] = target_id
        else:
            record["user_id"] = sender.get("user_id")
        self._messages[message_id] = record

    def store_sent(self, sent: SentMessage) -> None:
        """Remember a message the bot sent."""
        sender = {"user_id": self.self_id, "nickname": self.nickname}
        self.store_message(sent.message_id, sent.target_type, sender, sent.segments, sent.target_id)

    # ---------------------------------------------------------------- answering

    def dispatch(self, call: ApiCall) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """The response to ``call``, or an awaitable of it when a custom handler is async."""
        custom = self._handlers.get(call.action)
        try:
            if custom is not None:
                result = custom(call.params)
                return _settle(result) if inspect.isawaitable(result) else ok(result)
            builtin: Callable[[ApiCall], Any] | None = getattr(self, f"_api_{call.action}", None)
            if builtin is None:
                return failed(1404, f"unsupported action: {call.action}")
            return ok(builtin(call))
        except ApiError as exc:
            return failed(exc.retcode, exc.message)
        except Exception as exc:
            return failed(1400, repr(exc))

    # ---------------------------------------------------------------- built-in answers

    def _api_send_msg(self, call: ApiCall) -> dict[str, Any]:
        assert call.sent is not None
        return {"message_id": call.sent.message_id}

    _api_send_private_msg = _api_send_msg
    _api_send_group_msg = _api_send_msg

    def _api_send_forward_msg(self, call: ApiCall) -> dict[str, Any]:
        assert call.sent is not None
        return {"message_id": call.sent.message_id, "forward_id": str(call.sent.message_id)}

    _api_send_private_forward_msg = _api_send_forward_msg
    _api_send_group_forward_msg = _api_send_forward_msg

    def _api_get_login_info(self, call: ApiCall) -> dict[str, Any]:
        return {"user_id": self.self_id, "nickname": self.nickname}

    def _api_get_msg(self, call: ApiCall) -> dict[str, Any]:
        message_id = int_param(call.params.get("message_id"), -1)
        record = self._messages.get(message_id)
        if record is None or message_id in self._deleted:
            raise ApiError(1404, f"message {message_id} not found")
        return record

    def _api_delete_msg(self, call: ApiCall) -> None:
        message_id = int_param(call.params.get("message_id"), -1)
        if message_id not in self._messages:
            raise ApiError(1404, f"message {message_id} not found")
        self._deleted.add(message_id)

    def _member_info(self, group_id: int, user_id: int) -> dict[str, Any]:
        base = self._members.get((group_id, user_id)) or {
            "user_id": user_id,
            "nickname": self.nickname
            if user_id == self.self_id
            else self._users.get(user_id, f"用户{user_id}"),
            "card": "",
            "role": "member",
        }
        return {
            "group_id": group_id,
            "sex": "unknown",
            "age": 0,
            "area": "",
            "join_time": 0,
            "last_sent_time": int(time.time()),
            "level": "1",
            "unfriendly": False,
            "title": "",
            "title_expire_time": 0,
            "card_changeable": False,
            "shut_up_timestamp": 0,
            **base,
        }

    def _api_get_group_member_info(self, call: ApiCall) -> dict[str, Any]:
        return self._member_info(
            int_param(call.params.get("group_id")), int_param(call.params.get("user_id"))
        )

    def _api_get_group_member_list(self, call: ApiCall) -> list[dict[str, Any]]:
        group_id = int_param(call.params.get("group_id"))
        return [self._member_info(g, u) for (g, u) in self._members if g == group_id]

    def _api_get_stranger_info(self, call: ApiCall) -> dict[str, Any]:
        user_id = int_param(call.params.get("user_id"))
        nickname = self._users.get(user_id, f"用户{user_id}")
        return {"user_id": user_id, "nickname": nickname, "sex": "unknown", "age": 0}

    def _group_info(self, group_id: int) -> dict[str, Any]:
        members = sum(1 for (g, _u) in self._members if g == group_id)
        return {
            "group_id": group_id,
            "group_name": self._groups.get(group_id, f"群{group_id}"),
            "member_count": members,
            "max_member_count": 500,
        }

    def _api_get_group_info(self, call: ApiCall) -> dict[str, Any]:
        return self._group_info(int_param(call.params.get("group_id")))

    def _api_get_group_list(self, call: ApiCall) -> list[dict[str, Any]]:
        return [self._group_info(g) for g in self._groups]

    def _api_get_friend_list(self, call: ApiCall) -> list[dict[str, Any]]:
        private = {e.get("user_id") for e in self._events if e.get("message_type") == "private"}
        return [
            {"user_id": u, "nickname": self._users.get(u, f"用户{u}"), "remark": ""}
            for u in sorted(x for x in private if isinstance(x, int))
        ]

    def _api_get_status(self, call: ApiCall) -> dict[str, Any]:
        return {"online": self._online(), "good": True}

    def _api_get_version_info(self, call: ApiCall) -> dict[str, Any]:
        return {"app_name": "onebot-sim", "app_version": "1.0.0", "protocol_version": "v11"}

    def _api_can_send_image(self, call: ApiCall) -> dict[str, Any]:
        return {"yes": True}

    _api_can_send_record = _api_can_send_image

    def _api_noop(self, call: ApiCall) -> None:
        return None

    _api_set_group_ban = _api_noop
    _api_set_group_kick = _api_noop
    _api_set_group_card = _api_noop
    _api_set_friend_add_request = _api_noop
    _api_set_group_add_request = _api_noop
    _api_send_like = _api_noop
