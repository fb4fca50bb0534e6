"""One polled stream: its head, its open gaps, its schedule.

* **Sources.** The planner (:mod:`agupshup.planner`) covers the followed groups with sources:
  the joined groups' stream, the public stream, or a group's own stream. Each source keeps a
  *head* (every item up to it was read) and open *gaps*, each a :class:`~agupshup.paging.
  Descent`: ids strictly between its ``low`` and ``top`` are not read yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agupshup.models import Message
from agupshup.paging import Descent
from agupshup.planner import Channel


@dataclass(eq=False)
class _Source:
    """One polled stream: its head, its open gaps and its schedule."""

    channel: Channel
    #: Every item with an id up to it was read, but for the gaps; None: not read yet.
    head: int | None = None
    #: Open walks, newest first.
    gaps: list[Descent] = field(default_factory=list)
    interval: float = math.inf
    due: float = 0.0
    polled: float | None = None
    failures: int = 0
    #: A catch-up: the source reads its head once more, walks down, and leaves.
    retiring: bool = False
    #: The head was read since the source was opened (or turned into a catch-up).
    caught: bool = False
    #: A cold shared source walks down to this instead of starting at its head.
    rewind: int | None = None
    #: Read during the poll under way: handed on, oldest first, when it ends (or fails).
    held: list[Message] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.channel.key

    def claim(self) -> int | None:
        """Up to here every item was read (None: nothing is claimed yet)."""
        if self.head is None:
            return None
        return min([self.head, *(g.low for g in self.gaps)])

    def open_gap(self, low: int) -> None:
        """Items above ``low`` up to the head are to be read again (a claim handed over). One
        walk from the lowest point replaces the open ones: repeated hand-overs (a group moving
        back and forth) never pile up copies of one range."""
        assert self.head is not None
        low = min([low, *(g.low for g in self.gaps)])
        if low >= self.head:
            return
        gap = Descent(self.channel.page, low)
        gap.top = self.head + 1
        self.gaps = [gap]

    @property
    def settled(self) -> bool:
        """Read from its head down to its claim: nothing of it is left to read."""
        return self.caught and self.head is not None and not self.gaps

@dataclass(slots=True)
class _Top:
    """A poll's walk down from the head, and what it found."""

    gap: Descent
    fresh: list[Message]
