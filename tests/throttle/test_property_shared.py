"""The learning property of ``test_property.py`` on the shared ledgers: SQLite, and a real
redis-server. Fewer, smaller examples (every ledger step is a round trip), still compared with
the greedy reference.

Without the memory ledger's fast path, calls that arrive at one instant queue in whatever order
the round trips allow, so arrivals here are distinct, and answers come off the arrival grid
(latencies end in 1/32 s): the order of events at one instant is then the reference's."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_property import foreign_traffic, reserves, rich_call, run_learning, windows
from throttle_sim import Call

from agupshup.throttle import RedisLedger, SqliteLedger, Window

SHARED = settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])
OFF_GRID = 1 / 32


@st.composite
def shared_call(draw: st.DrawFn) -> Call:
    call = draw(rich_call(1 / 8))
    latency = call.latency + OFF_GRID
    cancel = None if call.cancel_after is None else call.cancel_after + OFF_GRID
    return replace(call, latency=latency, cancel_after=cancel)


small_calls = st.lists(shared_call(), min_size=1, max_size=12, unique_by=lambda c: c.arrival)


@SHARED
@given(ws=windows(1 / 8), cs=small_calls, reserve=reserves, foreign=foreign_traffic(1 / 8))
async def test_sqlite_ledger_learns_like_the_reference(
    ws: list[Window], cs: list[Call], reserve: float, foreign: list[float]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = SqliteLedger(Path(folder) / "ledger.sqlite3", key="prop", lease=30.0)
        await run_learning(ws, cs, reserve, foreign, ledger)


#: Redis keeps times to the microsecond; a few roundings add up over one example.
MICROSECONDS = 50e-6


@SHARED
@given(ws=windows(1 / 8), cs=small_calls, reserve=reserves, foreign=foreign_traffic(1 / 8))
async def test_redis_ledger_learns_like_the_reference(
    redis_url: str, ws: list[Window], cs: list[Call], reserve: float, foreign: list[float]
) -> None:
    ledger = RedisLedger(redis_url, key=f"prop:{uuid.uuid4().hex}", lease=30.0,
                         server_time=False)
    await run_learning(ws, cs, reserve, foreign, ledger, tolerance=MICROSECONDS)
