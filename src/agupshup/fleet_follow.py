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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from agupshup import errors as E
from agupshup.checkpoint import Checkpoint, Checkpointer, Cursor, MergedCursor
from agupshup.client import Client
from agupshup.errors import UnreadableGroups
from agupshup.models import Message

__all__ = ["Follow", "GroupFollow", "OpenFollow", "open_group_follow"]

#: Checkpointer key of a worker's follow (the fenced store keys cursors by group itself).
KEY = "fleet"


class Follow(Protocol):
    """An open follow of some groups: what a fleet worker runs over the groups it holds."""

    async def __anext__(self) -> Message: ...

    def halt(self) -> None: ...

    async def flush(self) -> None: ...

    async def aclose(self, *, ack: bool) -> None: ...


#: Opens a follow of ``groups`` (display names) on ``client``, resuming from ``checkpoint``.
OpenFollow = Callable[[Client, Sequence[str], Checkpoint], Awaitable[Follow]]


async def open_group_follow(
    client: Client, groups: Sequence[str], checkpoint: Checkpoint
) -> GroupFollow:
    """Today's engine: each group polled on its own stream (``client.group_stream``)."""
    follow = GroupFollow(client, groups, checkpoint)
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
