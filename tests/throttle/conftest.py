"""Fixtures of the throttle tests: ledgers of every kind (``redis_url`` is in tests/conftest)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from throttle_sim import LedgerFactory

from agupshup.clock import FakeClock
from agupshup.throttle import Ledger, MemoryLedger, RedisLedger, SqliteLedger


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def ledger_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LedgerFactory]:
    """Makes ledgers of one kind that share storage (a file, a key); closes them at the end."""
    made: list[Ledger] = []
    kind = request.param
    key = f"test:{uuid.uuid4().hex}"
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    def make() -> Ledger:
        ledger: Ledger
        if kind == "memory":
            ledger = MemoryLedger()
        elif kind == "sqlite":
            ledger = SqliteLedger(tmp_path / "ledger.sqlite3", key=key, lease=3.0)
        else:
            ledger = RedisLedger(url, key=key, lease=3.0, server_time=False)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        await ledger.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
