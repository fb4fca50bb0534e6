"""Cursors and checkpoints: where a stream stands, and when that is saved.

Rules this module enforces:

* A :class:`Cursor` is small, immutable and serialisable (``to_json``/``from_json``). It names
  its stream (``source``) and says what has been yielded: for id-ordered streams every item with
  ``oldest <= id <= newest`` (phase ``backlog``: history older than ``oldest`` still to walk;
  phase ``live``: history done, everything up to ``newest`` yielded). Lists without ids keep the
  position and the lower-cased names yielded.
* A :class:`MergedCursor` is one cursor per stream of a merged stream.
* A stream saves to its :class:`Checkpoint` only what the consumer has acknowledged — by asking
  for the next item, by leaving ``async with`` without an exception, or by ``commit()`` — never
  an item it may still be processing (an exception, a cancellation or a bare ``aclose()`` leave
  the last item unacknowledged). So after a crash, resuming from the store loses nothing, and
  re-emits at most the items yielded since the last save: the un-checkpointed window, at most
  ``every`` items (the last one possibly unacknowledged among them) or ``interval`` seconds.
* A store keeps opaque JSON strings by key (:class:`CheckpointStore`). The stores themselves
  (memory, SQLite, Redis) live in :mod:`agupshup.checkpoint_stores`, and stay importable from
  here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import msgspec

# The stores are re-exported: users import them from here.
from agupshup.checkpoint_stores import (
    MemoryCheckpointStore,
    RedisCheckpointStore,
    SqliteCheckpointStore,
)
from agupshup.clock import Clock
from agupshup.paging import IdState, NameState, Phase

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "Checkpointer",
    "Cursor",
    "FollowCursor",
    "MemoryCheckpointStore",
    "MergedCursor",
    "RedisCheckpointStore",
    "SqliteCheckpointStore",
]

CURSOR_VERSION = 1


class Cursor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where one stream stands. ``to_json()`` → e.g.
    ``{"source":"group:jumpy","phase":"live","newest":100180,"oldest":100061}``."""

    #: The stream: ``public``, ``public+adult``, ``group:<name>``, ``replies:<name>``,
    #: ``replies+hidden:<name>``, ``joined-stream``, ``my-groups``, ``joined-groups``.
    source: str
    phase: Phase = "backlog"
    #: Largest id yielded.
    newest: int | None = None
    #: Smallest id yielded while walking the backlog.
    oldest: int | None = None
    #: Backlog position to read next (a hint: shifted items are recognised by id).
    offset: int = 0
    #: Lists without ids: the lower-cased names yielded.
    seen: tuple[str, ...] = ()
    v: int = CURSOR_VERSION

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> Cursor:
        return _decode(cls, data)

    @classmethod
    def of(cls, source: str, state: IdState | NameState) -> Cursor:
        if isinstance(state, IdState):
            return cls(
                source=source,
                phase=state.phase,
                newest=state.newest,
                oldest=state.oldest,
                offset=state.offset,
            )
        return cls(
            source=source, phase=state.phase, offset=state.offset, seen=tuple(sorted(state.seen))
        )

    def id_state(self) -> IdState:
        return IdState(self.phase, self.newest, self.oldest, self.offset)

    def name_state(self) -> NameState:
        return NameState(self.phase, self.offset, set(self.seen))


class MergedCursor(msgspec.Struct, frozen=True, kw_only=True):
    """The cursors of a merged stream, by lower-cased group name."""

    streams: dict[str, Cursor] = msgspec.field(default_factory=dict)
    v: int = CURSOR_VERSION

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> MergedCursor:
        return _decode(cls, data)


FOLLOW_CURSOR_VERSION = 2
#: The key under which version 1 of the follower's cursor kept the ids yielded above its floor.
_V1_YIELDED = "*yielded"


class FollowCursor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where a follow of many groups stands (the one follow engine's checkpoint), e.g.
    ``{"heads":{"joined-stream":100180},"floor":100180,"yielded":[100200],"v":2}``.

    Every item of a source with an id up to its head has been handed out, except the ids
    strictly inside one of its ``gaps`` (``[low, top]`` pairs). ``yielded``: ids above ``floor``
    handed out (so that a source read again from below them does not repeat them).
    ``starts``: groups whose source was not read yet, and the id after which each starts.
    """

    heads: dict[str, int] = msgspec.field(default_factory=dict)
    gaps: dict[str, tuple[tuple[int, int], ...]] = msgspec.field(default_factory=dict)
    floor: int = 0
    yielded: tuple[int, ...] = ()
    #: Followed groups whose source was not read yet, and the id each starts after.
    starts: dict[str, int] = msgspec.field(default_factory=dict)
    v: int = FOLLOW_CURSOR_VERSION

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> FollowCursor:
        """Reads this version and both cursors of version 1: the planned follower's
        (per-source, with ``*yielded``) and ``merged_stream``'s (one cursor per group)."""
        raw = msgspec.json.decode(data)
        if isinstance(raw, dict) and "streams" in raw:
            return cls.from_merged(MergedCursor.from_json(data))
        cursor = msgspec.json.decode(data, type=cls)
        if cursor.v != FOLLOW_CURSOR_VERSION:
            raise ValueError(f"follow cursor version {cursor.v} is not {FOLLOW_CURSOR_VERSION}")
        return cursor

    @classmethod
    def from_merged(cls, old: MergedCursor) -> FollowCursor:
        """Version 1 in this version's terms: nothing it covered is handed out again."""
        yielded = old.streams.get(_V1_YIELDED)
        if yielded is not None:  # the planned follower's
            return cls(heads={k: c.newest or 0 for k, c in old.streams.items()
                              if k != _V1_YIELDED},
                       floor=yielded.newest or 0,
                       yielded=tuple(int(i) for i in yielded.seen))
        heads: dict[str, int] = {}
        gaps: dict[str, tuple[tuple[int, int], ...]] = {}
        for c in old.streams.values():  # merged_stream's: one group's own stream each
            if c.newest is None:
                continue  # nothing yielded: the group starts as the follow does
            heads[c.source] = c.newest
            if c.phase == "backlog" and c.oldest is not None:
                gaps[c.source] = ((0, c.oldest),)  # its history below the oldest yielded
        lows = [low for pairs in gaps.values() for low, _ in pairs]
        return cls(heads=heads, gaps=gaps, floor=min([*heads.values(), *lows], default=0))


_C = TypeVar("_C", Cursor, MergedCursor)


def _decode(kind: type[_C], data: str | bytes) -> _C:
    """Decode a cursor; a malformed one (``msgspec.DecodeError``) or one of another version is a
    ``ValueError``."""
    cursor = msgspec.json.decode(data, type=kind)
    if cursor.v != CURSOR_VERSION:
        raise ValueError(f"cursor version {cursor.v} is not {CURSOR_VERSION}")
    return cursor


# -- stores -----------------------------------------------------------------------------------


class CheckpointStore(Protocol):
    """Keeps one JSON string per key."""

    async def load(self, key: str) -> str | None: ...

    async def save(self, key: str, value: str) -> None: ...

    async def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Save a stream's acknowledged cursor to ``store`` under ``key``.

    A save happens when ``every`` items have been acknowledged since the last one, or
    ``interval`` seconds (client clock) have passed with at least one, and when the stream ends
    or is closed. ``key`` defaults to the stream's source.
    """

    store: CheckpointStore
    key: str | None = None
    every: int = 100
    interval: float | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("every must be >= 1")


class Checkpointer:
    """The acknowledgement bookkeeping of one stream against its :class:`Checkpoint`."""

    def __init__(self, checkpoint: Checkpoint, key: str, clock: Clock) -> None:
        self.checkpoint = checkpoint
        self.key = checkpoint.key or key
        self.clock = clock
        self._acked: Cursor | MergedCursor | None = None
        self._unsaved = 0
        self._out = False
        self._saved_at = clock.monotonic()
        self._last: str | None = None

    async def load(self) -> str | None:
        self._last = await self.checkpoint.store.load(self.key)
        return self._last

    def sent(self) -> None:
        """An item went out to the consumer."""
        self._out = True

    async def acknowledge(
        self, cursor: Callable[[], Cursor | MergedCursor], *, force: bool = False
    ) -> None:
        """Everything sent so far is processed (``cursor()`` covers it); save when due."""
        if not (self._out or force):
            return
        self._out = False
        self._acked = cursor()
        self._unsaved += 1
        interval = self.checkpoint.interval
        if self._unsaved >= self.checkpoint.every or (
            interval is not None and self.clock.monotonic() - self._saved_at >= interval
        ):
            await self.flush()

    async def flush(self) -> None:
        """Save the acknowledged cursor, if it is not saved yet."""
        if self._acked is None or self._unsaved == 0:
            return
        value = self._acked.to_json()
        if value != self._last:
            await self.checkpoint.store.save(self.key, value)
            self._last = value
        self._unsaved = 0
        self._saved_at = self.clock.monotonic()

    async def close(self, cursor: Callable[[], Cursor | MergedCursor], *, ack: bool) -> None:
        """Flush on the way out (shielded, bounded). ``ack``: the last item sent is processed.

        With no item outstanding the current cursor is saved, so progress made without
        yielding (the end of the history walk) is kept too."""
        with anyio.move_on_after(CLOSE_SAVE_TIMEOUT, shield=True):
            if ack or not self._out:
                await self.acknowledge(cursor, force=True)
            await self.flush()


#: Longest a closing stream waits to save its checkpoint, even when cancelled.
CLOSE_SAVE_TIMEOUT = 5.0


#: Old spellings, kept one release (each warns when used).
_DEPRECATED = {"SQLiteCheckpointStore": SqliteCheckpointStore}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(f"{name} is deprecated: use {new.__name__} (one spelling of SQLite "
                      "everywhere)", DeprecationWarning, stacklevel=2)
        return new
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
