"""A small TTL cache with single-flight fetches, so page views cannot burn the API quota.

Rules this module enforces:

* One fetch per key per ``ttl`` seconds, however many visitors ask: concurrent misses share one
  in-flight fetch (single-flight), and its outcome — value *or* API error — is kept for ``ttl``.
  Caching refusals matters as much as caching pages: a visitor typing group names must not cost
  a call per keystroke twice.
* Transport faults are not cached: the next view tries again (but still single-flight).
* At most ``max_pending`` different keys are fetched at once; a miss beyond that raises
  :class:`Busy` at once instead of queueing more calls behind the throttle.
* At most ``max_entries`` keys are kept; the oldest are dropped first.
* Time comes from an injected :class:`~agupshup.clock.Clock`.
* ``aclose()`` cancels the fetches in flight, so none outlives the app (or the client) it serves.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from agupshup.clock import Clock, SystemClock
from agupshup.errors import APIError, ValidationError

__all__ = ["Busy", "TTLCache"]

V = TypeVar("V")


class Busy(Exception):
    """Too many different keys are being fetched already; try again shortly."""


@dataclass(slots=True)
class _Entry(Generic[V]):
    expires: float
    value: V | None
    error: BaseException | None
    fetched_at: float


class TTLCache(Generic[V]):
    """``await cache.get(key, fetch)``: the cached outcome of ``fetch()`` for ``key``."""

    def __init__(
        self,
        ttl: float = 10.0,
        *,
        clock: Clock | None = None,
        max_entries: int = 256,
        max_pending: int = 8,
        cache_errors: tuple[type[BaseException], ...] = (APIError, ValidationError),
    ) -> None:
        self.ttl = ttl
        self.clock: Clock = clock or SystemClock()
        self.max_entries = max_entries
        self.max_pending = max_pending
        self.cache_errors = cache_errors
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[V]] = {}
        #: How many times ``fetch`` was actually called (for tests and the status line).
        self.fetches = 0
        self.hits = 0

    async def get(self, key: str, fetch: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self.clock.monotonic():
            self.hits += 1
            if entry.error is not None:
                # Without its old traceback: raising one exception object again and again would
                # add every raise's frames to it, and keep them, for as long as it is cached.
                raise entry.error.with_traceback(None)
            return entry.value  # type: ignore[return-value]
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                raise Busy(f"{len(self._pending)} fetches in flight")
            pending = asyncio.ensure_future(self._fetch(key, fetch))
            self._pending[key] = pending
            pending.add_done_callback(lambda fut: self._done(key, fut))
        else:
            self.hits += 1
        # Shielded: a visitor who leaves must not cancel the fetch others are waiting for.
        return await asyncio.shield(pending)

    async def aclose(self) -> None:
        """Cancel the fetches in flight (their waiters see the cancellation)."""
        pending = list(self._pending.values())
        for fut in pending:
            fut.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _done(self, key: str, fut: asyncio.Future[V]) -> None:
        self._pending.pop(key, None)
        if not fut.cancelled():
            fut.exception()  # retrieved: waiters that left must not leave it "never retrieved"

    def age(self, key: str) -> float | None:
        """Seconds since ``key`` was fetched, or None when it is not cached."""
        entry = self._entries.get(key)
        return None if entry is None else self.clock.monotonic() - entry.fetched_at

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)

    async def _fetch(self, key: str, fetch: Callable[[], Awaitable[V]]) -> V:
        self.fetches += 1
        try:
            value = await fetch()
        except self.cache_errors as exc:
            self._store(key, _Entry(self._expiry(), None, exc, self.clock.monotonic()))
            raise
        self._store(key, _Entry(self._expiry(), value, None, self.clock.monotonic()))
        return value

    def _expiry(self) -> float:
        return self.clock.monotonic() + self.ttl

    def _store(self, key: str, entry: _Entry[V]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
