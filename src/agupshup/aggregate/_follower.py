"""The follower as the user holds it: its lifecycle, and the two ways to make one.

* **Cancels.** The work (sleeping until a source is due, polls, walks) runs in one task that
  ``anext()`` awaits through :func:`asyncio.shield`: a timeout around ``anext()`` cancels the
  wait, not the poll, whose pages land in the buffer for the next ``anext()``. No call is sent
  twice for a cancel, and repeated short timeouts still make progress. The task ends with the
  follower (``aclose()``, ``async with``).
* **End.** ``follow=False`` ends once every source has been read down to its start.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterable
from types import TracebackType
from typing import Literal, Self

import anyio

from agupshup.aggregate import _tuning as tuning
from agupshup.aggregate._calls import FollowCalls, OnDrop, Start, _cancelling
from agupshup.aggregate._claim import Resume
from agupshup.aggregate._polling import _Polling
from agupshup.checkpoint import Checkpoint
from agupshup.models import Message
from agupshup.planner import Budget, Mode


class Follower(_Polling):
    """An async iterator over the messages of ``groups``: see the rules of
    :mod:`agupshup.aggregate` and its parts."""

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(ack=exc_type is None)

    async def aclose(self, *, ack: bool = False) -> None:
        """Stop and save; ``ack``: the last item handed out was processed (by default it
        counts as not processed: ``commit()`` first, or leave ``async with`` normally)."""
        await self._close(ack=ack)

    def halt(self) -> None:
        """Stop every poll now, synchronously (a fleet worker that lost its lease): the
        follower hands out nothing more; ``aclose()`` saves what was acknowledged."""
        self._halted = True
        if self._task is not None:
            self._task.cancel()

    async def flush(self) -> None:
        """Save what was acknowledged, now (a timer's save beside the consumer's)."""
        await self._save(force=True)

    async def commit(self) -> None:
        """Everything handed out so far is processed: save it now."""
        self._acknowledge()
        await self._save(force=True)

    async def _close(self, *, ack: bool) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if ack:
            self._acknowledge()
        with anyio.move_on_after(tuning._CLOSE_SAVE_TIMEOUT, shield=True):
            await self._save(force=True)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        if self._closed or self._halted or (self.limit is not None
                                            and self.count >= self.limit):
            raise StopAsyncIteration
        await self._start()
        if not self.groups:
            raise StopAsyncIteration
        self._acknowledge()
        await self._save()
        if self._to_raise is not None:
            problem, self._to_raise = self._to_raise, None
            raise problem
        while not self._buffer:
            if not self.follow and self._finished():
                await self._save(force=True)
                raise StopAsyncIteration
            # Nothing buffered, nothing unacknowledged: everything read is handed out.
            self._claim = self._claim_now()
            await self._work()
        message = self._buffer.popleft()
        self._outstanding = message.id
        self.count += 1
        return message

    async def _work(self) -> None:
        """Run (or await the running) step: a cancel of this wait leaves the step running."""
        if self._halted:
            raise StopAsyncIteration
        if self._task is None:
            self._task = asyncio.ensure_future(self._step())
        task = self._task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if (self._halted or self._closed) and not _cancelling():
                raise StopAsyncIteration from None  # halted or closed by another task
            raise
        finally:
            if task.done() and self._task is task:
                self._task = None
        if self._to_raise is not None:
            problem, self._to_raise = self._to_raise, None
            raise problem

    def _acknowledge(self) -> None:
        """The item handed out last is processed; with nothing buffered, the claim moves up."""
        if self._outstanding is not None:
            self._handed.add(self._outstanding)
            self._outstanding = None
            self._unsaved += 1
        if not self._buffer and self._plan is not None:
            self._claim = self._claim_now()
            self._prune()

def follow_groups(
    client: FollowCalls,
    groups: Iterable[str],
    *,
    budget: Budget | None = None,
    checkpoint: Checkpoint | None = None,
    since: Start = "now",
    follow: bool = True,
    per_group: bool = False,
    limit: int | None = None,
    on_drop: OnDrop = None,
    resume_from: Resume = None,
    mode: Mode | None = None,
) -> Follower:
    """Follow ``groups`` on one IP's quota: see :class:`Follower`. ``per_group=True`` polls
    every group on its own stream (with the same optimised intervals), as ``merged_stream``
    and the Client spell it; ``mode="per-group"`` is that spelling of before (warns)."""
    if mode is not None:
        warnings.warn("follow_groups: mode= is deprecated; per_group=True polls each group's "
                      "own stream", DeprecationWarning, stacklevel=2)
        per_group = per_group or mode == "per-group"
    return Follower(
        client, groups, budget=budget, checkpoint=checkpoint, since=since, follow=follow,
        mode="per-group" if per_group else "plan", limit=limit, on_drop=on_drop,
        resume_from=resume_from,
    )


def merged_stream(
    client: FollowCalls,
    groups: Iterable[str],
    *,
    follow: bool = False,
    since: Literal["now"] | int | None = None,
    limit: int | None = None,
    resume_from: Resume = None,
    checkpoint: Checkpoint | None = None,
    budget: Budget | None = None,
    per_group: bool = False,
    on_drop: OnDrop = None,
    buffer: int | None = None,
    planned: bool | None = None,
) -> Follower:
    """Many groups as one stream, each message once: ``client.merged_stream``'s rules.

    ``since=None``: each group's history, then (``follow``) what arrives; ``"now"`` (with
    ``follow``): new messages only; an id: every later message. Without ``follow`` the stream
    ends once every group is read down to its start, on the groups' own streams (no discovery:
    the cheapest way to read histories); with ``follow`` the planner picks the sources
    (``per_group=True``: each group's own stream). ``buffer`` and ``planned`` are the spellings
    of the per-group pollers this engine replaced: accepted, with a :class:`DeprecationWarning`.
    """
    if buffer is not None or planned is not None:
        warnings.warn("merged_stream: buffer= and planned= are deprecated (one engine: "
                      "per_group=True polls each group's own stream)", DeprecationWarning,
                      stacklevel=3)
        per_group = per_group or planned is False
    if since == "now":
        if not follow:
            raise ValueError("since='now' follows new items only: it needs follow=True")
        if resume_from is not None:
            raise ValueError("since='now' and resume_from both say where to start: pass one")
    elif since is not None and (isinstance(since, bool) or not isinstance(since, int)):
        raise ValueError(f"since must be 'now', a message id or None, not {since!r}")
    mode: Mode = "per-group" if per_group or not follow else "plan"
    return Follower(
        client, groups, budget=budget, checkpoint=checkpoint,
        since=0 if since is None else since, follow=follow, mode=mode, limit=limit,
        on_drop=on_drop, resume_from=resume_from,
    )


#: The name of ``merged_stream``'s return type before the engines were one.
MergedStream = Follower
