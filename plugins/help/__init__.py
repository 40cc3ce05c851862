"""/帮助: generated from the command registry, so it never drifts from the real commands."""

from __future__ import annotations

from plugins._common.args import normalise_word
from plugins._common.context import CommandContext, Reply
from plugins._common.dispatch import suggest
from plugins._common.registry import command, plugin_metadata, registry

from . import render


@command(
    "帮助",
    aliases=("help",),
    usage="帮助 [命令]",
    example="帮助 下单",
    summary="查看可用命令；加命令名看用法",
    area="帮助",
)
async def show_help(ctx: CommandContext) -> Reply:
    prefixes = ctx.runtime.prefixes
    word = ctx.args.optional_word()
    ctx.args.end()
    if word is None:
        visible = registry.visible_to(ctx.role)
        return Reply(
            render.overview(visible, prefixes, ctx.runtime.settings.shop_name, ctx.in_group)
        )
    name = normalise_word(word)
    for prefix in prefixes:
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
            break
    target = registry.lookup(name)
    if target is None:
        close = suggest(name, registry.visible_to(ctx.role))
        return Reply(render.unknown_command(name, prefixes, close))
    if target.role > ctx.role:
        # As the command itself answers: it exists, but not for this asker.
        return Reply(render.forbidden_command(target, prefixes))
    return Reply(render.command_help(target, prefixes))


__plugin_meta__ = plugin_metadata(
    __name__, name="帮助", description="列出可用命令，或某个命令的用法和例子"
)
