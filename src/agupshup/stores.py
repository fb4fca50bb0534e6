"""The building blocks of every store kept outside this process (token stores, throttle ledgers,
checkpoint stores, the fleet): a Redis connection, SQLite off the event loop, a renewable lease.

Rules this module enforces:

* **Redis.** A store takes ``redis``: a URL or a ``redis.asyncio`` client. :func:`connect_redis`
  turns either into a client and says whether the store owns it; :func:`close_redis` closes it
  only then. A store never closes a client it was given: its owner may still use it.
* **SQLite.** Each store's connection lives on one thread of its own (:class:`SqliteThread`),
  and every statement runs there, never on the event loop (see the class for why this rather
  than a shared thread pool).
* **Leases.** Anything a store keeps alive for a holder (a throttle entry in flight, a login
  lock, a fleet member's claims) is a lease of some TTL, renewed every :data:`RENEW_SHARE` of
  that TTL while it is held (:class:`Renewer`), so that two renewals in a row can fail before
  it lapses. The expiry is on the store's own clock where it has one (Redis ``TIME``, ``PX``;
  SQLite host time); the renewals are paced on the injected clock, so a test moves them.
* A failed renewal is logged, not raised: the lease then lapses by itself, as a dead holder's
  would; the holder that must stop at once (the fleet) checks the lease's age on its own.

Layering: imports only ``agupshup.clock``; everything above may use it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from agupshup.clock import Clock

__all__ = ["RENEW_SHARE", "Renewer", "SqliteThread", "close_redis", "connect_redis",
           "renew_period"]

logger = logging.getLogger("agupshup.stores")

T = TypeVar("T")
P = ParamSpec("P")

#: A lease is renewed every third of its TTL.
RENEW_SHARE = 1 / 3


# -- Redis ------------------------------------------------------------------------------------


def connect_redis(redis: str | Any, **options: Any) -> tuple[Any, bool]:
    """A ``redis.asyncio`` client for ``redis`` (a URL, made with ``options``, or a client,
    used as it is), and whether the caller owns it (made it, so must close it)."""
    if isinstance(redis, str):
        from redis.asyncio import Redis

        return Redis.from_url(redis, **options), True
    return redis, False


async def close_redis(client: Any, owned: bool) -> None:
    """Close ``client`` if :func:`connect_redis` made it; leave a client given to us open."""
    if owned:
        await client.aclose()


# -- SQLite -----------------------------------------------------------------------------------


class SqliteThread:
    """One SQLite connection (opened by ``open``, on first use) and the one thread that uses it.

    Why one thread per connection, and not ``asyncio.to_thread``/``anyio.to_thread``: a
    ``sqlite3`` connection belongs to the thread that opened it, and opening one costs a file
    open, the WAL switch and the schema; a thread of its own keeps one connection for the
    store's life, runs the store's statements in the order they were asked (a save, then a load,
    see each other) without a lock, and never waits behind unrelated work in a shared pool (a
    ``busy_timeout`` wait on another process's lock occupies this thread only).

    After :meth:`close` the next statement opens a connection again, on a new thread (the
    statements queued before the close still run on the old one, with the old connection).
    """

    __slots__ = ("_executor", "_local", "_name", "_open")

    def __init__(
        self, open: Callable[[], sqlite3.Connection], *, name: str = "agupshup-sqlite"
    ) -> None:
        self._open = open
        self._name = name
        # The connection of each thread this store has had (one at a time, but a closing one may
        # still be running what was queued before the close).
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None

    async def run(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(connection, *args, **kwargs)`` on the store's thread."""
        job = functools.partial(self._with_connection, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._thread(), job)

    def call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`run` for a synchronous caller (one that is not on an event loop): blocks."""
        job = functools.partial(self._with_connection, fn, *args, **kwargs)
        return self._thread().submit(job).result()

    async def aclose(self) -> None:
        """Close the connection once the statements already asked for have run."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=False)

    def close(self) -> None:
        """:meth:`aclose` without waiting: the connection closes after the queued statements."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(self._disconnect)
            executor.shutdown(wait=False)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        return self._executor

    def _with_connection(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return fn(conn, *args, **kwargs)

    def _disconnect(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


# -- leases -----------------------------------------------------------------------------------


def renew_period(ttl: float) -> float:
    """Seconds between two renewals of a lease that lives ``ttl`` seconds."""
    if not ttl > 0:
        raise ValueError("a lease's TTL must be positive")
    return ttl * RENEW_SHARE


class Renewer:
    """Calls ``renew`` every :func:`renew_period` of ``ttl`` on ``clock``, while ``wanted()``.

    :meth:`start` (idempotent) begins renewing on the running loop; the renewals stop by
    themselves once ``wanted()`` is false, or at :meth:`stop`. ``held()`` renews for the
    duration of an ``async with`` block.
    """

    __slots__ = ("_clock", "_log", "_period", "_renew", "_task", "_wanted", "_what")

    def __init__(
        self,
        renew: Callable[[], Awaitable[object]],
        clock: Clock,
        ttl: float,
        *,
        what: str = "lease",
        wanted: Callable[[], bool] = lambda: True,
        log: logging.Logger = logger,
    ) -> None:
        self._period = renew_period(ttl)
        self._renew = renew
        self._clock = clock
        self._what = what
        self._wanted = wanted
        self._log = log
        self._task: asyncio.Task[None] | None = None

    @property
    def period(self) -> float:
        return self._period

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._keep())

    async def stop(self) -> None:
        """Stop renewing; what was leased lapses by itself at its expiry."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            await self.stop()

    async def _keep(self) -> None:
        while self._wanted():
            await self._clock.sleep(self._period)
            if not self._wanted():
                return
            try:
                await self._renew()
            except Exception as exc:
                self._log.warning("%s renewal failed: %r", self._what, exc)
