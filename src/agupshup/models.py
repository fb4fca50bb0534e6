"""The records of the API, as msgspec Structs.

Rules this module enforces:

* Models are pure data: frozen, hashable, no I/O, no behaviour beyond derived properties.
* Field names are Python's; the wire's camelCase names are the ``rename="camel"`` of each
  field, so the JSON decoder fills these Structs straight from bytes.
* Times are epoch milliseconds (``int``) as on the wire; ``.time`` gives an aware datetime.
* Fields a lenient server might omit have defaults; identities (``id``, ``group_name``) do not.
* Models hold only scalars and tuples of models, so they can never be part of a reference
  cycle: they are created untracked by the garbage collector (``gc=False``), which keeps a
  page of 15 messages from feeding the collector 15 more objects to scan.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

__all__ = [
    "Challenge",
    "ErrorDetail",
    "FailedInvite",
    "Group",
    "InviteResult",
    "Lane",
    "Message",
    "QuotaWindow",
    "Reply",
    "ReplyResult",
    "SubscribeTicket",
    "ThrottleTag",
    "format_ms",
    "human_duration",
    "human_wall",
]


#: Which queue a call waits in: ``interactive`` calls (posts, replies, logins) go before
#: ``bulk`` ones (reads, pages). Defined here, below both the wire (which tags each method with
#: its lane) and the throttle (which schedules by it), since the throttle may not import the wire.
Lane = Literal["interactive", "bulk"]


class _Model(msgspec.Struct, frozen=True, rename="camel", kw_only=True, gc=False):
    pass


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def format_ms(ms: int, fmt: str, unknown: str = "") -> str:
    """A wire time (epoch ms) as UTC in ``fmt``; ``unknown`` for 0 or less, which a server
    sends for a time it does not know. The CLI and the widget both show times through this."""
    return unknown if ms <= 0 else _ms_to_datetime(ms).strftime(fmt)


def human_duration(seconds: float) -> str:
    """``6.0s``, ``45s``, ``12 min``, ``2 h 5 min``, ``24 h``: read at a glance, never as
    ``86410s`` (which a hurried reader takes for ten seconds)."""
    seconds = max(0.0, seconds)
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    if seconds < 90:
        return f"{seconds:.0f}s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours >= 10 or minutes == 0:
        return f"{round(seconds / 3600)} h"
    return f"{hours} h {minutes} min"


def human_wall(at: datetime, now: datetime | None = None) -> str:
    """``at`` in local time: ``13:48:34`` today, ``Sun 13:48 UTC tomorrow`` or ``Sun 7 Dec
    13:48 UTC`` later, so that a day away never reads as a time today."""
    local = at.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    if local.date() == today:
        return f"{local:%H:%M:%S}"
    zone = local.tzname() or ""
    days = (local.date() - today).days
    if days == 1:
        return f"{local:%a %H:%M} {zone} tomorrow".replace("  ", " ")
    return f"{local:%a} {local.day} {local:%b %H:%M} {zone}".rstrip()


class ThrottleTag(_Model, frozen=True):
    """A throttle window the server says is at or past its warn value (``count`` includes us)."""

    period: str
    count: int
    warn: int = 0
    limit: int = 0


class ErrorDetail(_Model, frozen=True):
    """One ``error`` tag: what failed and why."""

    code: int
    msg: str = ""


class Message(_Model, frozen=True):
    """A message posted to a group."""

    id: int
    group_name: str = ""
    text: str = ""
    sender: str = ""
    timestamp: int = 0
    adult: bool = False

    @property
    def time(self) -> datetime:
        return _ms_to_datetime(self.timestamp)


class Group(_Model, frozen=True):
    """A group's public details."""

    group_name: str
    description: str = ""
    owner: str = ""
    num_posts: int = 0
    num_members: int = 0
    private: bool = False
    adult: bool = False
    created_on: int = 0

    @property
    def created(self) -> datetime:
        return _ms_to_datetime(self.created_on)


class Reply(_Model, frozen=True):
    """A reply: posted from ``from_group`` to ``group_name``."""

    id: int
    group_name: str = ""
    from_group: str = ""
    text: str = ""
    sender: str = ""
    timestamp: int = 0
    hidden: bool = False

    @property
    def time(self) -> datetime:
        return _ms_to_datetime(self.timestamp)


class FailedInvite(_Model, frozen=True):
    """A phone number that could not be invited, and why."""

    phone: str
    code: int = 0
    msg: str = ""


class ReplyResult(_Model, frozen=True):
    """``groups.postReply``: one reply per delivered destination; ``failed`` on partial (157)."""

    status: Literal["success", "partial"]
    replies: tuple[Reply, ...] = ()
    failed: tuple[ErrorDetail, ...] = ()

    @property
    def partial(self) -> bool:
        return self.status == "partial"


class InviteResult(_Model, frozen=True):
    """``groups.inviteFriends``: who was invited (91 + 10 digits) and who was not (162)."""

    status: Literal["success", "partial"]
    invited: tuple[str, ...] = ()
    failed: tuple[FailedInvite, ...] = ()

    @property
    def partial(self) -> bool:
        return self.status == "partial"


class Challenge(_Model, frozen=True):
    """``users.getChallenge``: the site-wide salt and a single-use challenge."""

    salt: str
    challenge: str


class SubscribeTicket(_Model, frozen=True):
    """Phase I of a subscription: pass it, with the texted code, to phase II."""

    phone: str
    group: str
    token: str = msgspec.field(default="")

    def __repr__(self) -> str:
        return f"SubscribeTicket(phone={self.phone!r}, group={self.group!r}, token=<redacted>)"


class QuotaWindow(_Model, frozen=True):
    """One throttle window as the local scheduler sees it."""

    period: str
    length: float
    limit: int
    used: int
    #: ``Clock.monotonic()`` time at which one more call fits (now, if it fits now).
    free_at: float
    held_until: float | None = None
    #: The same for a person: real seconds from now until one more call fits (0: now), and
    #: that moment on the wall clock (UTC; ``None`` only when built by hand).
    free_in: float = 0.0
    free_wall: datetime | None = None

    def __repr__(self) -> str:
        # ``print(client.quota())`` is read by people: no raw floats such as -1.3e-06.
        return f"QuotaWindow({self.describe()})"

    def describe(self) -> str:
        """``minute 3/30 used, room now`` or ``…, next call in 12 min (at 13:48:34)``."""
        state = "room now"
        if self.free_in > 0:
            at = "" if self.free_wall is None else f" (at {human_wall(self.free_wall)})"
            why = " (held after a 113)" if self.held_until is not None else ""
            state = f"next call in {human_duration(self.free_in)}{at}{why}"
        return f"{self.period} {self.used}/{self.limit} used, {state}"
