"""Following the head of a stream: adaptive, quota-aware polling, shared per client and stream.

Rules this module enforces:

* One :class:`Hub` per client; it holds one :class:`Feed` per stream key (``group:jumpy``…).
  Every follower of that stream subscribes to the same feed, so N followers cost the calls of
  one: each poll is published to every subscriber.
* A feed has no task of its own. The subscriber that finds its buffer empty and no poll under
  way becomes the leader: it sleeps until the poll is due, polls, publishes and steps down. If
  it is cancelled, the next waiting subscriber takes over; nothing is left running when the last
  subscriber leaves, and the feed is dropped (its pace is kept for the next follower).
* A poll is a catch-up from the feed's head (:func:`agupshup.paging.catch_up`): one call when
  fewer than a page of items arrived, more only to fill a gap.
* The interval adapts to activity: an empty poll multiplies it by ``backoff`` up to
  ``max_interval`` (idle streams settle at about one call a minute); new items shorten it
  towards the time in which half a page arrives, never below ``min_interval``; a full page of
  new items means ``min_interval``.
* The interval adapts to quota, when the client's scheduler reports windows. Each window's
  *share* is ``quota_share`` of its limit, its *steady rate* that share over its length. While a
  window's share is unused the feeds poll at their activity pace; as it fills, their intervals
  stretch in proportion to the fill, so that the feeds of a hub together reach the window's
  steady rate when its share is used (each feed's interval stretched by the same factor). So
  a follower's first poll is never delayed by the day window's average, and the day's budget
  still lasts the day. Intervals stretch further as a window nears its limit, and no poll is
  due before the scheduler has room or while it holds calls. ``PollPolicy(burst=False)`` paces
  by the strictest steady rate from the first poll. The pace is revised at least every
  ``min_interval`` while a poller waits. A quota refusal only delays the poll (see
  :func:`agupshup.paging.read_page`).
* Bounded memory with backpressure: the leader does not poll while any subscriber holds
  ``high_water`` items or more; it waits for that subscriber to drain.
* Each subscriber gets items newer than what it had already yielded (its ``after``), oldest
  first, each once: a subscriber that joins behind the feed's head reads the difference itself
  (a catch-up bounded by the head), then takes the feed's publications.
* Transport faults and 129 in a poll (after the client's own retries) back off and poll again;
  any other error goes to the subscriber that polled.
* All waiting is on the client's clock.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio

from agupshup import errors as E
from agupshup.clock import Clock
from agupshup.models import QuotaWindow
from agupshup.paging import ReadFn, Source, catch_up, hold_delay

__all__ = ["Feed", "Hub", "PollPolicy", "Subscription", "pace"]

log = logging.getLogger("agupshup.streams")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often a followed stream is polled."""

    #: The fastest a busy stream is polled (seconds).
    min_interval: float = 5.0
    #: The slowest an idle stream is polled, quota permitting.
    max_interval: float = 60.0
    #: Factor applied to the interval after a poll that found nothing.
    backoff: float = 2.0
    #: Share of each quota window that the pollers of a client may use.
    quota_share: float = 0.8
    #: Items buffered for one subscriber before the feed stops polling (backpressure).
    high_water: int = 256
    #: Poll at the activity pace while a window's share is unused, slowing to its steady rate as
    #: it fills (False: never faster than the strictest window's steady rate).
    burst: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.backoff < 1 or not 0 < self.quota_share <= 1 or self.high_water < 1:
            raise ValueError("need backoff >= 1, 0 < quota_share <= 1, high_water >= 1")

    def adapt(self, interval: float, new: int, elapsed: float, page: int) -> float:
        """The activity interval after a poll that found ``new`` items ``elapsed`` s after the
        previous one."""
        if new == 0:
            return min(self.max_interval, interval * self.backoff)
        if new >= page:
            return self.min_interval
        rate = new / max(elapsed, 1e-3)
        target = min(interval / self.backoff, (page / 2) / rate)
        return min(self.max_interval, max(self.min_interval, target))


def pace(
    interval: float,
    demand: float,
    windows: Sequence[QuotaWindow],
    now: float,
    share: float = 0.8,
    *,
    burst: bool = True,
) -> float:
    """Seconds to wait before a poll whose activity interval is ``interval``.

    ``demand`` is the calls per second all feeds of the hub ask for (the sum of 1/interval).
    Without windows (no scheduler) this is ``interval``.
    """
    if not windows:
        return interval
    stretch = max((_stretch(w, demand, share, burst) for w in windows), default=1.0)
    pressure = max(w.used / w.limit for w in windows if w.limit > 0)
    if pressure > 0.8:  # x1 at 80 % of a window, x2 at 90 %, x10 at 98 % and beyond
        stretch *= min(10.0, 0.2 / max(1.0 - pressure, 0.02))
    return max(interval * stretch, hold_delay(windows, now))


def _stretch(window: QuotaWindow, demand: float, share: float, burst: bool) -> float:
    """How much one window slows the feeds: demand over its steady rate, scaled by how much of
    its share is used (all of it without ``burst``); never below 1."""
    budget = window.limit * share
    if window.length <= 0 or budget <= 0:
        return 1.0
    over = demand / (budget / window.length)
    fill = min(1.0, window.used / budget) if burst else 1.0
    return max(1.0, 1.0 + (over - 1.0) * fill)


class Hub:
    """The feeds of one client, keyed by stream."""

    def __init__(
        self,
        clock: Clock,
        quota: Callable[[], Sequence[QuotaWindow]],
        read: ReadFn,
        policy: PollPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.quota = quota
        self.read = read
        self.policy = policy or PollPolicy()
        self._feeds: dict[str, Feed[Any]] = {}
        #: (last poll, interval) of feeds whose followers all left: a follower that comes back
        #: (a stream re-subscribing after a cancelled ``anext``) keeps the stream's pace.
        self._paces: dict[str, tuple[float, float]] = {}

    def subscribe(
        self, source: Source[T], after: int | None, *, immediate: bool = False
    ) -> Subscription[T]:
        """Follow ``source`` from ``after`` (exclusive). ``immediate``: poll at once if new."""
        feed = self._feeds.get(source.key)
        if feed is None:
            feed = Feed(self, source, after, immediate=immediate)
            self._feeds[source.key] = feed
        return feed.subscribe(after)

    def head(self, key: str) -> int | None:
        """The newest id the feed of stream ``key`` has published (None: not followed)."""
        feed = self._feeds.get(key)
        return None if feed is None else feed.head

    def demand(self) -> float:
        """Calls per second all feeds ask for, by activity alone."""
        return sum(1.0 / f.interval for f in self._feeds.values())

    @property
    def feeds(self) -> dict[str, Feed[Any]]:
        return dict(self._feeds)

    def _drop(self, feed: Feed[Any]) -> None:
        if self._feeds.get(feed.source.key) is feed:
            del self._feeds[feed.source.key]
            self._paces[feed.source.key] = (feed.last_poll, feed.interval)


class Feed(Generic[T]):
    """The shared poller of one stream: its head, its pace and its subscribers."""

    def __init__(
        self, hub: Hub, source: Source[T], head: int | None, *, immediate: bool = False
    ) -> None:
        self.hub = hub
        self.source = source
        #: Every item with an id up to ``head`` has been published (or predates the feed).
        self.head = head
        paced = hub._paces.pop(source.key, None)
        if paced is not None:
            self.last_poll, self.interval = paced
        else:
            now = hub.clock.monotonic()
            self.last_poll = now - hub.policy.max_interval if immediate else now
            self.interval = hub.policy.min_interval
        self.polls = 0
        self._subs: weakref.WeakSet[Subscription[T]] = weakref.WeakSet()
        self._leader: Subscription[T] | None = None
        self._round = anyio.Event()
        self._drained = anyio.Event()
        self._ident = source.ident or _no_ident

    # -- subscribers ----------------------------------------------------------------------

    def subscribe(self, after: int | None) -> Subscription[T]:
        sub = Subscription(self, after)
        if _lt(after, self.head):  # behind the feed: read (after, head] itself, then publications
            sub._catch_up = (after, self.head)
            sub.after = self.head
        self._subs.add(sub)
        return sub

    def leave(self, sub: Subscription[T]) -> None:
        self._subs.discard(sub)
        if self._leader is sub:
            self._leader = None
        self._wake()
        self._drained.set()
        if not self._subs:
            self.hub._drop(self)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _wake(self) -> None:
        self._round.set()
        self._round = anyio.Event()

    # -- the poll ---------------------------------------------------------------------------

    def due_in(self) -> float:
        """Seconds until the next poll is due (0 or less: now)."""
        hub = self.hub
        now = hub.clock.monotonic()
        policy = hub.policy
        wait = pace(
            self.interval, hub.demand(), hub.quota(), now, policy.quota_share, burst=policy.burst
        )
        return self.last_poll + wait - now

    async def _lead(self) -> None:
        clock = self.hub.clock
        while (delay := self.due_in()) > 0:
            # in steps, so that a pace set under pressure is revised as the pressure eases
            await clock.sleep(min(delay, self.hub.policy.min_interval))
        while self._backlogged():
            drained = self._drained = anyio.Event()
            await drained.wait()
        started = clock.monotonic()
        elapsed = started - self.last_poll
        try:
            batch = await catch_up(self.source, self.head, self.hub.read)
        except (E.TransportError, E.ServerError) as exc:
            self.last_poll = clock.monotonic()
            self.interval = min(self.hub.policy.max_interval, self.interval * 2)
            log.warning("%s: poll failed (%s); next in %.0fs", self.source.key, exc, self.interval)
            return
        self.polls += 1
        self.last_poll = clock.monotonic()
        self.interval = self.hub.policy.adapt(self.interval, len(batch), elapsed, self.source.page)
        if batch:
            self.head = self._ident(batch[-1])
            for sub in list(self._subs):
                sub._publish(batch)

    def _backlogged(self) -> bool:
        hw = self.hub.policy.high_water
        return any(len(s._buf) >= hw for s in self._subs)


class Subscription(Generic[T]):
    """One follower of a feed: ``await sub.next()`` → the next items, oldest first."""

    def __init__(self, feed: Feed[T], after: int | None) -> None:
        self.feed = feed
        #: Only items with a larger id are delivered.
        self.after = after
        self._buf: deque[T] = deque()
        self._catch_up: tuple[int | None, int | None] | None = None
        self._closed = False

    async def next(self) -> list[T]:
        """The next non-empty batch of new items, oldest first; waits (polling as leader)."""
        feed = self.feed
        if self._catch_up is not None:
            after, upto = self._catch_up
            self._catch_up = None
            own = await catch_up(feed.source, after, feed.hub.read, upto=upto)
            if own:
                return own
        while not self._buf:
            if self._closed:
                raise RuntimeError("subscription closed")
            if feed._leader is None:
                feed._leader = self
                try:
                    await feed._lead()
                finally:
                    if feed._leader is self:
                        feed._leader = None
                    feed._wake()
            else:
                await feed._round.wait()
        out = list(self._buf)
        self._buf.clear()
        feed._drained.set()
        return out

    def _publish(self, batch: Sequence[T]) -> None:
        ident = self.feed._ident
        after = self.after
        for item in batch:
            i = ident(item)
            if after is None or i > after:
                self._buf.append(item)
                after = i
        self.after = after

    def close(self) -> None:
        """Leave the feed (idempotent)."""
        if not self._closed:
            self._closed = True
            self._buf.clear()
            self.feed.leave(self)


def _lt(a: int | None, b: int | None) -> bool:
    """``a < b`` where None is below every id."""
    if b is None:
        return False
    return a is None or a < b


def _no_ident(item: object) -> int:
    raise TypeError("a feed needs items with ids")
