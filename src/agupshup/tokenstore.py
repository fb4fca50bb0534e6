"""Where login tokens live, so that N worker processes can share one login.

Rules this module enforces:

* A store maps a key (base URL and phone) to one token; ``discard`` removes it only if it is
  still the token named, so a worker that saw a dead token cannot wipe a newer one.
* A *shared* store (``shared = True``) outlives any one client: leaving a Client's block does
  not log out a token that other processes use (it expires by itself after 30 idle minutes);
  an explicit ``client.logout()`` still does.
* The SQLite file holds secrets: it is created readable by its owner only. Its I/O runs in a
  worker thread, never on the event loop.
* ``lock(key)`` makes login single-flight across processes: whoever holds it logs in while the
  others wait, then find the token it saved. The lock is a lease (``LOCK_LEASE`` seconds), so
  a worker that dies while logging in holds up the others for no longer than that.
* Nothing here logs a token.
* Time is the injected clock's (``clock=``, the real one by default): lock leases are on its
  wall time and polls sleep on it, so a test moves a lease's expiry without waiting it out.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agupshup.clock import Clock, SystemClock

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

    __slots__ = ("_clock", "_path")
    shared = True

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self._path = os.fspath(path)
        self._clock: Clock = clock if clock is not None else SystemClock()
        fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        conn = self._connect()
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, token TEXT)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY, owner TEXT, until REAL)"
            )
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30.0, isolation_level=None)

    def _query(self, sql: str, *args: str) -> str | None:
        conn = self._connect()
        try:
            row = conn.execute(sql, args).fetchone()
        finally:
            conn.close()
        return None if row is None else str(row[0])

    async def load(self, key: str) -> str | None:
        return await asyncio.to_thread(self._query, "SELECT token FROM tokens WHERE key = ?", key)

    async def save(self, key: str, token: str) -> None:
        await asyncio.to_thread(
            self._query, "INSERT OR REPLACE INTO tokens (key, token) VALUES (?, ?)", key, token
        )

    async def discard(self, key: str, token: str) -> None:
        await asyncio.to_thread(
            self._query, "DELETE FROM tokens WHERE key = ? AND token = ?", key, token
        )

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        owner = uuid.uuid4().hex
        # The holder is another process: there is no event to wait on, only the file.
        while not await asyncio.to_thread(self._try_lock, key, owner):
            await self._clock.sleep(_POLL)
        try:
            yield
        finally:
            await asyncio.to_thread(
                self._query, "DELETE FROM locks WHERE key = ? AND owner = ?", key, owner
            )

    def _try_lock(self, key: str, owner: str) -> bool:
        now = self._clock.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM locks WHERE key = ? AND until < ?", (key, now))
            conn.execute(
                "INSERT OR IGNORE INTO locks VALUES (?, ?, ?)", (key, owner, now + LOCK_LEASE)
            )
            row = conn.execute("SELECT owner FROM locks WHERE key = ?", (key,)).fetchone()
            conn.execute("COMMIT")
        finally:
            conn.close()
        return row is not None and row[0] == owner

    def __repr__(self) -> str:
        return f"SqliteTokenStore({self._path!r})"


_DISCARD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """Every process that reaches the same Redis shares its tokens (redis-py asyncio)."""

    __slots__ = ("_clock", "_prefix", "_redis")
    shared = True

    def __init__(
        self, redis: Any, *, prefix: str = "agupshup:token:", clock: Clock | None = None
    ) -> None:
        # The lease itself runs on Redis's clock (``px``); only the polls sleep on ``clock``.
        self._clock: Clock = clock if clock is not None else SystemClock()
        if isinstance(redis, str):
            from redis.asyncio import Redis

            redis = Redis.from_url(redis)
        self._redis = redis
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
        name, owner = f"{self._prefix}lock:{key}", uuid.uuid4().hex
        # The holder is another process: polling is the portable wait (no keyspace events).
        while not await self._redis.set(name, owner, nx=True, px=int(LOCK_LEASE * 1000)):
            await self._clock.sleep(_POLL)
        try:
            yield
        finally:
            await self._redis.eval(_DISCARD, 1, name, owner)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self._prefix!r})"
