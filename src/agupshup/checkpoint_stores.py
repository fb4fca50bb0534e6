"""Checkpoint stores: where cursors are kept across restarts (memory, SQLite, Redis).

Rules this module enforces:

* A store keeps opaque JSON strings by key (:class:`agupshup.checkpoint.CheckpointStore`); it
  knows nothing of cursors, which :mod:`agupshup.checkpoint` writes and reads.
* SQLite uses only :mod:`sqlite3`: each save is one committed transaction, run on the store's
  own thread, off the event loop (:class:`agupshup.stores.SqliteThread`).
* Redis takes a URL or any ``redis.asyncio`` client, like every Redis-backed store
  (:func:`agupshup.stores.connect_redis`), and closes only a client it made.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path
from typing import Any, Self

from agupshup.stores import SqliteThread, close_redis, connect_redis

__all__ = ["MemoryCheckpointStore", "RedisCheckpointStore", "SqliteCheckpointStore"]


class MemoryCheckpointStore:
    """A dict: for tests and single-process use."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.saves = 0

    async def load(self, key: str) -> str | None:
        return self.data.get(key)

    async def save(self, key: str, value: str) -> None:
        self.data[key] = value
        self.saves += 1

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)


class SqliteCheckpointStore:
    """One table in an SQLite file; every save is committed before ``save`` returns.

    ``SqliteCheckpointStore("cursors.db")``; close with ``close()`` or ``async with``. The
    statements run on the store's own thread (:class:`agupshup.stores.SqliteThread`).
    """

    def __init__(self, path: str | Path, *, table: str = "agupshup_checkpoints") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"bad table name {table!r}")
        self.path = str(path)
        self.table = table
        # Opened by the first statement, on the store's thread: opening a file, switching it to
        # WAL and creating the table all block, and may wait for another process's lock.
        self._db = SqliteThread(self._open, name="agupshup-checkpoints")
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL)"
            )
        except BaseException:
            db.close()
            raise
        return db

    async def _run(self, sql: str, *args: str) -> list[Any]:
        if self._closed:
            raise RuntimeError("checkpoint store closed")
        return await self._db.run(_fetch_all, sql, args)

    async def load(self, key: str) -> str | None:
        rows = await self._run(f"SELECT value FROM {self.table} WHERE key = ?", key)
        return str(rows[0][0]) if rows else None

    async def save(self, key: str, value: str) -> None:
        await self._run(
            f"INSERT INTO {self.table} (key, value, updated) VALUES (?, ?, julianday('now')) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            key, value,
        )

    async def delete(self, key: str) -> None:
        await self._run(f"DELETE FROM {self.table} WHERE key = ?", key)

    def close(self) -> None:
        """Close the file once the saves already asked for are committed."""
        self._closed = True
        self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteCheckpointStore({self.path!r})"


def _fetch_all(db: sqlite3.Connection, sql: str, args: tuple[str, ...]) -> list[Any]:
    return db.execute(sql, args).fetchall()


class RedisCheckpointStore:
    """Keys ``{prefix}{key}`` in Redis. ``redis``: a URL or a ``redis.asyncio`` client, as for
    every Redis-backed store (:func:`agupshup.stores.connect_redis`).

    ``RedisCheckpointStore("redis://localhost")`` owns the client it makes, and ``aclose()`` (or
    ``async with``) closes it; ``RedisCheckpointStore(client)`` leaves the client to its owner.
    A URL needs the ``redis`` extra (``pip install agupshup[redis]``).
    """

    def __init__(self, redis: str | Any, *, prefix: str = "agupshup:cursor:") -> None:
        self.redis, self._owns = connect_redis(redis)
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "agupshup:cursor:") -> RedisCheckpointStore:
        """Deprecated: ``RedisCheckpointStore(url)`` takes a URL itself."""
        warnings.warn("RedisCheckpointStore.from_url(url) is deprecated: pass the URL to "
                      "RedisCheckpointStore(url)", DeprecationWarning, stacklevel=2)
        return cls(url, prefix=prefix)

    async def aclose(self) -> None:
        """Close the client if this store made it (from a URL); else leave it open."""
        owned, self._owns = self._owns, False
        await close_redis(self.redis, owned)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def load(self, key: str) -> str | None:
        value = await self.redis.get(self.prefix + key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def save(self, key: str, value: str) -> None:
        await self.redis.set(self.prefix + key, value)

    async def delete(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)
