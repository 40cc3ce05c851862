"""Writes docs/commands.md, the command reference, from the command registry (the same
table /帮助 is built from), so the reference lists exactly the commands the bot has.

    .venv/bin/python -m tools.commands_doc          # rewrite docs/commands.md
    .venv/bin/python -m tools.commands_doc --check  # exit 1 if it is out of date

tests/plugins/test_hardening.py fails when a registered command is missing from the file."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins._common.registry import Command

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "commands.md"

_ROLE_NAMES = {0: "everyone", 1: "staff and owners", 2: "owners only"}

_INTRO = """\
# Command reference

Every chat command of the shop bot, generated from the command registry by
`python -m tools.commands_doc` (the same table `/帮助` is built from; a test fails when a
command is missing here). Replies are in Chinese.

How commands are typed:

- In a **group**, a command starts with the prefix `/` (or `／`); other messages are
  chatter and get no answer. The shop answers only in groups where the owner or staff sent
  `/启用本群`.
- In a **private chat** the prefix may be left out: `商品` works like `/商品`.
- Arguments are separated by spaces; `<...>` is required, `[...]` optional, `a|b` a choice.
  Ids typed with a Chinese IME (`１２－２`) work.
- `/帮助` lists the commands the asker may use, `/帮助 <命令>` shows one with its example.
- Who may use a command: **everyone** (customers), **staff and owners** (staff are added
  with `/店员 添加`), **owners only** (`SUPERUSERS`). Others get `无权限`.
- In a group the shop never shows a phone number in full, an address beyond the city, or a
  courier's tracking text beyond its state and city; private chats get everything.
- A refused argument is quoted back at most 20 characters long; no answer is longer than
  3000 characters (lists page instead: `/商品 2`, `/订单 待发货 2`).

Item ids and variant refs in the examples (`1`, `1-2`) exist in the demo shop
(`./run demo`; a test checks every example against it); order and ticket codes
(`2K7QH9M3XA`, `7K2M9QH3XA`) are placeholders: use the codes the bot's replies show.
"""


def _command_block(command: Command) -> list[str]:
    lines = [f"### /{command.name}", ""]
    lines.append(f"- Usage: `/{command.usage}`")
    lines.append(f"- Example: `/{command.example}`")
    lines.append(f"- Answers: {command.summary}")
    where = "groups only" if command.scope.value == "group" else "private chats and groups"
    lines.append(f"- Who: {_ROLE_NAMES.get(int(command.role), str(command.role))}; {where}")
    if not command.group_gate:
        lines.append("- Works in groups that have not enabled the shop yet")
    if command.aliases:
        lines.append("- Also: " + ", ".join(f"`/{alias}`" for alias in command.aliases))
    lines += [f"- {detail}" for detail in command.details]
    lines.append("")
    return lines


def render_commands_doc(commands: Iterable[Command], dialogues: Mapping[str, Command]) -> str:
    """The whole reference: sections in /帮助's order (customers' first), then the replies
    inside a dialogue."""
    from plugins._common.registry import by_area

    lines = [_INTRO]
    for area, members in by_area(commands):
        lines += [f"## {area}", ""]
        for command in members:
            lines += _command_block(command)
    lines += [
        "## Replies inside a dialogue",
        "",
        "Typed without a prefix while the bot waits for them (after an order summary,",
        "while it asks for an address, or after `/删除` asks to confirm):",
        "",
    ]
    for name, command in dialogues.items():
        lines.append(f"- `{command.usage}` ({name}), e.g. `{command.example}`")
    return "\n".join(lines).rstrip() + "\n"


def _loaded_registry() -> tuple[list[Command], dict[str, Command]]:
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter

    nonebot.init(driver="~fastapi+~websockets", log_level="WARNING")
    nonebot.get_driver().register_adapter(Adapter)
    nonebot.load_from_toml(str(ROOT / "pyproject.toml"))
    from plugins._common.registry import registry

    return list(registry.commands), dict(registry.dialogues)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    commands, dialogues = _loaded_registry()
    text = render_commands_doc(commands, dialogues)
    if "--check" in argv:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python -m tools.commands_doc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC} ({len(commands)} commands)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
