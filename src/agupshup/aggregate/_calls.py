"""What the follower uses of a client, what it takes, and what the client's errors mean.

* **Faults.** Only the user's deadline or cancel, a closed client, or an error about the user's
  own input (bad credentials, a bad URL, a bad argument: :data:`FATAL`) ends a follow; a
  group's own stream that refuses to be read (:data:`UNREADABLE`) drops that group alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar

from agupshup import errors as E
from agupshup.clock import Clock
from agupshup.models import Group, Message, QuotaWindow
from agupshup.planner import Mode, UnreadableGroups

log = logging.getLogger("agupshup.aggregate")
T = TypeVar("T")

#: What to do with a group that turns unreadable: call this, or ``"raise"`` it from the next
#: ``anext()`` (the follow goes on when iterated again), or None: a warning in the log.
OnDrop = Callable[[UnreadableGroups], None] | Literal["raise"] | None
#: Where a follow starts: ``"now"`` (new messages only) or a message id (every later one).
Start = Literal["now"] | int
#: Errors that end a follow: the user's own input, or a closed client.
FATAL: tuple[type[BaseException], ...] = (
    E.Closed, E.ValidationError, E.InvalidRequest, E.AuthenticationError, E.HTTPRefused,
)
#: Errors of a group's own stream that say the group cannot be read.
UNREADABLE: tuple[type[BaseException], ...] = (E.PrivateGroup, E.GroupNotFound, E.GroupDisabled)


class FollowCalls(Protocol):
    """What the follower uses of a client (:class:`~agupshup.Client` has it)."""

    clock: Clock

    def quota(self) -> list[QuotaWindow]: ...

    async def get_joined_groups(self, start: int = ..., count: int = ...) -> list[Group]: ...

    async def get_joined_groups_stream(
        self, start: int = ..., count: int = ...
    ) -> list[Message]: ...

    async def get_public_stream(
        self, start: int = ..., count: int = ..., *, skip_adult: bool = ...
    ) -> list[Message]: ...

    async def get_stream(self, group: str, start: int = ..., count: int = ...) -> list[Message]: ...


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not just a task it awaits)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

def _why(exc: BaseException, mode: Mode) -> str:
    if isinstance(exc, E.GroupNotFound):
        return "no such group"
    if isinstance(exc, E.GroupDisabled):
        return "disabled"
    return "private, and not joined" if mode == "plan" else "private"


def _public(group: Group | None) -> bool | None:
    return None if group is None else not group.private


def _stamps(page: Sequence[Message]) -> list[tuple[str, float]]:
    return [(m.group_name.lower(), m.timestamp / 1000) for m in page]
