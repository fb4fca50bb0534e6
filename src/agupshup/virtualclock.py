"""Virtual time for simulations: the clock jumps to the next deadline whenever every task waits.

:class:`~agupshup.clock.FakeClock` moves only when told to; a simulated day of a client, its
scheduler and an in-process emulator needs time to move by itself, but never past a task that
could still run. :func:`run_virtual` runs a coroutine on a :class:`VirtualClock` and advances it
only when the event loop has nothing ready, so the result is deterministic and as fast as the
CPU allows.

Rules this module enforces:

* Only tasks that wait on the clock (or on each other) may run under :func:`run_virtual`: a task
  waiting on real I/O would look idle and be overtaken by virtual time.
* Sleepers wake in deadline order, ties in the order they slept; time never goes back.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Coroutine
from typing import Any, TypeVar

from agupshup.clock import FakeClock

__all__ = ["VirtualClock", "run_virtual"]

T = TypeVar("T")
#: Loop turns a burst of ready callbacks may take before time moves on regardless.
_MAX_TURNS = 10_000


class VirtualClock(FakeClock):
    """A :class:`~agupshup.clock.FakeClock` that :func:`run_virtual` moves by itself."""

    __slots__ = ()

    def __init__(self, start: float = 0.0, *, wall: float = 1_700_000_000.0) -> None:
        super().__init__(start, wall=wall)

    def _jump(self) -> bool:
        """Move to the earliest deadline and wake who sleeps until then; False when nobody
        sleeps."""
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        self._now = max(self._now, self._sleepers[0][0])
        self._wake()
        return True

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.3f})"


async def _idle() -> None:
    """Return once the loop has no callback ready (other than this one's next turn)."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)  # CPython's queue; without it, a fixed number of turns
    for _ in range(_MAX_TURNS):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return
        if ready is None and _ >= 50:
            return


async def run_virtual(clock: VirtualClock, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion, moving ``clock`` whenever every task waits on it."""
    task = asyncio.ensure_future(main)
    try:
        while not task.done():
            await _idle()
            if task.done():
                break
            if not clock._jump():
                # Nobody sleeps and nothing runs: a task waits on something outside the clock.
                await asyncio.wait({task}, timeout=0.001)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
