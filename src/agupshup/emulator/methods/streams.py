"""The public read methods: public stream, a group's last message, stream and info.

Rules this module enforces:

* Only public, enabled groups are readable here: unknown and disabled groups are "invalid"
  (2); private ones are 112 (``groups.getMessage`` says 2, as the widget does).
* ``from`` and ``range`` are checked for type (110) before value (111 for ``from`` < 0, then the
  method's range code), ``from`` before ``range``.
* ``gupshup.getPublicStream`` skips adult messages, and every message of an adult group, unless
  ``skipAdult`` is false.
* ``arrivals_per_read`` (config) posts that many messages into a group before each
  ``groups.getStream`` read of it that would succeed: a stream moving faster than it is read.
"""

from __future__ import annotations

from agupshup.emulator.context import Ctx, Result
from agupshup.emulator.methods.records import group_node, message_node, messages_node
from agupshup.emulator.state import Group, newest_first

__all__ = ["get_info", "get_message", "get_public_stream", "get_stream"]


def _window(ctx: Ctx, range_code: int) -> tuple[int, int]:
    start = ctx.integer("from", 0)
    count = ctx.integer("range", 15)
    if start < 0:
        ctx.fail(111, "from", ">= 0")
    if not 1 <= count <= 15:
        ctx.fail(range_code)
    return start, count


def _public_group(ctx: Ctx, private_code: int) -> Group:
    group = ctx.group("group", 2, visible_only=True)
    if group.private:
        ctx.fail(private_code, ctx.name)
    return group


def get_public_stream(ctx: Ctx) -> Result:
    start = ctx.integer("from", 0)
    count = ctx.integer("range", 15)
    skip_adult = ctx.boolean("skipAdult", True)
    if start < 0:
        ctx.fail(111, "from", ">= 0")
    if not 1 <= count <= 15:
        ctx.fail(1)
    messages = ctx.site.world.public_stream(start, count, skip_adult)
    return Result({"messages": messages_node(messages)})


def get_message(ctx: Ctx) -> Result:
    ctx.require("group")
    group = _public_group(ctx, 2)
    if not group.messages:
        return Result({})
    return Result({"message": message_node(group.messages[-1])})


def get_stream(ctx: Ctx) -> Result:
    ctx.require("group")
    start, count = _window(ctx, 3)
    group = _public_group(ctx, 112)
    _arrive(ctx, group)
    return Result({"messages": messages_node(newest_first(group.messages, start, count))})


def _arrive(ctx: Ctx, group: Group) -> None:
    """The ``arrivals_per_read`` knob: new messages land just before the read."""
    world = ctx.site.world
    for n in range(ctx.site.config.arrivals(group.name)):
        world.post(group, f"arrival {len(group.messages) + 1}.{n}", group.owner, ctx.now_ms)


def get_info(ctx: Ctx) -> Result:
    ctx.require("group")
    group = _public_group(ctx, 112)
    return Result({"group": group_node(group, ctx.site.world)})
