"""The seam between a fleet worker and the engine that follows its groups.

A :class:`~agupshup.fleet.FleetWorker` does not poll: it opens "a follow of these groups with
this checkpoint" through an :data:`OpenFollow` and reads messages from the :class:`Follow` it
gets. Moving the fleet onto another engine means writing one ``OpenFollow``.

Rules a :class:`Follow` keeps (the worker relies on each):

* ``__anext__`` acknowledges the message it returned last (as a stream does) and waits for the
  next; a group found unreadable (private, or gone) is raised once as
  :class:`~agupshup.planner.UnreadableGroups` naming it, after it left the follow; iterating
  again follows the rest.
* ``halt()`` stops every poll at once, synchronously: the worker calls it from its heartbeat
  when a lease or a claim is lost, while the consumer may be busy elsewhere.
* ``flush()`` saves the acknowledged cursor now (the worker's checkpoint timer); it may run
  concurrently with ``__anext__`` and must never save an older cursor after a newer one.
* ``aclose(ack=...)`` stops and saves; ``ack``: the message returned last was processed.
* Cursors go through the :class:`~agupshup.checkpoint.Checkpoint` it was opened with, whose
  store is the worker's fenced store: the engine needs no knowledge of claims or tokens.
* The other workers are a :class:`~agupshup.aggregate.Peers`: the follow polls the shared
  sources (the joined and public streams) in its turn, each group's own stream only while its
  worker holds the group, and keeps the shared sources' heads with the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from agupshup import errors as E
from agupshup.aggregate import Follower, Peers
from agupshup.checkpoint import (
    Checkpoint,
    Checkpointer,
    CheckpointStore,
    Cursor,
    FollowCursor,
    MergedCursor,
)
from agupshup.client import Client
from agupshup.errors import UnreadableGroups
from agupshup.models import Group, Message
from agupshup.planner import JOINED, PUBLIC

__all__ = [
    "EngineFollow", "Follow", "GroupFollow", "OpenFollow", "open_engine_follow",
    "open_group_follow",
]

#: Checkpointer key of a worker's follow (the fenced store keys cursors by group itself).
KEY = "fleet"


class Follow(Protocol):
    """An open follow of the followed set: what a fleet worker runs beside its peers."""

    async def __anext__(self) -> Message: ...

    def halt(self) -> None: ...

    async def flush(self) -> None: ...

    async def aclose(self, *, ack: bool) -> None: ...


#: Opens a follow of ``groups`` (display names) on ``client``, resuming from ``checkpoint``,
#: beside ``peers``.
OpenFollow = Callable[[Client, Sequence[str], Checkpoint, Peers], Awaitable[Follow]]

#: The account's joined groups as a client's last follow found them, and when (monotonic): a
#: follow reopened on a rebalance reuses them (1 000 groups are 34 calls) for this long.
_JOINED: weakref.WeakKeyDictionary[Client, tuple[float, dict[str, Group]]] = (
    weakref.WeakKeyDictionary())
JOINED_FOR = 3600.0


async def open_engine_follow(
    client: Client, groups: Sequence[str], checkpoint: Checkpoint, peers: Peers
) -> EngineFollow:
    """The one follow engine (:class:`~agupshup.aggregate.Follower`) over the whole followed
    set: the shared sources in this worker's turn, the own streams of the groups it holds."""
    follow = EngineFollow(client, groups, checkpoint, peers)
    await follow.start()
    return follow


class _PerGroupStore:
    """The engine's cursor (:class:`~agupshup.checkpoint.FollowCursor`) as the fleet keeps
    it: one cursor per group (the fenced store saves each only while its claim is held).

    A group's cursor claims what the engine claims for its own stream: its head, or the
    lowest point of its open gaps; a takeover re-reads a gap's handed-out items (the feed
    drops repeats by id)."""

    def __init__(
        self, inner: CheckpointStore, owns: Callable[[str], bool], groups: Sequence[str]
    ) -> None:
        self.inner = inner
        self.owns = owns
        self.groups = [g.strip().lower() for g in groups]

    async def load(self, key: str) -> str | None:
        return await self.inner.load(key)  # per-group cursors: the engine reads them as v1

    async def save(self, key: str, value: str) -> None:
        cursor = FollowCursor.from_json(value)
        streams = {}
        for source, head in cursor.heads.items():
            if source.startswith("group:"):
                streams[source.removeprefix("group:")] = _group_cursor(
                    source, head, cursor.gaps.get(source, ())
                )
        for group, start in cursor.starts.items():
            streams.setdefault(group, Cursor(source=f"group:{group}", phase="live",
                                             newest=start))
        # A held group a shared source covers: the lowest shared claim, so that a cursor of
        # its own stream from before does not set it back on a later start.
        shared = [(c, k) for k in (JOINED.key, PUBLIC.key) for c in _claims(cursor, k)]
        for group in self.groups:
            if group not in streams and self.owns(group) and shared:
                # Named by the shared source: no walk of the group's own stream is pending.
                claim, source = min(shared)
                streams[group] = Cursor(source=source, phase="live", newest=claim)
        await self.inner.save(key, MergedCursor(streams=streams).to_json())

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


def _claims(cursor: FollowCursor, source: str) -> list[int]:
    """Where a source's claim may lie: its head and the low ends of its gaps."""
    if source not in cursor.heads:
        return []
    return [cursor.heads[source], *(lo for lo, _ in cursor.gaps.get(source, ()))]


def _group_cursor(source: str, head: int, gaps: Sequence[tuple[int, int]]) -> Cursor:
    """One group's own stream in version 1 terms. A history walk under way (one gap down to
    the beginning) is a ``backlog`` cursor, which reads back as that gap; any other gap makes
    the cursor claim no more than its low end."""
    if len(gaps) == 1 and gaps[0][0] == 0:
        return Cursor(source=source, phase="backlog", newest=head, oldest=gaps[0][1])
    return Cursor(source=source, phase="live", newest=min([head, *(lo for lo, _ in gaps)]))


class EngineFollow:
    """A :class:`Follow` over the follow engine."""

    def __init__(
        self, client: Client, groups: Sequence[str], checkpoint: Checkpoint, peers: Peers
    ) -> None:
        store = _PerGroupStore(checkpoint.store, peers.owns, groups)
        cp = dataclasses.replace(checkpoint, store=store, key=checkpoint.key or KEY)
        self._client = client
        at, joined = _JOINED.get(client, (-math.inf, None))
        self._cached = joined if client.clock.monotonic() - at < JOINED_FOR else None
        # A fleet's first follow reads the groups' history; later ones resume at the shared
        # heads, and each group's own stream at its cursor.
        self._follower = Follower(client, groups, checkpoint=cp, since=0, on_drop="raise",
                                  peers=peers, joined=self._cached)

    async def start(self) -> None:
        await self._follower.__aenter__()
        joined = self._follower.joined
        if self._cached is None and joined is not None:
            _JOINED[self._client] = (self._client.clock.monotonic(), dict(joined))

    async def __anext__(self) -> Message:
        return await self._follower.__anext__()

    def halt(self) -> None:
        self._follower.halt()

    async def flush(self) -> None:
        await self._follower.flush()

    async def aclose(self, *, ack: bool) -> None:
        await self._follower.aclose(ack=ack)


async def open_group_follow(
    client: Client, groups: Sequence[str], checkpoint: Checkpoint, peers: Peers
) -> GroupFollow:
    """The per-group pollers the fleet ran before the one engine (kept for comparison in
    ``benchmarks/fleet.py``): each group it holds polled on its own stream
    (``client.group_stream``)."""
    follow = GroupFollow(client, [g for g in groups if peers.owns(g)], checkpoint)
    await follow.start()
    return follow


# What a pump hands over: a message and the cursor covering it, or why its group stopped.
_Item = tuple[str, Message | Exception, Cursor | None]


class GroupFollow:
    """One task per group, feeding a bounded queue (a slow consumer holds the pumps back).

    Unlike :class:`~agupshup.streams.MergedStream`, a group failing ends only its own pump, so
    the failure can name the group."""

    def __init__(
        self, client: Client, groups: Sequence[str], checkpoint: Checkpoint, buffer: int = 16
    ) -> None:
        self._client = client
        self._names = {g.strip().lower(): g.strip() for g in groups}
        self._cp = Checkpointer(checkpoint, KEY, client.clock)
        self._cursors: dict[str, Cursor] = {}
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(buffer)
        self._pumps: dict[str, asyncio.Task[None]] = {}
        # Saves from the consumer and from the worker's timer, one at a time and in order.
        self._saving = asyncio.Lock()

    async def start(self) -> None:
        raw = await self._cp.load()
        if raw is not None:
            self._cursors = dict(MergedCursor.from_json(raw).streams)
        for key, name in self._names.items():
            self._pumps[key] = asyncio.create_task(self._pump(key, name), name=f"fleet:{key}")

    def _cursor(self) -> MergedCursor:
        return MergedCursor(streams=dict(self._cursors))

    async def _pump(self, key: str, name: str) -> None:
        stream = self._client.group_stream(name, follow=True, resume_from=self._cursors.get(key))
        try:
            async with stream:
                async for message in stream:
                    await self._queue.put((key, message, stream.cursor))
        except Exception as exc:  # handed to the consumer, who decides what it means
            await self._queue.put((key, exc, None))

    async def __anext__(self) -> Message:
        async with self._saving:
            await self._cp.acknowledge(self._cursor)
        key, item, cursor = await self._queue.get()
        if isinstance(item, E.PrivateGroup | E.GroupNotFound):
            self._pumps.pop(key, None)
            name = self._names.pop(key)
            why = "no such group" if isinstance(item, E.GroupNotFound) else "private"
            raise UnreadableGroups({name: why}) from item
        if isinstance(item, Exception):
            raise item
        assert cursor is not None
        self._cursors[key] = cursor
        self._cp.sent()
        return item

    def halt(self) -> None:
        for pump in self._pumps.values():
            pump.cancel()

    async def flush(self) -> None:
        async with self._saving:
            await self._cp.flush()

    async def aclose(self, *, ack: bool) -> None:
        self.halt()
        await asyncio.gather(*self._pumps.values(), return_exceptions=True)
        async with self._saving:
            await self._cp.close(self._cursor, ack=ack)
