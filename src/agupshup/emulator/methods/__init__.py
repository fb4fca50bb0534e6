"""The method table: every API method, its default format and its handler (protocol.md §5).

Rules this module enforces:

* Method names are matched case-insensitively; ``groups.subscribeToken`` is an alias of
  ``groups.subscribeGroupToken`` (both phases share the method).
* Each method names its default ``format``; a ``prelude`` runs before any parameter check
  (``users.login`` spends its challenge there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agupshup.emulator.context import Ctx, Result
from agupshup.emulator.envelope import Format
from agupshup.emulator.methods import account, membership, posting, streams

__all__ = ["METHODS", "MethodSpec", "resolve"]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    default_format: Format
    handler: Callable[[Ctx], Result]
    prelude: Callable[[Ctx], None] | None = None

    @property
    def key(self) -> str:
        return self.name.lower()


_SPECS = (
    MethodSpec("gupshup.getPublicStream", "xml", streams.get_public_stream),
    MethodSpec("groups.getMessage", "xml", streams.get_message),
    MethodSpec("groups.getStream", "xml", streams.get_stream),
    MethodSpec("groups.getInfo", "xml", streams.get_info),
    MethodSpec("groups.subscribeGroupToken", "xml", membership.subscribe),
    MethodSpec("users.getChallenge", "json", account.get_challenge),
    MethodSpec("users.login", "json", account.login, account.spend_challenge),
    MethodSpec("groups.postMessage", "json", posting.post_message),
    MethodSpec("users.getMyGroups", "json", account.get_my_groups),
    MethodSpec("users.logout", "json", account.logout),
    MethodSpec("users.getJoinedGroups", "json", account.get_joined_groups),
    MethodSpec("users.getJoinedGroupsStream", "json", account.get_joined_groups_stream),
    MethodSpec("groups.postReply", "json", posting.post_reply),
    MethodSpec("groups.getReplies", "json", posting.get_replies),
    MethodSpec("groups.inviteFriends", "json", membership.invite_friends),
)

#: Every method by lower-case name.
METHODS: dict[str, MethodSpec] = {spec.key: spec for spec in _SPECS}
_ALIASES = {"groups.subscribetoken": "groups.subscribegrouptoken"}


def resolve(name: str | None) -> MethodSpec | None:
    """The method called ``name`` (any case, aliases allowed), if there is one."""
    if name is None:
        return None
    key = name.strip().lower()
    return METHODS.get(_ALIASES.get(key, key))
