"""Hypothesis: for random arrivals, latencies, lanes and deadlines, the scheduler (a) never lets
any server window overflow, sliding or fixed, wherever the server saw each call, and (b) admits
every call exactly when the greedy reference does — also while it learns from the server's
tags and 113s, other programs share the IP, and callers are cancelled in flight, on the memory
ledger here and on SQLite and a real redis-server in ``test_property_shared.py``."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from throttle_sim import (
    Call,
    Server,
    fixed_max,
    reference,
    released_at,
    simulate,
    sliding_max,
    worst_case_count,
)

from agupshup.clock import FakeClock
from agupshup.throttle import Ledger, Scheduler, Window

# Times are on a grid of 1/8 s (or 1/2 s, for many ties), so every sum is exact.


def on_grid(step: float, top: float) -> st.SearchStrategy[float]:
    return st.integers(0, int(top / step)).map(lambda n: n * step)


@st.composite
def windows(draw: st.DrawFn, step: float) -> list[Window]:
    """One to three windows, lengths on the grid (up to 3 s), longer ones with larger limits."""
    n = draw(st.integers(1, 3))
    grid = st.integers(1, int(3 / step)).map(lambda k: k * step)
    lengths = sorted(draw(st.lists(grid, min_size=n, max_size=n, unique=True)))
    limits = sorted(draw(st.lists(st.integers(1, 8), min_size=n, max_size=n)))
    return [Window(f"w{i}", lim, length, lim) for i, (lim, length)
            in enumerate(zip(limits, lengths, strict=True))]


def calls(step: float) -> st.SearchStrategy[list[Call]]:
    return st.lists(
        st.builds(
            Call,
            arrival=on_grid(step, 10.0),
            latency=on_grid(step, 2.0),
            lane=st.sampled_from(["bulk", "bulk", "interactive"]),
            max_wait=st.none() | on_grid(1 / 8, 4.0),
        ),
        min_size=1,
        max_size=40,
    )


async def run(ws: list[Window], cs: list[Call], reserve: float) -> None:
    clock = FakeClock()
    sched = Scheduler(ws, clock=clock, interactive_reserve=reserve)
    got = await simulate(sched, clock, cs)
    await sched.aclose()
    admitted = [o for o in got if o is not None]
    for w in ws:
        assert worst_case_count(admitted, w.length) <= w.limit, w
        for seen in (0, 1):  # the server saw every call at dispatch, or at completion
            times = [o[seen] for o in admitted]
            assert sliding_max(times, w.length) <= w.limit
            for offset in (0.0, w.length / 3, w.length / 2, 0.1):
                assert fixed_max(times, w.length, offset) <= w.limit
    assert got == reference(cs, ws, reserve)


reserves = st.sampled_from([0.0, 0.25, 0.5])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws=windows(1 / 8), cs=calls(1 / 8), reserve=reserves)
async def test_never_overflows_and_matches_greedy(
    ws: list[Window], cs: list[Call], reserve: float
) -> None:
    await run(ws, cs, reserve)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws=windows(1 / 2), cs=calls(1 / 2), reserve=reserves)
@example(  # an interactive arrival takes the place a bulk waiter was waiting for
    ws=[Window("w0", 1, 2.5, 1)],
    cs=[Call(1.625, 2.0), Call(1.625, 0.0), Call(6.125, 0.0), Call(6.125, 0.0, "interactive")],
    reserve=0.0,
)
async def test_same_with_many_simultaneous_events(
    ws: list[Window], cs: list[Call], reserve: float
) -> None:
    await run(ws, cs, reserve)


async def test_burst_at_one_instant() -> None:
    ws = [Window("minute", 3, 1.0, 3), Window("hour", 5, 4.0, 5)]
    await run(ws, [Call(0.0, 0.125) for _ in range(12)], 0.0)


async def test_interactive_overtakes_bulk() -> None:
    ws = [Window("minute", 4, 1.0, 4)]
    cs = [Call(0.0, 0.0) for _ in range(8)] + [Call(0.25, 0.0, "interactive")]
    await run(ws, cs, 0.25)


@st.composite
def warned_windows(draw: st.DrawFn, step: float) -> list[Window]:
    """Like ``windows``, with a warn count below the limit, so the answer gate is on."""
    return [Window(w.name, w.limit, w.length, draw(st.integers(0, w.limit)))
            for w in draw(windows(step))]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws=warned_windows(1 / 8), cs=calls(1 / 8), reserve=reserves)
async def test_the_answer_gate_never_overflows_nor_stalls(
    ws: list[Window], cs: list[Call], reserve: float
) -> None:
    """With the gate, admissions differ from the greedy reference, but no window overflows,
    every caller without a deadline is served (``simulate`` fails on a stall), and only
    callers with a deadline are refused."""
    clock = FakeClock()
    sched = Scheduler(ws, clock=clock, interactive_reserve=reserve)
    got = await simulate(sched, clock, cs)
    await sched.aclose()
    admitted = [o for o in got if o is not None]
    for w in ws:
        assert worst_case_count(admitted, w.length) <= w.limit, w
    assert all(o is not None or c.max_wait is not None for o, c in zip(got, cs, strict=True))


# -- learning from the server: tags, 113s, foreign traffic, calls cancelled in flight -------


@st.composite
def rich_call(draw: st.DrawFn, step: float) -> Call:
    latency = draw(on_grid(step, 2.0))
    cancel = draw(st.none() | st.just(None) | on_grid(step, latency))
    if cancel is not None and cancel >= latency:
        cancel = None  # cancelled in flight means before the answer
    return Call(
        arrival=draw(on_grid(step, 10.0)),
        latency=latency,
        lane=draw(st.sampled_from(["bulk", "bulk", "interactive"])),
        max_wait=draw(st.none() | on_grid(1 / 8, 4.0)),
        cancel_after=cancel,
        tagged=draw(st.booleans()),
    )


def rich_calls(step: float) -> st.SearchStrategy[list[Call]]:
    return st.lists(rich_call(step), min_size=1, max_size=30)


def foreign_traffic(step: float) -> st.SearchStrategy[list[float]]:
    """Other programs' calls on our IP, at times the scheduler can only learn of."""
    return st.lists(on_grid(step, 10.0), max_size=10)


async def run_learning(
    ws: list[Window], cs: list[Call], reserve: float, foreign: list[float],
    ledger: Ledger | None = None, tolerance: float = 0.0,
) -> None:
    """``tolerance``: the Redis ledger keeps times to the microsecond (its scores), so its
    admissions may come that much after the reference's binary-exact ones."""
    clock = FakeClock()
    sched = Scheduler(ws, clock=clock, interactive_reserve=reserve, ledger=ledger)
    server = Server(ws, foreign)
    got = await simulate(sched, clock, cs, server, shared=ledger is not None)
    await sched.aclose()
    want = reference(cs, ws, reserve, foreign)
    if tolerance:
        assert [o is None for o in got] == [o is None for o in want], (got, want)
        pairs = [(a, b) for o, r in zip(got, want, strict=True) if o and r
                 for a, b in zip(o, r, strict=True)]
        assert all(0 <= a - b <= tolerance for a, b in pairs), (got, want)
    else:
        assert got == want
    if not foreign:
        assert server.refused == 0  # a 113 only ever comes from traffic we could not see
    # Our calls alone, wherever the server saw each one until it left the ledger's flight.
    flights = [(o[0], released_at(c, o[0], ws))
               for o, c in zip(got, cs, strict=True) if o is not None]
    for w in ws:
        assert worst_case_count(flights, w.length) <= w.limit, w


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws=windows(1 / 8), cs=rich_calls(1 / 8), reserve=reserves, foreign=foreign_traffic(1 / 8))
async def test_learning_cancelling_and_foreign_traffic_match_greedy(
    ws: list[Window], cs: list[Call], reserve: float, foreign: list[float]
) -> None:
    await run_learning(ws, cs, reserve, foreign)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws=windows(1 / 2), cs=rich_calls(1 / 2), reserve=reserves, foreign=foreign_traffic(1 / 2))
async def test_learning_with_many_simultaneous_events(
    ws: list[Window], cs: list[Call], reserve: float, foreign: list[float]
) -> None:
    await run_learning(ws, cs, reserve, foreign)
