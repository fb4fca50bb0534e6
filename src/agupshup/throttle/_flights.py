"""Calls in flight: admitted, not yet released, and the releases that come late.

Rules this module enforces:

* A call is in flight from admission until its slot exits, whatever the body did: a call that
  raised may still have reached the server, so it counts like any other. One that exits by an
  exception before its answer was read (cancelled, timed out, connection lost) stays in flight
  for the shortest window's length more: its request may be in a socket or a server queue, and
  be counted after we stopped waiting.
* A release lands even if its caller is being cancelled; one not confirmed by a caller's
  deadline lands in the background (its entry counts meanwhile). A release that fails is
  logged: the entry then counts until its lease runs out, the safe side.
* A call is landed (its lane's count drops, the gate may open) only once its release is in:
  it carries the tags and any 113 hold, and no admission may reach the ledger ahead of it.
* Late releases are made at once when the scheduler's last user leaves or it closes: no task
  outlives the clients.
* A new event loop (see ``_dispatcher``) takes over every call of the old one: each is
  released when it was due, or a shortest window from now if it was still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from agupshup.clock import Clock, from_real, within

from ._ledger import Ledger, MemoryLedger
from ._policy import AdmissionPolicy
from ._report import logger
from ._windows import Lane

__all__ = ["LEDGER_GRACE", "Flights"]

#: Real seconds a shared ledger's round trip may take even past a caller's deadline.
LEDGER_GRACE = 0.5


class Flights:
    """This loop's calls in flight (by ticket), their releases, and the ledger tasks under way.

    ``look_again`` is called when waiting callers must look again: a landing opened the gate
    or ended an interactive call, or a ledger update finished.
    """

    __slots__ = ("_clock", "_late", "_ledger", "_memory", "_policy", "_shortest", "_tickets",
                 "grace", "look_again", "pending")

    def __init__(
        self, clock: Clock, ledger: Ledger, policy: AdmissionPolicy,
        look_again: Callable[[], None],
    ) -> None:
        self._clock = clock
        self._ledger = ledger
        # The memory ledger never suspends, so it is asked directly (the fast path).
        self._memory = ledger if isinstance(ledger, MemoryLedger) and ledger.inline else None
        self._policy = policy
        self._shortest = min(policy.lengths)
        self.look_again = look_again
        self.grace = from_real(clock, LEDGER_GRACE)
        # The tickets of calls whose slot has not exited yet, and their lanes.
        self._tickets: dict[int, Lane] = {}
        # Releases of calls whose answer was never read: ticket, lane, and when it is due.
        self._late: dict[asyncio.Task[None], tuple[int, Lane, float]] = {}
        #: Ledger updates (releases, cancels) under way.
        self.pending: set[asyncio.Task[None]] = set()

    @property
    def late(self) -> int:
        """Calls whose release waits out the shortest window."""
        return len(self._late)

    def bound(self, deadline: float | None) -> float | None:
        """How long to wait for a ledger round trip asked now for a caller due at
        ``deadline``: until then, but at least the grace."""
        if deadline is None:
            return None
        return max(deadline, self._clock.monotonic() + self.grace)

    def took(self, lane: Lane, ticket: int) -> None:
        self._tickets[ticket] = lane
        self._policy.took(lane)

    def ended(self, ticket: int) -> bool:
        """A slot exits: False if its call is no longer this loop's to release."""
        return self._tickets.pop(ticket, None) is not None

    def drop(self, ticket: int, lane: Lane) -> None:
        """Forget an admitted call that was never sent."""
        self._tickets.pop(ticket, None)
        self._landed(lane, sent=False)
        if self._memory is not None:
            self._memory.cancel_now(ticket)
        else:
            self._spawn(self._ledger.cancel(ticket))

    async def finish(
        self, ticket: int, lane: Lane, learned: Sequence[tuple[int, int]], held: Sequence[int],
        deadline: float | None = None,
    ) -> None:
        """Release a call whose answer was read (or that ended without one while closing)."""
        task = self._release(ticket, lane, learned, held)
        # Shielded: the release must land even if the caller is being cancelled, or gives up
        # on a silent ledger at its deadline. A failure is logged by _settled.
        if task is not None:
            with contextlib.suppress(Exception):
                await within(self._clock, self.bound(deadline), asyncio.shield(task))

    def finish_late(self, ticket: int, lane: Lane) -> None:
        """Release, a shortest window's length from now, a call whose answer was never read."""
        self._release_at(ticket, lane, self._clock.monotonic() + self._shortest)

    def flush_late(self) -> list[asyncio.Task[None]]:
        """Release the late calls now: no task may outlive the scheduler's last user."""
        late, self._late = self._late, {}
        for task, (ticket, lane, _) in late.items():
            task.cancel()
            self._release(ticket, lane, (), ())
        return list(late)

    def adopt(self) -> None:
        """The running loop takes over the calls of the one before; its tasks are gone."""
        self.pending = set()
        # Releases already asked of a shared ledger in the old loop may not have landed; their
        # entries then count until their leases expire (the safe side).
        now = self._clock.monotonic()
        stranded = [*self._late.values(), *((ticket, lane, now + self._shortest)
                                            for ticket, lane in self._tickets.items())]
        self._late, self._tickets = {}, {}
        self._policy.forget_flights([lane for _, lane, _ in stranded])
        for ticket, lane, due in stranded:
            if due > now:
                self._release_at(ticket, lane, due)
            else:  # at once (a ledger completes a call only "now": it counts a window more)
                self._release(ticket, lane, (), ())

    async def aclose(self) -> None:
        """Make the late releases now, and wait for every ledger update under way."""
        if late := self.flush_late():
            await asyncio.gather(*late, return_exceptions=True)
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    def _landed(self, lane: Lane, sent: bool) -> None:
        if self._policy.landed(lane, sent, self._clock.monotonic()):
            # Every answer is read: the gate opens. Or the reserve's lapse is known now: the
            # dispatcher planned with this call in flight, as if it ended a length from then.
            self.look_again()

    def _release(
        self, ticket: int, lane: Lane, learned: Sequence[tuple[int, int]], held: Sequence[int]
    ) -> asyncio.Task[None] | None:
        """Release now: at once in memory, else the ledger's task."""
        if self._memory is not None:
            self._memory.release_now(ticket, learned, held)
            self._landed(lane, sent=True)
            return None
        task = self._spawn(self._ledger.release(ticket, learned, held))
        task.add_done_callback(lambda _: self._landed(lane, sent=True))
        return task

    def _release_at(self, ticket: int, lane: Lane, due: float) -> None:
        task = asyncio.get_running_loop().create_task(self._release_late(due))
        self._late[task] = (ticket, lane, due)

    async def _release_late(self, due: float) -> None:
        await self._clock.sleep(due - self._clock.monotonic())
        entry = self._late.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        if entry is not None:  # else flushed meanwhile, or its loop was left
            await self.finish(*entry[:2], (), ())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.pending.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.warning("throttle ledger update failed: %r", exc)
        self.look_again()
