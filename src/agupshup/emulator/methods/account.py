"""Login, logout and a user's own lists (protocol.md §5, §6).

Rules this module enforces:

* ``users.login`` spends the challenge it names before anything else is checked (even a 107 or
  a 109 spends it): :func:`spend_challenge` runs as the method's prelude.
* Login checks phone (2), country code (120), then the challenge (121), the phone's account and
  password (121 for both, so phones cannot be probed), activation (122), and only then whether
  it is disabled (123).
* ``users.logout`` always succeeds: an unknown token is already logged out.
* ``users.getMyGroups`` lists owned groups (any state), ``users.getJoinedGroups`` the groups a
  user subscribed to without owning them, both in creation order; the joined stream merges
  their messages newest first.
"""

from __future__ import annotations

import re

from agupshup.emulator.context import Ctx, Result
from agupshup.emulator.methods.records import groups_node, messages_node

__all__ = [
    "get_challenge",
    "get_joined_groups",
    "get_joined_groups_stream",
    "get_my_groups",
    "login",
    "logout",
    "spend_challenge",
]

_TEN_DIGITS = re.compile(r"[0-9]{10}")


def get_challenge(ctx: Ctx) -> Result:
    sessions = ctx.site.sessions
    return Result({"salt": sessions.salt, "challenge": sessions.new_challenge(ctx.now)})


def spend_challenge(ctx: Ctx) -> None:
    """Prelude of ``users.login``: any attempt naming a challenge spends it."""
    challenge = ctx.params.get("challenge")
    alive = challenge is not None and ctx.site.sessions.spend_challenge(challenge, ctx.now)
    ctx.notes["challenge_alive"] = alive


def login(ctx: Ctx) -> Result:
    ctx.require("phone", "countryCode", "challenge", "rand")
    phone = ctx.value("phone")
    if not _TEN_DIGITS.fullmatch(phone):
        ctx.fail(2)
    if ctx.value("countryCode").removeprefix("+") != "91":
        ctx.fail(120)
    if not ctx.notes.get("challenge_alive"):
        ctx.fail(121)
    user = ctx.site.world.users.get(phone)
    # An unencoded "+" arrives as a space (even a leading or trailing one): base64 has none.
    rand = (ctx.params.raw("rand") or "").replace(" ", "+").strip()
    if user is None or not ctx.site.sessions.verify(user.password, ctx.value("challenge"), rand):
        ctx.fail(121)
    if not user.activated:
        ctx.fail(122)
    if user.disabled:
        ctx.fail(123)
    return Result({"token": ctx.site.sessions.issue_token(phone, ctx.now)})


def logout(ctx: Ctx) -> Result:
    ctx.require("token")
    ctx.site.sessions.logout(ctx.value("token"))
    return Result({})


def get_my_groups(ctx: Ctx) -> Result:
    ctx.require("token")
    start = ctx.integer("from", 0)
    count = ctx.integer("range", 15)
    if start < 0:
        ctx.fail(111, "from", ">= 0")
    if not 1 <= count <= 30:
        ctx.fail(111, "range", "1-30")
    phone = ctx.token_phone(6)
    owned = ctx.site.world.owned(phone)[start : start + count]
    return Result({"groups": groups_node(owned, ctx.site.world)})


def _joined_window(ctx: Ctx) -> tuple[int, int]:
    ctx.require("token")
    return ctx.list_window()


def get_joined_groups(ctx: Ctx) -> Result:
    start, count = _joined_window(ctx)
    phone = ctx.token_phone(1)
    joined = ctx.site.world.joined(phone)[start : start + count]
    return Result({"groups": groups_node(joined, ctx.site.world)})


def get_joined_groups_stream(ctx: Ctx) -> Result:
    start, count = _joined_window(ctx)
    phone = ctx.token_phone(1)
    return Result({"messages": messages_node(ctx.site.world.joined_stream(phone, start, count))})
