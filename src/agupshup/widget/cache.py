"""A small TTL cache with single-flight fetches, so page views cannot burn the API quota.

Rules this module enforces:

* One fetch per key per ``ttl`` seconds, however many visitors ask: concurrent misses share one
  in-flight fetch (single-flight), and its outcome — value *or* API error — is kept for ``ttl``.
  Caching refusals matters as much as caching pages: a visitor typing group names must not cost
  a call per keystroke twice.
* Other failures (transport faults, timeouts, 113 and 129 answers) are kept for ``fail_ttl``
  seconds (0: not at all), so an outage costs one call per key per ``fail_ttl``, not one a view.
* A failure never hides a page fetched before: the last good value is kept (until evicted) and
  served, stale, when a refetch fails, is refused (``admit``), or finds the cache busy.
* ``admit()`` is called before each fetch that would cost a call (never for a hit, nor for a
  visitor joining a fetch in flight): it raises to refuse the miss.
* At most ``max_pending`` different keys are fetched at once; a miss beyond that raises
  :class:`Busy` at once instead of queueing more calls behind the throttle.
* At most ``max_entries`` keys are kept; the oldest are dropped first.
* Time comes from an injected :class:`~agupshup.clock.Clock`.
* ``aclose()`` cancels the fetches in flight, so none outlives the app (or the client) it serves.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from agupshup.clock import Clock, SystemClock
from agupshup.errors import APIError, ServerError, ThrottleLimitExceeded, ValidationError

__all__ = ["Busy", "Limited", "SlidingLimit", "TTLCache"]

V = TypeVar("V")

#: API answers that say "not now" rather than "no": failures, not refusals.
_TRANSIENT = (ServerError, ThrottleLimitExceeded)


class Busy(Exception):
    """Too many different keys are being fetched already; try again shortly."""


class Limited(Exception):
    """A :class:`SlidingLimit` is spent; ``retry_after`` seconds until a place frees."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"limited for {retry_after:.0f} s")
        self.retry_after = retry_after


class SlidingLimit:
    """At most ``limit`` events per ``period`` seconds for each key (the last ``max_keys``
    keys are remembered; a forgotten key starts afresh, which errs towards the visitor)."""

    def __init__(
        self, limit: int, period: float = 60.0, *, clock: Clock | None = None,
        max_keys: int = 4096,
    ) -> None:
        self.limit = limit
        self.period = period
        self.clock: Clock = clock or SystemClock()
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, key: str = "") -> None:
        """Count one event for ``key``, or raise :class:`Limited` when it has no place."""
        now = self.clock.monotonic()
        events = self._events.pop(key, None) or deque()
        self._events[key] = events  # most recent last
        while events and now - events[0] >= self.period:
            events.popleft()
        if len(events) >= self.limit:
            raise Limited(events[0] + self.period - now if events else self.period)
        events.append(now)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def give_back(self, key: str = "") -> None:
        """Undo the latest :meth:`take` for ``key`` (an event that turned out not to happen)."""
        events = self._events.get(key)
        if events:
            events.pop()


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
        fail_ttl: float = 0.0,
    ) -> None:
        self.ttl = ttl
        self.clock: Clock = clock or SystemClock()
        self.max_entries = max_entries
        self.max_pending = max_pending
        self.cache_errors = cache_errors
        self.fail_ttl = fail_ttl
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[V]] = {}
        #: How many times ``fetch`` was actually called (for tests and the status line).
        self.fetches = 0
        self.hits = 0

    async def get(
        self,
        key: str,
        fetch: Callable[[], Awaitable[V]],
        admit: Callable[[], None] | None = None,
    ) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self.clock.monotonic():
            self.hits += 1
            if entry.value is not None:
                return entry.value  # fresh, or the last good one while a failure is kept
            assert entry.error is not None
            # Without its old traceback: raising one exception object again and again would
            # add every raise's frames to it, and keep them, for as long as it is cached.
            raise entry.error.with_traceback(None)
        pending = self._pending.get(key)
        if pending is None:
            try:
                if len(self._pending) >= self.max_pending:
                    raise Busy(f"{len(self._pending)} fetches in flight")
                if admit is not None:
                    admit()
            except (Busy, Limited):
                if entry is not None and entry.value is not None:
                    self.hits += 1
                    return entry.value
                raise
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
        except Exception as exc:
            if isinstance(exc, self.cache_errors) and not isinstance(exc, _TRANSIENT):
                self._store(key, _Entry(self._expiry(), None, exc, self.clock.monotonic()))
                raise
            if self.fail_ttl > 0:
                self._keep_failure(key, exc)
            old = self._entries.get(key)
            if old is not None and old.value is not None:
                return old.value
            raise
        self._store(key, _Entry(self._expiry(), value, None, self.clock.monotonic()))
        return value

    def _keep_failure(self, key: str, exc: Exception) -> None:
        """Keep ``exc`` for ``fail_ttl``, with the last good value (and its age) if any."""
        old = self._entries.get(key)
        now = self.clock.monotonic()
        if old is None or old.value is None:
            self._store(key, _Entry(now + self.fail_ttl, None, exc, now))
        else:
            self._store(key, _Entry(now + self.fail_ttl, old.value, exc, old.fetched_at))

    def _expiry(self) -> float:
        return self.clock.monotonic() + self.ttl

    def _store(self, key: str, entry: _Entry[V]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
