"""Subscribing phones to groups by SMS, and inviting friends.

Rules this module enforces:

* A call of ``groups.subscribeGroupToken`` naming a ``token`` or a ``confirm`` is phase II;
  otherwise phase I. Phones are Indian mobiles (10 digits starting 6–9, optionally prefixed by
  91); subscriptions are kept under the 10 digits.
* Phase I: phone (2), group unknown or disabled (1), private (10), blocked (3), already a member
  (8), 5 open tickets (5); then a ticket, and an SMS with the code in the outbox.
* Phase II: phone (2), group (1), then the ticket (6 / 7 / 9, see
  :mod:`agupshup.emulator.subscriptions`); success makes the phone a member.
* ``groups.inviteFriends``: group unknown (1), token (6), group not the user's (1); numbers are
  split on commas and normalised to 91 + 10 digits; one number failing alone is 163, none valid
  161, some valid ``partial`` with 162 and a ``failed`` entry (161) per refused number. Every
  invite is an SMS in the outbox.
"""

from __future__ import annotations

import re

from agupshup.emulator.codes import text
from agupshup.emulator.context import Ctx, Result
from agupshup.emulator.envelope import Items, Node
from agupshup.emulator.outbox import SmsRecord
from agupshup.emulator.state import Group

__all__ = ["invite_friends", "normalise_phone", "subscribe"]

_MOBILE = re.compile(r"(?:91)?([6-9][0-9]{9})")


def normalise_phone(raw: str) -> str | None:
    """The 10 digits of an Indian mobile number, or ``None``."""
    match = _MOBILE.fullmatch(raw.strip())
    return match.group(1) if match else None


def subscribe(ctx: Ctx) -> Result:
    if ctx.params.get("token") is not None or ctx.params.get("confirm") is not None:
        return _confirm(ctx)
    ctx.require("phone", "group")
    phone, group = _phone_and_group(ctx)
    if group.private:
        ctx.fail(10)
    if phone in group.blocked:
        ctx.fail(3)
    if phone in group.members:
        ctx.fail(8, phone, group.name)
    subs = ctx.site.subscriptions
    if subs.pending(phone, ctx.now) >= subs.max_pending:
        ctx.fail(5, phone)
    ticket = subs.open(phone, group.name, ctx.now)
    sms = (
        f"Your GupShup confirmation code to join group {group.name} is {ticket.code}. "
        "Enter it where you asked to subscribe."
    )
    ctx.site.outbox.append(SmsRecord(phone, sms, ticket.code, "subscribe", group.name, ctx.now))
    return Result({"token": ticket.token})


def _phone_and_group(ctx: Ctx) -> tuple[str, Group]:
    phone = normalise_phone(ctx.value("phone"))
    if phone is None:
        ctx.fail(2)
    return phone, ctx.group("group", 1, visible_only=True)


def _confirm(ctx: Ctx) -> Result:
    ctx.require("phone", "group", "token", "confirm")
    phone, group = _phone_and_group(ctx)
    verdict = ctx.site.subscriptions.confirm(
        ctx.value("token"), phone, group.name, ctx.value("confirm"), ctx.now
    )
    if verdict != "ok":
        ctx.fail({"token": 6, "code": 7, "dead": 9}[verdict])
    group.members.add(phone)
    return Result({"msg": f"The phone {phone} has been subscribed to group {group.name}."})


def _numbers(raw: str) -> tuple[list[str], list[str]]:
    """(valid numbers as 91 + 10 digits, deduplicated; refused entries as sent)."""
    valid: dict[str, None] = {}
    refused: list[str] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        phone = normalise_phone(entry)
        if phone is None:
            refused.append(entry)
        else:
            valid.setdefault("91" + phone, None)
    return list(valid), refused


def invite_friends(ctx: Ctx) -> Result:
    ctx.require("token", "phoneNumbers")
    named = ctx.group("groupName", 1) if ctx.params.get("groupName") else None
    phone = ctx.token_phone(6)
    owned = ctx.site.world.owned(phone)
    group = named if named is not None else (owned[0] if owned else None)
    if group is None or group.owner != phone:
        ctx.fail(1)
    valid, refused = _numbers(ctx.value("phoneNumbers"))
    if not valid:
        ctx.fail(163 if len(refused) == 1 else 161)
    for number in valid:
        _send_invite(ctx, group, phone, number)
    failed: list[Node] = [
        {"phone": entry, "code": "161", "msg": text(ctx.method, 161)} for entry in refused
    ]
    payload: dict[str, Node] = {
        "invited": Items("phone", list(valid)),
        "failed": Items("entry", failed),
    }
    if not refused:
        return Result(payload)
    return Result(payload, status="partial", errors=[(162, text(ctx.method, 162))])


def _send_invite(ctx: Ctx, group: Group, by: str, number: str) -> None:
    world = ctx.site.world
    world.invite(group, number, by, ctx.now_ms)
    sms = (
        f"{world.display_name(by)} invites you to the GupShup group {group.name}. "
        f"Reply JOIN {group.name} to subscribe."
    )
    ctx.site.outbox.append(SmsRecord(number, sms, None, "invite", group.name, ctx.now))
    ctx.site.stored["invite"] += 1
