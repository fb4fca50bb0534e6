"""Posting messages and replies, and reading replies.

Rules this module enforces:

* Text checks come before the token: non-ASCII (125), then longer than ``max_text`` (126).
* ``groups.postMessage``: unknown group (1), token (6), then not the owner (1), disabled (124),
  the same text as the user's previous post to that group (128), the poster throttle (127, with
  a second ``error`` naming it); ``poster_before_duplicate`` swaps the last two. Only stored
  posts count toward the poster throttle.
* ``groups.postReply``: every ``@group`` in the text is a destination (deduplicated, in order);
  none is 1, nothing else in the text is 156. The source is ``groupName`` or the user's first
  owned group, and must be the user's (1). Destinations fail with 1 (unknown), 124 (disabled) or
  155 (private, unless the user owns it); all failing → those errors; some → ``partial`` with a
  157 per failed destination.
* ``groups.getReplies``: hidden replies only with ``getAll`` (owner's token). ``getAll`` is read
  leniently: only ``true`` (any case) is true. A given token must be valid (153) even without
  ``getAll``.
"""

from __future__ import annotations

import re

from agupshup.emulator.codes import POSTER_THROTTLE_DETAIL, ApiError, Failure, fill, text
from agupshup.emulator.context import Ctx, Result
from agupshup.emulator.envelope import Node, s
from agupshup.emulator.methods.records import replies_node
from agupshup.emulator.state import Group, Reply, newest_first

__all__ = ["get_replies", "post_message", "post_reply"]

_MENTION = re.compile(r"@([A-Za-z0-9_][A-Za-z0-9_.-]*)")


def _check_text(ctx: Ctx, body: str) -> None:
    if not body.isascii():
        ctx.fail(125)
    if len(body) > ctx.site.config.max_text:
        ctx.fail(126, ctx.site.config.max_text)


def _previous_text(group: Group, phone: str) -> str | None:
    for message in reversed(group.messages):
        if message.sender_phone == phone:
            return message.text
    return None


def _check_poster(ctx: Ctx, phone: str) -> None:
    poster = ctx.site.poster
    if poster.full(phone, ctx.now):
        detail = fill(POSTER_THROTTLE_DETAIL, poster.limit, int(poster.window))
        raise ApiError([(127, text(ctx.method, 127)), (127, detail)])


def post_message(ctx: Ctx) -> Result:
    ctx.require("token", "groupName", "text")
    body = ctx.text_value("text")
    _check_text(ctx, body)
    group = ctx.group("groupName", 1)
    phone = ctx.token_phone(6)
    if group.owner != phone:
        ctx.fail(1)
    if group.disabled:
        ctx.fail(124)
    poster_first = ctx.site.config.poster_before_duplicate
    if poster_first:
        _check_poster(ctx, phone)
    if _previous_text(group, phone) == body:
        ctx.fail(128)
    if not poster_first:
        _check_poster(ctx, phone)
    message = ctx.site.world.post(group, body, phone, ctx.now_ms)
    ctx.site.poster.record(phone, ctx.now)
    ctx.site.stored["message"] += 1
    return Result({"id": s(message.id)})


def _mentions(body: str) -> list[str]:
    seen: dict[str, str] = {}
    for match in _MENTION.finditer(body):
        name = match.group(1).rstrip(".-")
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def _source_group(ctx: Ctx, phone: str, named: Group | None) -> Group:
    if named is None:
        owned = ctx.site.world.owned(phone)
        if not owned:
            ctx.fail(1)
        return owned[0]
    if named.owner != phone:
        ctx.fail(1)
    return named


def _destination_failure(ctx: Ctx, name: str, phone: str) -> Failure | None:
    group = ctx.site.world.group(name)
    if group is None:
        return (1, text(ctx.method, 1))
    if group.disabled:
        return (124, text(ctx.method, 124))
    if group.private and group.owner != phone:
        return (155, text(ctx.method, 155))
    return None


def post_reply(ctx: Ctx) -> Result:
    ctx.require("token", "text")
    body = ctx.text_value("text")
    _check_text(ctx, body)
    destinations = _mentions(body)
    if not destinations:
        ctx.fail(1)
    if not _MENTION.sub("", body).strip():
        ctx.fail(156)
    named = ctx.group("groupName", 1) if ctx.params.get("groupName") else None
    phone = ctx.token_phone(6)
    source = _source_group(ctx, phone, named)
    if source.disabled:
        ctx.fail(124)
    delivered: list[Reply] = []
    failed: list[tuple[str, Failure]] = []
    for name in destinations:
        failure = _destination_failure(ctx, name, phone)
        if failure is not None:
            failed.append((name, failure))
            continue
        target = ctx.site.world.group(name)
        assert target is not None
        delivered.append(ctx.site.world.reply(target, source, body, phone, ctx.now_ms))
    ctx.site.stored["reply"] += len(delivered)
    if not delivered:
        raise ApiError(failure for _, failure in failed)
    payload: dict[str, Node] = {"replies": replies_node(delivered)}
    if not failed:
        return Result(payload)
    partial = [(157, text(ctx.method, 157, name, msg)) for name, (_, msg) in failed]
    return Result(payload, status="partial", errors=partial)


def get_replies(ctx: Ctx) -> Result:
    ctx.require("groupName")
    raw_all = ctx.params.get("getAll")
    get_all = raw_all is not None and raw_all.lower() == "true"
    if get_all:
        ctx.require("token")
    start, count = ctx.list_window()
    group = ctx.group("groupName", 1, visible_only=True)
    phone = ctx.token_phone(153) if ctx.params.get("token") else None
    owner = phone == group.owner
    if group.private and not owner:
        ctx.fail(155)
    if get_all and not owner:
        ctx.fail(154)
    replies = group.replies if get_all else [r for r in group.replies if not r.hidden]
    return Result({"replies": replies_node(newest_first(replies, start, count))})
