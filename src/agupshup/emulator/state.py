"""The emulator's world: users, groups, messages, replies and invites.

Rules this module enforces:

* Users are keyed by their 10-digit phone; groups by their lower-cased name (names are matched
  case-insensitively and always reported as created).
* Every message and reply gets the next id of one site-wide sequence, and a timestamp that never
  goes below the previous one, so ids grow with time.
* A group's ``members`` are subscribed phones and include its owner; "joined groups" of a user are
  the groups it is a member of but does not own. ``blocked`` phones may not subscribe.
* Streams are newest first: position 0 is the newest item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Group", "Invite", "Message", "Reply", "User", "World"]

T = TypeVar("T")


@dataclass(slots=True)
class User:
    phone: str
    password: str
    name: str
    activated: bool = True
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    group: str
    text: str
    sender: str
    sender_phone: str
    timestamp: int
    adult: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    group: str
    from_group: str
    text: str
    sender: str
    timestamp: int
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Invite:
    group: str
    phone: str
    by: str
    timestamp: int


@dataclass(slots=True)
class Group:
    name: str
    owner: str
    description: str = ""
    private: bool = False
    adult: bool = False
    disabled: bool = False
    created_on: int = 0
    members: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    messages: list[Message] = field(default_factory=list)  # oldest first
    replies: list[Reply] = field(default_factory=list)  # oldest first
    invites: list[Invite] = field(default_factory=list)

    @property
    def public(self) -> bool:
        return not self.private and not self.disabled


def newest_first(items: list[T], start: int, count: int) -> list[T]:
    """``count`` items of an oldest-first list, from position ``start`` counted from the end."""
    stop = len(items) - start
    if stop <= 0:
        return []
    return items[max(0, stop - count) : stop][::-1]


def newest_matching(items: list[T], keep: Callable[[T], bool], start: int, count: int) -> list[T]:
    """Like :func:`newest_first`, over the items ``keep`` accepts."""
    out: list[T] = []
    skipped = 0
    for item in reversed(items):
        if not keep(item):
            continue
        if skipped < start:
            skipped += 1
            continue
        out.append(item)
        if len(out) >= count:
            break
    return out


class World:
    """Every user, group, message, reply and invite."""

    __slots__ = ("_last_ts", "_next_id", "groups", "timeline", "users")

    def __init__(self, first_id: int = 100_001) -> None:
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        #: Every message of every group, oldest first (ids ascending).
        self.timeline: list[Message] = []
        self._next_id = first_id
        self._last_ts = 0

    # -- users and groups ------------------------------------------------------------------

    def add_user(self, user: User) -> User:
        if user.phone in self.users:
            raise ValueError(f"duplicate user {user.phone}")
        self.users[user.phone] = user
        return user

    def add_group(self, group: Group) -> Group:
        key = group.name.lower()
        if key in self.groups:
            raise ValueError(f"duplicate group {group.name}")
        if group.owner not in self.users:
            raise ValueError(f"group {group.name}: unknown owner {group.owner}")
        group.members.add(group.owner)
        self.groups[key] = group
        return group

    def group(self, name: str) -> Group | None:
        return self.groups.get(name.strip().lower())

    def display_name(self, phone: str) -> str:
        user = self.users.get(phone)
        return user.name if user else phone[:2] + "XXXXXX" + phone[-2:]

    def owned(self, phone: str) -> list[Group]:
        """The groups ``phone`` owns, in creation order."""
        return [g for g in self.groups.values() if g.owner == phone]

    def joined(self, phone: str) -> list[Group]:
        """The groups ``phone`` is a member of without owning them, in creation order."""
        return [g for g in self.groups.values() if phone in g.members and g.owner != phone]

    # -- posting ---------------------------------------------------------------------------

    def post(
        self, group: Group, text: str, sender_phone: str, now_ms: int, *, adult: bool = False
    ) -> Message:
        ident, ts = self._stamp(now_ms)
        message = Message(
            ident,
            group.name,
            text,
            self.display_name(sender_phone),
            sender_phone,
            ts,
            adult or group.adult,
        )
        group.messages.append(message)
        self.timeline.append(message)
        return message

    def reply(
        self,
        to: Group,
        source: Group,
        text: str,
        sender_phone: str,
        now_ms: int,
        *,
        hidden: bool = False,
    ) -> Reply:
        ident, ts = self._stamp(now_ms)
        reply = Reply(
            ident, to.name, source.name, text, self.display_name(sender_phone), ts, hidden
        )
        to.replies.append(reply)
        return reply

    def invite(self, group: Group, phone: str, by: str, now_ms: int) -> Invite:
        invite = Invite(group.name, phone, by, now_ms)
        group.invites.append(invite)
        return invite

    def _stamp(self, now_ms: int) -> tuple[int, int]:
        ident = self._next_id
        self._next_id += 1
        self._last_ts = max(self._last_ts, now_ms)
        return ident, self._last_ts

    # -- reading ---------------------------------------------------------------------------

    def public_stream(self, start: int, count: int, skip_adult: bool) -> list[Message]:
        def visible(m: Message) -> bool:
            group = self.groups[m.group.lower()]
            return group.public and not (skip_adult and (m.adult or group.adult))

        return newest_matching(self.timeline, visible, start, count)

    def joined_stream(self, phone: str, start: int, count: int) -> list[Message]:
        names = {g.name for g in self.joined(phone)}
        return newest_matching(self.timeline, lambda m: m.group in names, start, count)

    def messages(self) -> Iterator[Message]:
        """Every message, newest first."""
        return reversed(self.timeline)

    def all_replies(self) -> Iterable[Reply]:
        for group in self.groups.values():
            yield from group.replies
