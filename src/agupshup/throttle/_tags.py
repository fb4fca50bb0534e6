"""The tag interpreter: what a server's answer teaches the scheduler.

Rules this module enforces:

* A throttle tag is matched to a window by its ``limit``; when several windows share that
  limit, or none has it, by its name. A tag matched by name only, or by nothing, is noted once
  (per name and limit); one that matches nothing is ignored.
* Each matched tag is a count the ledger learns (window index, count); a count at or past the
  window's ``warn`` is a warning.
* A 113 (``limited``) holds every caller for the windows its tags name, or, naming none, the
  shortest window.
* Pure: tags in, a :class:`Reading` out. No I/O, no clock, no logging (the scheduler reports).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from agupshup.models import ThrottleTag

from ._report import label
from ._windows import Window

__all__ = ["Reading", "TagInterpreter"]


class Reading(NamedTuple):
    """What one answer says."""

    #: (window index, the server's count) for each tag matched to a window.
    learned: list[tuple[int, int]]
    #: Windows a 113 holds every caller for (empty when the call was not refused).
    held: list[int]
    #: (window index, count) of the learned counts at or past the window's warn count.
    warnings: list[tuple[int, int]]
    #: Tags that matched by name only, or not at all, not noted before: what to log.
    notes: list[str]


class TagInterpreter:
    """Reads throttle tags against one set of windows; remembers which oddities it noted."""

    __slots__ = ("_by_limit", "_by_name", "_noted", "_windows")

    def __init__(self, windows: Sequence[Window]) -> None:
        self._windows = tuple(windows)
        self._by_name = {label(w): i for i, w in enumerate(self._windows)}
        self._by_limit: dict[int, list[int]] = {}
        for i, w in enumerate(self._windows):
            self._by_limit.setdefault(w.limit, []).append(i)
        self._noted: set[tuple[str, int]] = set()

    def read(self, tags: Sequence[ThrottleTag], limited: bool) -> Reading:
        """What ``tags`` teach; ``limited`` when the server answered 113."""
        notes: list[str] = []
        learned = [(i, t.count) for t in tags if (i := self._window_of(t, notes)) is not None]
        warnings = [(i, c) for i, c in learned if c >= self._windows[i].warn]
        held: list[int] = []
        if limited:
            held = sorted({i for i, _ in learned}) or [self._shortest()]
        return Reading(learned, held, warnings, notes)

    def _shortest(self) -> int:
        return min(range(len(self._windows)), key=lambda i: self._windows[i].length)

    def _window_of(self, tag: ThrottleTag, notes: list[str]) -> int | None:
        """The window a tag speaks of: the one with its limit, else the one of its name."""
        same = self._by_limit.get(tag.limit, [])
        if len(same) == 1:
            return same[0]
        named = self._by_name.get(tag.period)
        if named is not None and (named in same or not same):
            if not same:
                self._note(tag, notes, f"matched by name only: the server's limit is "
                                       f"{tag.limit}, this window's {self._windows[named].limit}")
            return named
        self._note(tag, notes, "matches no window (by limit or name); ignored")
        return None

    def _note(self, tag: ThrottleTag, notes: list[str], detail: str) -> None:
        if (tag.period, tag.limit) not in self._noted:
            self._noted.add((tag.period, tag.limit))
            notes.append(f"throttle tag {tag.period!r} (limit {tag.limit}) {detail}")
