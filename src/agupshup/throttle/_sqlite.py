"""A ledger in a SQLite file, shared by the processes of one host.

Rules this module enforces (beyond those of ``_ledger``):

* Times are wall-clock seconds (``clock.time()``), read inside the transaction, after the write
  lock is taken: the processes of one host share that clock, and the file survives restarts, so
  a process that restarts in a loop still sees the calls it made before.
* Every read-modify-write is one ``BEGIN IMMEDIATE`` transaction, so two processes can never
  both take the last place in a window.
* One row per entry: ``since`` is its admission; ``until`` the lease expiry while the call is
  in flight (``live = 1``) and the completion time after; its release in window ``w`` is
  ``min(until, now) + length_w``. Phantom rows (``period`` set) count in their window only.
  Rows are deleted a lease after no window can count them (learning still looks at them).
* SQLite blocks, so each ledger runs its statements on one thread of its own.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from ._lease import SharedLedger
from ._ledger import Admission, View, implied_counts

__all__ = ["SqliteLedger"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS throttle_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    egress TEXT NOT NULL,
    period TEXT,
    live INTEGER NOT NULL,
    since REAL NOT NULL,
    until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS throttle_calls_until ON throttle_calls (egress, until);
CREATE TABLE IF NOT EXISTS throttle_holds (
    egress TEXT NOT NULL,
    period TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (egress, period)
);
"""
_IN_WINDOW = "egress = ? AND until > ? AND (period IS NULL OR period = ?)"


class SqliteLedger(SharedLedger):
    """Entries of one egress (``key``) in the SQLite file at ``path``."""

    __slots__ = ("_busy_timeout", "_conn", "_executor", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str = "default",
        lease: float = 30.0,
        busy_timeout: float = 30.0,
    ) -> None:
        super().__init__(lease)
        self._path = os.fspath(path)
        self._key = key
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- async face -------------------------------------------------------------------------

    async def _admit(self, limits: tuple[int, ...]) -> Admission:
        return await self._run(self._admit_now, limits)

    async def _release(
        self, ticket: int, learned: tuple[tuple[int, int], ...], held: tuple[int, ...]
    ) -> None:
        await self._run(self._release_now, ticket, learned, held)

    async def _cancel(self, ticket: int) -> None:
        await self._run(self._cancel_now, ticket)

    async def _renew(self, tickets: tuple[int, ...]) -> None:
        await self._run(self._renew_now, tickets)

    async def usage(self) -> View:
        return await self._run(self._usage)

    async def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=False)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="agupshup-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def __repr__(self) -> str:
        return f"SqliteLedger({self._path!r}, key={self._key!r})"

    # -- on the ledger's thread -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        assert self._clock is not None, "bind() first"
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db, self._clock.time()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _admit_now(self, limits: tuple[int, ...]) -> Admission:
        with self._transaction() as (db, now):
            self._sweep(db, now)
            counts = [self._count(db, now, i) for i in range(len(self._windows))]
            wait, window = self._hold(db, now)
            for i, count in enumerate(counts):
                free_in = self._free_in(db, now, i, count, limits[i])
                if free_in > wait:
                    wait, window = free_in, i
            if window >= 0:
                self._view = self._measure(db, now, counts)
                return Admission(None, wait, window, counts)
            cursor = db.execute(
                "INSERT INTO throttle_calls (egress, period, live, since, until) "
                "VALUES (?, NULL, 1, ?, ?)",
                (self._key, now, now + self._lease),
            )
            assert cursor.lastrowid is not None
            counts = [c + 1 for c in counts]
            self._view = self._measure(db, now, counts)
            return Admission(cursor.lastrowid, 0.0, -1, counts)

    def _release_now(
        self, ticket: int, learned: tuple[tuple[int, int], ...], held: tuple[int, ...]
    ) -> None:
        with self._transaction() as (db, now):
            row = db.execute("SELECT since FROM throttle_calls WHERE id = ?", (ticket,)).fetchone()
            since = now if row is None else float(row[0])
            db.execute(
                "UPDATE throttle_calls SET live = 0, until = ? WHERE id = ? AND live = 1",
                (now, ticket),
            )
            for i, count in implied_counts(self._windows, learned):
                # Ours the server could have counted: alive at dispatch, or admitted since.
                missing = count - self._count(db, since, i)
                db.executemany(
                    "INSERT INTO throttle_calls (egress, period, live, since, until) "
                    "VALUES (?, ?, 0, ?, ?)",
                    [(self._key, self._windows[i].period, now, now)] * max(0, missing),
                )
            for i in held:
                db.execute(
                    "INSERT INTO throttle_holds (egress, period, until) VALUES (?, ?, ?) "
                    "ON CONFLICT (egress, period) DO UPDATE SET until = max(until, excluded.until)",
                    (self._key, self._windows[i].period, now + self._windows[i].length),
                )
            self._view = self._measure(db, now)

    def _cancel_now(self, ticket: int) -> None:
        with self._transaction() as (db, _):
            db.execute("DELETE FROM throttle_calls WHERE id = ? AND live = 1", (ticket,))

    def _renew_now(self, tickets: tuple[int, ...]) -> None:
        with self._transaction() as (db, now):
            db.executemany(
                "UPDATE throttle_calls SET until = ? WHERE id = ? AND live = 1",
                [(now + self._lease, t) for t in tickets],
            )

    def _usage(self) -> View:
        with self._transaction() as (db, now):
            self._view = self._measure(db, now)
            return self._view

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        """Delete the rows nobody needs any more, and holds that ended."""
        longest = max(w.length for w in self._windows)
        db.execute("DELETE FROM throttle_calls WHERE egress = ? AND until <= ?",
                   (self._key, now - longest - self._lease))
        db.execute("DELETE FROM throttle_holds WHERE egress = ? AND until <= ?", (self._key, now))

    def _count(self, db: sqlite3.Connection, now: float, i: int) -> int:
        """Entries of window ``i`` whose release is after ``now`` (or that entered since)."""
        w = self._windows[i]
        row = db.execute(f"SELECT count(*) FROM throttle_calls WHERE {_IN_WINDOW}",
                         (self._key, now - w.length, w.period)).fetchone()
        return int(row[0])

    def _free_in(self, db: sqlite3.Connection, now: float, i: int, count: int, limit: int) -> float:
        """Seconds until window ``i`` holds fewer than ``limit`` entries."""
        if count < limit:
            return 0.0
        w = self._windows[i]
        row = db.execute(
            f"SELECT until FROM throttle_calls WHERE {_IN_WINDOW} ORDER BY until "
            "LIMIT 1 OFFSET ?",
            (self._key, now - w.length, w.period, count - limit),
        ).fetchone()
        # In flight (until > now): it cannot leave before now + length, when we look again.
        return min(float(row[0]), now) + w.length - now

    def _hold(self, db: sqlite3.Connection, now: float) -> tuple[float, int]:
        """Seconds the longest hold still lasts, and its window (0.0, -1 without a hold)."""
        periods = {w.period: i for i, w in enumerate(self._windows)}
        row = db.execute("SELECT period, until FROM throttle_holds WHERE egress = ? "
                         "AND until > ? ORDER BY until DESC LIMIT 1", (self._key, now)).fetchone()
        if row is None:
            return 0.0, -1
        # A hold set by a process with other windows holds all the same: blame window 0.
        return float(row[1]) - now, periods.get(row[0], 0)

    def _measure(self, db: sqlite3.Connection, now: float, counts: list[int] | None = None) -> View:
        assert self._clock is not None
        if counts is None:
            counts = [self._count(db, now, i) for i in range(len(self._windows))]
        frees = [self._free_in(db, now, i, c, w.limit)
                 for i, (c, w) in enumerate(zip(counts, self._windows, strict=True))]
        held, held_window = self._hold(db, now)
        return View(self._clock.monotonic(), counts, frees, held, held_window)

