"""Where login tokens live, so that N worker processes can share one login.

Rules this module enforces:

* A store maps a key (base URL and phone) to one token; ``discard`` removes it only if it is
  still the token named, so a worker that saw a dead token cannot wipe a newer one.
* A *shared* store (``shared = True``) outlives any one client: leaving a Client's block does
  not log out a token that other processes use (it expires by itself after 30 idle minutes);
  an explicit ``client.logout()`` still does.
* The SQLite file holds secrets: it is created readable by its owner only. Its I/O runs on the
  store's own thread (:class:`agupshup.stores.SqliteThread`), never on the event loop.
* ``lock(key)`` makes login single-flight across processes: whoever holds it logs in while the
  others wait, then find the token it saved. The lock is a lease (``lease=``, ``LOCK_LEASE``
  seconds by default),
  renewed by the one lease rule (:class:`agupshup.stores.Renewer`: every third of it) while
  held, so a login slower than the lease (back-offs, a throttle wait) keeps it, and a worker
  that dies while logging in holds up the others for no longer than one lease.
* Redis: ``redis`` is a URL or a client, as for every Redis-backed store
  (:func:`agupshup.stores.connect_redis`); the store closes only a client it made.
* Nothing here logs a token.
* Time is the injected clock's (``clock=``, the real one by default): SQLite lock leases are on
  its wall time (Redis's on the server's clock), renewals and polls sleep on it, so a test
  moves a lease's expiry without waiting it out.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agupshup.clock import Clock, SystemClock
from agupshup.stores import Renewer, SqliteThread, close_redis, connect_redis

__all__ = ["LOCK_LEASE", "MemoryTokenStore", "RedisTokenStore", "SqliteTokenStore"]

LOCK_LEASE = 30.0
_POLL = 0.05


class MemoryTokenStore:
    """This process only (the default)."""

    __slots__ = ("_tokens",)
    shared = False

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    async def load(self, key: str) -> str | None:
        return self._tokens.get(key)

    async def save(self, key: str, token: str) -> None:
        self._tokens[key] = token

    async def discard(self, key: str, token: str) -> None:
        if self._tokens.get(key) == token:
            del self._tokens[key]

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        yield  # one process: the session's own single flight is enough

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._tokens)} tokens)"


class SqliteTokenStore:
    """Every process on this host that opens the same file shares its tokens."""

    __slots__ = ("_clock", "_db", "_lease", "_path")
    shared = True

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Clock | None = None,
        lease: float = LOCK_LEASE,
    ) -> None:
        self._path = os.fspath(path)
        self._lease = lease
        self._clock: Clock = clock if clock is not None else SystemClock()
        # Created here, private, before SQLite makes it with the umask's mode.
        os.close(os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600))
        self._db = SqliteThread(self._connect, name="agupshup-tokens")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, token TEXT)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY, owner TEXT, until REAL)"
        )
        return conn

    async def _query(self, sql: str, *args: str | float) -> str | None:
        row = await self._db.run(_fetch_one, sql, args)
        return None if row is None else str(row[0])

    async def load(self, key: str) -> str | None:
        return await self._query("SELECT token FROM tokens WHERE key = ?", key)

    async def save(self, key: str, token: str) -> None:
        await self._query("INSERT OR REPLACE INTO tokens (key, token) VALUES (?, ?)", key, token)

    async def discard(self, key: str, token: str) -> None:
        await self._query("DELETE FROM tokens WHERE key = ? AND token = ?", key, token)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        owner = uuid.uuid4().hex
        # The holder is another process: there is no event to wait on, only the file.
        while not await self._db.run(self._try_lock, key, owner):
            await self._clock.sleep(_POLL)

        async def renew() -> None:
            await self._query("UPDATE locks SET until = ? WHERE key = ? AND owner = ?",
                              self._clock.time() + self._lease, key, owner)

        try:
            async with Renewer(renew, self._clock, self._lease, what="login lock").held():
                yield
        finally:
            await self._query("DELETE FROM locks WHERE key = ? AND owner = ?", key, owner)

    def _try_lock(self, conn: sqlite3.Connection, key: str, owner: str) -> bool:
        now = self._clock.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM locks WHERE key = ? AND until < ?", (key, now))
            conn.execute(
                "INSERT OR IGNORE INTO locks VALUES (?, ?, ?)", (key, owner, now + self._lease)
            )
            row = conn.execute("SELECT owner FROM locks WHERE key = ?", (key,)).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return row is not None and row[0] == owner

    async def aclose(self) -> None:
        """Close the file (a later call opens it again)."""
        await self._db.aclose()

    def __repr__(self) -> str:
        return f"SqliteTokenStore({self._path!r})"


def _fetch_one(conn: sqlite3.Connection, sql: str, args: tuple[str | float, ...]) -> Any:
    return conn.execute(sql, args).fetchone()


_DISCARD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisTokenStore:
    """Every process that reaches the same Redis shares its tokens: ``redis`` is a URL or a
    ``redis.asyncio`` client (closed by :meth:`aclose` only if this store made it)."""

    __slots__ = ("_clock", "_lease", "_owns", "_prefix", "_redis")
    shared = True

    def __init__(
        self, redis: str | Any, *, prefix: str = "agupshup:token:", clock: Clock | None = None,
        lease: float = LOCK_LEASE,
    ) -> None:
        self._lease = lease
        # The lease itself runs on Redis's clock (``px``); renewals and polls sleep on ``clock``.
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._redis, self._owns = connect_redis(redis)
        self._prefix = prefix

    async def load(self, key: str) -> str | None:
        value = await self._redis.get(self._prefix + key)
        return None if value is None else value.decode() if isinstance(value, bytes) else value

    async def save(self, key: str, token: str) -> None:
        await self._redis.set(self._prefix + key, token)

    async def discard(self, key: str, token: str) -> None:
        await self._redis.eval(_DISCARD, 1, self._prefix + key, token)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        name, owner, ms = f"{self._prefix}lock:{key}", uuid.uuid4().hex, int(self._lease * 1000)
        # The holder is another process: polling is the portable wait (no keyspace events).
        while not await self._redis.set(name, owner, nx=True, px=ms):
            await self._clock.sleep(_POLL)

        async def renew() -> None:
            await self._redis.eval(_RENEW, 1, name, owner, ms)

        try:
            async with Renewer(renew, self._clock, self._lease, what="login lock").held():
                yield
        finally:
            await self._redis.eval(_DISCARD, 1, name, owner)

    async def aclose(self) -> None:
        """Close the client if this store made it (from a URL); leave one given to it open."""
        await close_redis(self._redis, self._owns)

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self._prefix!r})"
