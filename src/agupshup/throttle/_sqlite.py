"""A ledger in a SQLite file, shared by the processes of one host.

Rules this module enforces (beyond those of ``_ledger``):

* Times are host time (``_hosttime``: the boot id and ``CLOCK_BOOTTIME`` on Linux), read inside
  the transaction, after the write lock is taken: the processes of one host share that clock, a
  wall-clock step moves nothing, and the file survives restarts, so a process that restarts in a
  loop still sees the calls it made before. Each row and hold records its era (boot); rows and
  holds of another era are re-dated, conservatively, before anything is counted.
* One host only: two hosts sharing the file would re-date each other's entries. One kind of
  host time per egress, for the same reason: the first transaction records it (``boot`` or
  ``wall``, see ``_hosttime.era_kind``) and a ledger of the other kind raises LedgerError.
* Every read-modify-write is one ``BEGIN IMMEDIATE`` transaction, so two processes can never
  both take the last place in a window.
* One row per entry: ``since`` is its admission; ``until`` the lease expiry while the call is
  in flight (``live = 1``) and the completion time after; its release in window ``w`` is
  ``min(until, now) + length_w``. Phantom rows (``period`` set) count in their window only.
  Rows are deleted a lease after no window can count them (learning still looks at them).
* SQLite blocks, so each ledger runs its statements on one thread of its own
  (:class:`agupshup.stores.SqliteThread`, the one way a store keeps SQLite off the loop).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from agupshup.clock import Clock
from agupshup.errors import LedgerError
from agupshup.stores import SqliteThread

from ._hosttime import HostTime, default_host_time, era_kind, redate
from ._lease import SharedLedger
from ._ledger import Admission, View, implied_counts
from ._windows import Window

__all__ = ["SqliteLedger"]

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
CREATE TABLE IF NOT EXISTS throttle_meta (
    egress TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (egress, name)
);
"""
_IN_WINDOW = "egress = ? AND until > ? AND (period IS NULL OR period = ?)"
# Files written before eras existed get the column; their rows (era '') are then re-dated.
_ERA_TABLES = ("throttle_calls", "throttle_holds")
_ERA_INDEX = "CREATE INDEX IF NOT EXISTS throttle_calls_boot ON throttle_calls (egress, boot)"
# Two index ranges (below and above this era): nothing is scanned while every row is ours.
_FOREIGN = (
    "SELECT boot FROM throttle_calls WHERE egress = ?1 AND boot < ?2 "
    "UNION SELECT boot FROM throttle_calls WHERE egress = ?1 AND boot > ?2 "
    "UNION SELECT boot FROM throttle_holds WHERE egress = ?1 AND boot != ?2"
)


class SqliteLedger(SharedLedger):
    """Entries of one egress (``key``) in the SQLite file at ``path``.

    ``host_time`` replaces the host clock (tests); by default it is boot time for the real
    clock on Linux, and the injected clock's ``time()`` otherwise.
    """

    __slots__ = ("_busy_timeout", "_db", "_era", "_host_time", "_kind_claimed", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str = "default",
        lease: float = 30.0,
        busy_timeout: float = 30.0,
        host_time: HostTime | None = None,
    ) -> None:
        super().__init__(lease)
        self._host_time = host_time
        self._era = ""
        self._kind_claimed = False
        self._path = os.fspath(path)
        self._key = key
        self._busy_timeout = busy_timeout
        self._db = SqliteThread(self._connect, name="agupshup-ledger")

    def bind(self, windows: Sequence[Window], clock: Clock) -> None:
        super().bind(windows, clock)
        if self._host_time is None:
            self._host_time = default_host_time(clock)

    # -- async face -------------------------------------------------------------------------

    async def _admit(self, limits: tuple[int, ...]) -> Admission:
        return await self._db.run(self._admit_now, limits)

    async def _release(
        self, ticket: int, learned: tuple[tuple[int, int], ...], held: tuple[int, ...]
    ) -> None:
        await self._db.run(self._release_now, ticket, learned, held)

    async def _cancel(self, ticket: int) -> None:
        await self._db.run(self._cancel_now, ticket)

    async def _renew(self, tickets: tuple[int, ...]) -> None:
        await self._db.run(self._renew_now, tickets)

    async def usage(self) -> View:
        return await self._db.run(self._usage)

    async def forget(self) -> None:
        """Drop this egress's entries and holds: for a server known to have been reset (an
        emulator restarted), whose windows no longer hold the calls counted here."""
        await self._db.run(self._forget_now)

    async def _close(self) -> None:
        await self._db.aclose()
        # A connection opened again claims its kind of host time again.
        self._kind_claimed = False

    def __repr__(self) -> str:
        return f"SqliteLedger({self._path!r}, key={self._key!r})"

    # -- on the ledger's thread -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        _add_eras(conn)
        return conn

    @contextmanager
    def _transaction(self, db: sqlite3.Connection) -> Iterator[float]:
        assert self._host_time is not None, "bind() first"
        with _immediate(db):
            self._era, now = self._host_time.read()
            if not self._kind_claimed:
                self._claim_kind(db)
            self._redate(db, now)
            yield now

    def _admit_now(self, db: sqlite3.Connection, limits: tuple[int, ...]) -> Admission:
        with self._transaction(db) as now:
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
                "INSERT INTO throttle_calls (egress, period, live, since, until, boot) "
                "VALUES (?, NULL, 1, ?, ?, ?)",
                (self._key, now, now + self._lease, self._era),
            )
            assert cursor.lastrowid is not None
            counts = [c + 1 for c in counts]
            self._view = self._measure(db, now, counts)
            return Admission(cursor.lastrowid, 0.0, -1, counts)

    def _release_now(
        self, db: sqlite3.Connection, ticket: int, learned: tuple[tuple[int, int], ...],
        held: tuple[int, ...],
    ) -> None:
        with self._transaction(db) as now:
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
                    "INSERT INTO throttle_calls (egress, period, live, since, until, boot) "
                    "VALUES (?, ?, 0, ?, ?, ?)",
                    [(self._key, self._windows[i].name, now, now, self._era)] * max(0, missing),
                )
            for i in held:
                db.execute(
                    "INSERT INTO throttle_holds (egress, period, until, boot) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (egress, period) DO UPDATE SET until = max(until, excluded.until)",
                    (self._key, self._windows[i].name, now + self._windows[i].length, self._era),
                )
            self._view = self._measure(db, now)

    def _cancel_now(self, db: sqlite3.Connection, ticket: int) -> None:
        with self._transaction(db):
            db.execute("DELETE FROM throttle_calls WHERE id = ? AND live = 1", (ticket,))

    def _renew_now(self, db: sqlite3.Connection, tickets: tuple[int, ...]) -> None:
        with self._transaction(db) as now:
            db.executemany(
                "UPDATE throttle_calls SET until = ? WHERE id = ? AND live = 1",
                [(now + self._lease, t) for t in tickets],
            )

    def _forget_now(self, db: sqlite3.Connection) -> None:
        with self._transaction(db) as now:
            db.execute("DELETE FROM throttle_calls WHERE egress = ?", (self._key,))
            db.execute("DELETE FROM throttle_holds WHERE egress = ?", (self._key,))
            self._view = self._measure(db, now)

    def _usage(self, db: sqlite3.Connection) -> View:
        with self._transaction(db) as now:
            self._view = self._measure(db, now)
            return self._view

    def _claim_kind(self, db: sqlite3.Connection) -> None:
        """Record this egress's kind of host time, or refuse another: inside the write lock,
        so two first processes of different kinds cannot both claim it."""
        kind = era_kind(self._era)
        db.execute("INSERT OR IGNORE INTO throttle_meta (egress, name, value) "
                   "VALUES (?, 'clock', ?)", (self._key, kind))
        row = db.execute("SELECT value FROM throttle_meta WHERE egress = ? AND name = 'clock'",
                         (self._key,)).fetchone()
        if row[0] != kind:
            raise LedgerError(
                f"{self!r}: egress {self._key!r} in this file is timed by {row[0]!r} host time, "
                f"this process by {kind!r} ({self._host_time!r}); the two cannot be compared, "
                "so each would keep re-dating the other's entries and a full window would hold "
                "everyone forever. Use the same kind of clock in every process sharing the file "
                "(all the system clock, or all an injected one), or give this process another "
                "file or key; to switch kinds, delete the file while no process uses it")
        self._kind_claimed = True

    def _redate(self, db: sqlite3.Connection, now: float) -> None:
        """Rows and holds of another era (boot): ended at the latest at ``redate``, i.e. at the
        start of this boot, or now when that cannot be proven; a hold lasts its window from
        there (the longest one when its window is not ours)."""
        key, era = self._key, self._era
        foreign = db.execute(_FOREIGN, (key, era)).fetchall()
        longest = max(w.length for w in self._windows)
        lengths = {w.name: w.length for w in self._windows}
        for (boot,) in foreign:
            end = redate(era, boot, now)
            db.execute("UPDATE throttle_calls SET live = 0, since = ?, until = ?, boot = ? "
                       "WHERE egress = ? AND boot = ?", (end, end, era, key, boot))
            holds = db.execute("SELECT period FROM throttle_holds WHERE egress = ? AND boot = ?",
                               (key, boot)).fetchall()
            db.executemany("UPDATE throttle_holds SET until = ?, boot = ? WHERE egress = ? "
                           "AND period = ?",
                           [(end + lengths.get(p, longest), era, key, p) for (p,) in holds])

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
                         (self._key, now - w.length, w.name)).fetchone()
        return int(row[0])

    def _free_in(self, db: sqlite3.Connection, now: float, i: int, count: int, limit: int) -> float:
        """Seconds until window ``i`` holds fewer than ``limit`` entries."""
        if count < limit:
            return 0.0
        w = self._windows[i]
        row = db.execute(
            f"SELECT until FROM throttle_calls WHERE {_IN_WINDOW} ORDER BY until "
            "LIMIT 1 OFFSET ?",
            (self._key, now - w.length, w.name, count - limit),
        ).fetchone()
        # In flight (until > now): it cannot leave before now + length, when we look again.
        return min(float(row[0]), now) + w.length - now

    def _hold(self, db: sqlite3.Connection, now: float) -> tuple[float, int]:
        """Seconds the longest hold still lasts, and its window (0.0, -1 without a hold)."""
        periods = {w.name: i for i, w in enumerate(self._windows)}
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



def _add_eras(conn: sqlite3.Connection) -> None:
    """Give a file of an earlier version its ``boot`` columns (its rows get era '')."""
    with _immediate(conn):
        for table in _ERA_TABLES:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if "boot" not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN boot TEXT NOT NULL DEFAULT ''")
        conn.execute(_ERA_INDEX)


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: the lock is taken before anything is read."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
