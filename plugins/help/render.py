"""Every reply text of the help plugin."""

from __future__ import annotations

from plugins._common.context import display_prefix, usage_line
from plugins._common.registry import Command, by_area
from services.limits import quote
from services.staff import Role


def overview(
    commands: list[Command], prefixes: tuple[str, ...], shop_name: str, in_group: bool
) -> str:
    prefix = display_prefix(prefixes)
    lines = [f"{shop_name} 可用命令："]
    for area, members in by_area(commands):
        lines.append(f"【{area}】")
        lines += [f"{prefix}{c.usage}  {c.summary}" for c in members]
    lines.append(f"发 {prefix}帮助 <命令> 查看用法和例子，如 {prefix}帮助 详情")
    if not in_group:
        lines.append("私聊时命令前的 / 可以省略。")
    return "\n".join(lines)


def command_help(command: Command, prefixes: tuple[str, ...]) -> str:
    prefix = display_prefix(prefixes)
    lines = [f"{prefix}{command.name}：{command.summary}", usage_line(command, prefixes)]
    lines += list(command.details)
    if command.aliases:
        lines.append("也可以用：" + "、".join(prefix + a for a in command.aliases))
    return "\n".join(lines)


def unknown_command(word: str, prefixes: tuple[str, ...], close: Command | None = None) -> str:
    prefix = display_prefix(prefixes)
    guess = f"是不是想看 {prefix}帮助 {close.name}？" if close is not None else ""
    return f"没有{quote(word)}这个命令。{guess}发 {prefix}帮助 查看全部命令。"


def forbidden_command(command: Command, prefixes: tuple[str, ...]) -> str:
    """Agrees with what the command itself answers such an asker (dispatch's 无权限)."""
    prefix = display_prefix(prefixes)
    who = "店主" if command.role >= Role.OWNER else "店主/店员"
    return f"无权限：{prefix}{command.name} 是{who}命令。发 {prefix}帮助 查看你可用的命令。"
