"""Leases: how a shared ledger forgets the calls of a process that died.

Rules this module enforces:

* An entry in flight in a shared ledger carries a lease expiry in place of a completion time.
  If its process dies, the entry counts as completed at that expiry (the call reached the server
  no later than that), so it leaves window ``w`` at ``expiry + length_w``. Nothing is lost:
  a dead process's calls keep counting exactly as long as they might matter.
* While this process has calls in flight, it renews their leases every third of the lease on
  the injected clock, naming them by ticket. A ticket this process lost track of (its admission
  was cancelled half-way) is never renewed, so it expires like a dead process's.
* A failed renewal is logged, not raised. A lease that lapses while its call still runs ends
  that call's count early, so the lease must stay well above the longest request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agupshup.clock import Clock

__all__ = ["LeaseKeeper"]

logger = logging.getLogger("agupshup.throttle")


class LeaseKeeper:
    """Renews the leases of this process's calls in flight."""

    __slots__ = ("_clock", "_lease", "_owned", "_renew", "_task")

    def __init__(
        self,
        renew: Callable[[tuple[int, ...]], Awaitable[None]],
        clock: Clock,
        lease: float,
    ) -> None:
        if not lease > 0:
            raise ValueError("the lease must be positive")
        self._renew = renew
        self._clock = clock
        self._lease = lease
        self._owned: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    def add(self, ticket: int) -> None:
        self._owned.add(ticket)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._keep())

    def discard(self, ticket: int) -> None:
        self._owned.discard(ticket)

    async def _keep(self) -> None:
        while self._owned:
            await self._clock.sleep(self._lease / 3)
            if not self._owned:
                return
            try:
                await self._renew(tuple(self._owned))
            except Exception as exc:
                logger.warning("throttle lease renewal failed: %r", exc)

    async def aclose(self) -> None:
        """Stop renewing; the leases of calls still in flight run out by themselves."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
