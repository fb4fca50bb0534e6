"""Pacing: bulk calls spread evenly over the longest window.

Rules this module enforces:

* One bulk call every ``length / bulk budget`` seconds of the longest window, through an
  ``aiolimiter.AsyncLimiter(1, interval)``; interactive calls are never paced.
* aiolimiter runs on the event loop's clock (it cannot take the injected one), so there is one
  limiter per loop, and pacing is a per-process smoothing in front of the exact windows, never
  what keeps calls inside them.
* A caller whose ``max_wait`` runs out while paced is refused with
  :class:`~agupshup.errors.QuotaExhausted` for the window ``"pace"``, before sending.
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

from agupshup.clock import Clock
from agupshup.errors import QuotaExhausted

__all__ = ["Pacer"]


class Pacer:
    """Spaces bulk calls ``interval`` seconds apart on the running loop's clock."""

    __slots__ = ("_clock", "_interval", "_limiter")

    def __init__(self, interval: float, clock: Clock) -> None:
        self._interval = interval
        self._clock = clock
        self._limiter: tuple[asyncio.AbstractEventLoop, AsyncLimiter] | None = None

    async def pace(self, since: float, max_wait: float | None) -> None:
        """Wait for this call's turn (at most ``max_wait`` seconds from ``since``)."""
        limiter = self._for_loop()
        if max_wait is None:
            await limiter.acquire()
            return
        try:
            async with asyncio.timeout(max(0.0, max_wait)):
                await limiter.acquire()
        except TimeoutError:
            now = self._clock.monotonic()
            raise QuotaExhausted("pace", now + limiter.time_period, now - since) from None

    def _for_loop(self) -> AsyncLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._limiter[0] is not loop:
            self._limiter = (loop, AsyncLimiter(1, self._interval))
        return self._limiter[1]
