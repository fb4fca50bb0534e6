"""The SQLite ledger across clock steps and reboots (rules in ``agupshup/throttle/_hosttime.py``).

A step of the wall clock must neither admit extra calls nor stall callers; entries of another
boot are re-dated to the start of this one; a file of an earlier version (wall-clock rows) is
held a full window from now."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agupshup.clock import FakeClock, SystemClock
from agupshup.errors import LedgerError
from agupshup.throttle import SqliteLedger, Window

MINUTE = (Window("minute", 5, 60.0, 4),)
FULL = (5,)


class FakeHost:
    """A host clock the test moves: an era (boot) and seconds within it."""

    def __init__(self, era: str = "boot:a", now: float = 1000.0) -> None:
        self.era, self.now = era, now

    def read(self) -> tuple[str, float]:
        return self.era, self.now


Make = Callable[..., SqliteLedger]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[SqliteLedger] = []

    def build(clock: object = None, host: FakeHost | None = None) -> SqliteLedger:
        ledger = SqliteLedger(tmp_path / "ledger.sqlite3", lease=30.0, host_time=host)
        ledger.bind(MINUTE, clock or FakeClock())  # type: ignore[arg-type]
        made.append(ledger)
        return ledger

    yield build
    for ledger in made:
        await ledger.aclose()


async def spend(ledger: SqliteLedger, n: int) -> None:
    for _ in range(n):
        admission = await ledger.admit(FULL)
        assert admission.ticket is not None
        await ledger.release(admission.ticket)


@pytest.mark.parametrize("step", [61.0, -61.0, 3600.0, -3600.0])
async def test_a_wall_clock_step_admits_nothing_extra_and_stalls_nobody(
    make: Make, monkeypatch: pytest.MonkeyPatch, step: float
) -> None:
    # The real clock, as in production: only the wall clock is stepped.
    ledger = make(SystemClock())
    await spend(ledger, 5)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + step)
    refused = await ledger.admit(FULL)
    assert refused.ticket is None, "the step admitted a call beyond the limit"
    # Released just now: the place frees in at most a window, not a window plus the step.
    assert 50.0 < refused.wait <= 60.0


async def test_entries_of_an_earlier_boot_end_at_this_boots_start(make: Make) -> None:
    host = FakeHost("boot:a", 5000.0)
    await spend(make(host=host), 3)
    in_flight = await make(host=host).admit(FULL)  # its process dies with the boot
    hold = make(host=host)
    ticket = (await hold.admit(FULL)).ticket
    assert ticket is not None
    await hold.release(ticket, held=[0])
    host.era, host.now = "boot:b", 20.0
    refused = await make(host=host).admit(FULL)
    # Five calls and a hold of the old boot: all ended by this boot's start (0), so 40 s left.
    assert in_flight.ticket is not None
    assert (refused.ticket, refused.counts, refused.wait) == (None, (5,), pytest.approx(40.0))
    host.now = 60.0
    assert (await make(host=host).admit(FULL)).ticket is not None


async def test_a_file_of_an_earlier_version_is_held_a_full_window(
    make: Make, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:  # the schema before eras: wall-clock rows, no boot column
        db.executescript(
            "CREATE TABLE throttle_calls (id INTEGER PRIMARY KEY AUTOINCREMENT, egress TEXT NOT "
            "NULL, period TEXT, live INTEGER NOT NULL, since REAL NOT NULL, until REAL NOT NULL);"
            "CREATE TABLE throttle_holds (egress TEXT NOT NULL, period TEXT NOT NULL, "
            "until REAL NOT NULL, PRIMARY KEY (egress, period));"
        )
        now = time.time()
        db.executemany(
            "INSERT INTO throttle_calls (egress, period, live, since, until) "
            "VALUES ('default', NULL, 0, ?, ?)",
            [(now - 1, now - 1)] * 5,
        )
    host = FakeHost("boot:a", 30.0)
    refused = await make(host=host).admit(FULL)
    # Their wall times cannot be compared with boot time: taken as ended now.
    assert (refused.ticket, refused.wait) == (None, pytest.approx(60.0))
    host.now = 90.0
    assert (await make(host=host).admit(FULL)).ticket is not None


@pytest.mark.parametrize("first_boot", [True, False])
async def test_two_kinds_of_host_time_on_one_file_are_refused(
    make: Make, tmp_path: Path, first_boot: bool
) -> None:
    """Boot time and an injected clock's time cannot be compared: each would re-date the
    other's entries at every transaction, and a full window would never empty."""
    boot, wall = (lambda: make(host=FakeHost("boot:a", 30.0))), (lambda: make(FakeClock()))
    first, second = (boot, wall) if first_boot else (wall, boot)
    await spend(first(), 2)
    with pytest.raises(LedgerError, match="delete the file while no process uses it"):
        await second().admit(FULL)
    assert (await first().admit(FULL)).ticket is not None  # the first kind keeps the file
    other = SqliteLedger(tmp_path / "ledger.sqlite3", key="other", host_time=None)
    other.bind(MINUTE, FakeClock() if first_boot else SystemClock())
    try:  # another egress in the same file may use the other kind
        assert (await other.admit(FULL)).ticket is not None
    finally:
        await other.aclose()
