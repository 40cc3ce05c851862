"""The command registry: one table of every chat command, filled by the area plugins and
served by the single router matcher. It is also the source of `/帮助`, of permission
checks and of usage errors, so a command's name, role and usage are written once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from nonebot.plugin import PluginMetadata

from services.staff import Role

if TYPE_CHECKING:
    from .context import CommandContext, Reply
    from .runtime import ShopRuntime

Handler = Callable[["CommandContext"], Awaitable["Reply"]]


@dataclass(frozen=True)
class DialogueMessage:
    """A message as a dialogue probe sees it: the text with any command prefix taken off."""

    runtime: ShopRuntime
    user_id: int
    group_id: int | None
    text: str

    @property
    def in_group(self) -> bool:
        return self.group_id is not None


# Answers which of its dialogues (by name) a message continues, or None. Called on every
# message before the command table, so it must be cheap (no database, no await).
DialogueProbe = Callable[[DialogueMessage], str | None]


# The sections of /帮助 and of each plugin's usage, in this order whatever order the
# plugins load in: the customer's first, then the merchant's. Every `area=` of a command
# must be listed here (tests/plugins/test_help_router.py checks).
AREA_ORDER: tuple[str, ...] = (
    "商品",
    "下单",
    "订单",
    "售后",
    "帮助",
    "店铺管理",
    "订单管理",
    "发货与物流",
    "售后处理",
)


class Scope(Enum):
    ANY = "any"
    GROUP_ONLY = "group"


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    handler: Handler
    role: Role
    usage: str  # without the prefix: "下单 <规格编号> [数量] [备注]"
    example: str  # without the prefix: "下单 12-2 3"
    summary: str
    area: str
    scope: Scope = Scope.ANY
    # False for the one command that must work where the shop is not enabled yet.
    group_gate: bool = True
    details: tuple[str, ...] = field(default=())
    # A reply inside a dialogue (typed without a prefix), not a command word.
    is_dialogue: bool = False
    # A dialogue reply's answer when nothing waits for it ("" for the order summary's).
    idle_reply: str = ""

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Registry:
    def __init__(self) -> None:
        self._by_word: dict[str, Command] = {}
        self.commands: list[Command] = []
        # Replies inside a pending dialogue (确认 / 取消 / an address line), by name, and
        # the probes that tell whether a message is one.
        self.dialogues: dict[str, Command] = {}
        self.probes: list[DialogueProbe] = []

    def add_dialogue(self, name: str, command: Command) -> None:
        if name in self.dialogues:
            raise ValueError(f"dialogue {name!r} registered twice")
        self.dialogues[name] = command
        # Plugins load in no fixed order: keep the dialogues in /帮助's (the command
        # reference lists them so, and must come out the same on every run).
        rank = {area: n for n, area in enumerate(AREA_ORDER)}
        self.dialogues = dict(
            sorted(
                self.dialogues.items(),
                key=lambda pair: (rank.get(pair[1].area, len(rank)), _source_position(pair[1])),
            )
        )

    def add(self, command: Command) -> None:
        for word in command.words:
            key = word.lower()
            if key in self._by_word:
                raise ValueError(f"command word {word!r} registered twice")
            if any(ch.isspace() for ch in key):
                raise ValueError(f"command word {word!r} contains white space")
        for word in command.words:
            self._by_word[word.lower()] = command
        self.commands.append(command)

    def add_probe(self, probe: DialogueProbe) -> None:
        self.probes.append(probe)

    def dialogue_for(self, message: DialogueMessage) -> Command | None:
        for probe in self.probes:
            name = probe(message)
            if name is not None:
                return self.dialogues.get(name)
        return None

    def lookup(self, word: str) -> Command | None:
        return self._by_word.get(word.lower())

    def visible_to(self, role: Role) -> list[Command]:
        return [c for c in self.commands if c.role <= role]


registry = Registry()


def _source_position(command: Command) -> tuple[str, int]:
    """Where the handler is written (module, line): the order within a section."""
    code = getattr(command.handler, "__code__", None)
    module = getattr(command.handler, "__module__", None) or ""
    return module, code.co_firstlineno if code is not None else 0


def by_area(commands: Iterable[Command]) -> list[tuple[str, list[Command]]]:
    """The commands in sections, in AREA_ORDER (an area missing from it goes last), each
    in the order the handlers are written in the source: the same on every start, however
    the plugins happen to load."""
    rank = {area: n for n, area in enumerate(AREA_ORDER)}
    ordered = sorted(
        commands,
        key=lambda c: (rank.get(c.area, len(rank)), c.area, _source_position(c), c.name),
    )
    sections: dict[str, list[Command]] = {}
    for command in ordered:
        sections.setdefault(command.area, []).append(command)
    return list(sections.items())


def plugin_commands(module: str, commands: Iterable[Command]) -> list[Command]:
    """The commands whose handlers are written in the plugin `module` (or its submodules)."""
    return [
        c
        for c in commands
        if (own := getattr(c.handler, "__module__", "")) == module or own.startswith(module + ".")
    ]


def plugin_usage(module: str, commands: Iterable[Command] | None = None) -> str:
    """A plugin's usage text, generated from its own registered commands by section."""
    own = plugin_commands(module, registry.commands if commands is None else commands)
    lines: list[str] = []
    for area, members in by_area(own):
        lines.append(f"【{area}】")
        lines += [f"/{c.usage}  {c.summary}" for c in members]
    return "\n".join(lines)


def plugin_metadata(module: str, *, name: str, description: str) -> PluginMetadata:
    """The area plugin's `__plugin_meta__`, its usage generated from the registry. Assign it
    at the end of the plugin's module (`plugin_metadata(__name__, ...)`), after every
    `@command` has run: NoneBot reads `__plugin_meta__` once the module has executed."""
    usage = plugin_usage(module)
    if not usage:
        raise RuntimeError(f"{module}: no commands registered yet; build the metadata last")
    return PluginMetadata(name=name, description=description, usage=usage)


def command(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    role: Role = Role.CUSTOMER,
    usage: str,
    example: str,
    summary: str,
    area: str,
    scope: Scope = Scope.ANY,
    group_gate: bool = True,
    details: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    """Registers the decorated coroutine as the handler of a chat command."""

    def decorate(handler: Handler) -> Handler:
        registry.add(
            Command(
                name=name,
                aliases=aliases,
                handler=handler,
                role=role,
                usage=usage,
                example=example,
                summary=summary,
                area=area,
                scope=scope,
                group_gate=group_gate,
                details=details,
            )
        )
        return handler

    return decorate


def dialogue(
    name: str,
    *,
    area: str,
    usage: str,
    example: str,
    role: Role = Role.CUSTOMER,
    idle_reply: str = "",
) -> Callable[[Handler], Handler]:
    """Registers the handler of a reply inside a pending dialogue (not a command word).
    `role`: who may answer (a dialogue a staff command opened); `idle_reply`: what the
    reply gets in a private chat when nothing waits for it."""

    def decorate(handler: Handler) -> Handler:
        registry.add_dialogue(
            name,
            Command(
                name=name,
                aliases=(),
                handler=handler,
                role=role,
                usage=usage,
                example=example,
                summary="",
                area=area,
                is_dialogue=True,
                idle_reply=idle_reply,
            ),
        )
        return handler

    return decorate


def dialogue_probe(probe: DialogueProbe) -> DialogueProbe:
    """Registers a function that tells whether a message continues one of an area's
    dialogues (see DialogueProbe); the router asks every probe before the command table."""
    registry.add_probe(probe)
    return probe
