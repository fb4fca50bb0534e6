"""Records as envelope nodes (protocol.md §4).

Rules this module enforces:

* Field names and order are those of protocol.md §4; every value is a string; times are epoch ms.
* ``sender`` and ``owner`` are display names, never phone numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

from agupshup.emulator.envelope import Items, Node, s
from agupshup.emulator.state import Group, Message, Reply, World

__all__ = ["group_node", "groups_node", "message_node", "messages_node", "replies_node"]


def message_node(m: Message) -> dict[str, Node]:
    return {
        "id": s(m.id),
        "groupName": m.group,
        "text": m.text,
        "sender": m.sender,
        "timestamp": s(m.timestamp),
        "adult": s(m.adult),
    }


def group_node(g: Group, world: World) -> dict[str, Node]:
    return {
        "groupName": g.name,
        "description": g.description,
        "owner": world.display_name(g.owner),
        "numPosts": s(len(g.messages)),
        "numMembers": s(len(g.members)),
        "private": s(g.private),
        "adult": s(g.adult),
        "createdOn": s(g.created_on),
    }


def reply_node(r: Reply) -> dict[str, Node]:
    return {
        "id": s(r.id),
        "groupName": r.group,
        "fromGroup": r.from_group,
        "text": r.text,
        "sender": r.sender,
        "timestamp": s(r.timestamp),
        "hidden": s(r.hidden),
    }


def messages_node(messages: Iterable[Message]) -> Items:
    return Items("message", [message_node(m) for m in messages])


def groups_node(groups: Iterable[Group], world: World) -> Items:
    return Items("group", [group_node(g, world) for g in groups])


def replies_node(replies: Iterable[Reply]) -> Items:
    return Items("reply", [reply_node(r) for r in replies])
