"""The admission policy on its own: no scheduler, no ledger, no clock, no event loop.

Its limits are compared with the greedy reference's rule (``throttle_sim.lane_limit``), and
its refusals are checked to be lower bounds: the limits do not change before the moment it
says to look again."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_property import on_grid, reserves, windows
from throttle_sim import lane_limit

from agupshup.throttle import Window
from agupshup.throttle._policy import AdmissionPolicy, burst_margin_of

STEP = 1 / 8


@dataclass(frozen=True)
class Flight:
    lane: str
    start: float
    end: float


flights = st.lists(
    st.builds(Flight, lane=st.sampled_from(["bulk", "interactive"]),
              start=on_grid(STEP, 6.0), end=on_grid(STEP, 3.0)).map(
        lambda f: Flight(f.lane, f.start, f.start + f.end)),
    max_size=12,
)


def replay(policy: AdmissionPolicy, made: list[Flight], now: float) -> None:
    """Tell ``policy`` of every admission and completion up to ``now``, in time order."""
    events = [(f.start, 0, f) for f in made if f.start <= now]
    events += [(f.end, 1, f) for f in made if f.end <= now]
    for _, kind, f in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            policy.took(f.lane)  # type: ignore[arg-type]
        else:
            policy.landed(f.lane, sent=True, now=f.end)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(ws=windows(STEP), reserve=reserves, made=flights, now=on_grid(STEP, 12.0))
@example(  # the shorter window's reserve lapses exactly now
    ws=[Window("w0", 4, 1.0, 4), Window("w1", 8, 2.0, 8)], reserve=0.25,
    made=[Flight("interactive", 0.0, 1.0)], now=2.0)
def test_limits_are_the_greedy_references(
    ws: list[Window], reserve: float, made: list[Flight], now: float
) -> None:
    policy = AdmissionPolicy(ws, reserve, burst_margin=0)
    replay(policy, made, now)
    # Calls in flight at ``now`` end after it, as the reference sees them.
    ends = [f.end if f.end <= now else now + 1 for f in made
            if f.lane == "interactive" and f.start <= now]
    for lane in ("bulk", "interactive"):
        limits, gated = policy.limits(lane, now)  # type: ignore[arg-type]
        assert list(limits) == [lane_limit(w, reserve, lane, ends, now) for w in ws]
        assert not gated  # no answer gate with burst_margin=0


@settings(max_examples=300, deadline=None)
@given(ws=windows(STEP), reserve=reserves, made=flights, now=on_grid(STEP, 12.0),
       wait=on_grid(STEP, 4.0))
def test_a_refusal_says_when_the_limits_may_change(
    ws: list[Window], reserve: float, made: list[Flight], now: float, wait: float
) -> None:
    """Nothing lands meanwhile: until ``earliest`` the limits stay as refused, and no later
    than the ledger's wait."""
    policy = AdmissionPolicy(ws, reserve, burst_margin=0)
    replay(policy, [f for f in made if f.end <= now], now)  # nothing left in flight
    limits, gated = policy.limits("bulk", now)
    refusal = policy.refused("bulk", wait, limits, gated, now)
    assert now <= refusal.earliest <= now + wait
    t = now
    while t < refusal.earliest:
        assert policy.limits("bulk", t) == (limits, False)
        t += STEP / 2
    assert refusal.window_full


@settings(max_examples=200, deadline=None)
@given(ws=windows(STEP), margin=st.none() | st.integers(0, 10), in_flight=st.integers(0, 3),
       lane=st.sampled_from(["bulk", "interactive"]))
def test_the_answer_gate_holds_back_the_last_places_while_calls_fly(
    ws: list[Window], margin: int | None, in_flight: int, lane: str
) -> None:
    policy = AdmissionPolicy(ws, 0.0, burst_margin=margin)
    for _ in range(in_flight):
        policy.took("bulk")
    limits, gated = policy.limits(lane, 0.0)  # type: ignore[arg-type]
    gates = [w.limit - burst_margin_of(w, margin) for w in ws]
    expect = gates if in_flight else [w.limit for w in ws]
    assert list(limits) == expect
    assert gated == (in_flight > 0 and gates != [w.limit for w in ws])
    if gated:  # the gate lifts when an answer is read, which may be at once
        assert policy.refused(lane, 5.0, limits, gated, 0.0).earliest == 0.0  # type: ignore[arg-type]


def test_landing_says_when_waiters_must_look_again() -> None:
    gated = AdmissionPolicy([Window("minute", 30, 60.0, 25)], 0.1)  # gate: 20 while flying
    gated.took("bulk"), gated.took("bulk")
    assert not gated.landed("bulk", sent=True, now=1.0)  # one answer still out
    assert gated.landed("bulk", sent=True, now=2.0)  # the last one: the gate opens
    ungated = AdmissionPolicy([Window("minute", 30, 60.0, 30)], 0.1)
    ungated.took("bulk"), ungated.took("interactive")
    assert not ungated.landed("bulk", sent=True, now=1.0)
    assert ungated.landed("interactive", sent=False, now=2.0)  # a reserve's lapse is known
    assert ungated.last_interactive_end == -float("inf")  # never sent: nothing to keep for it


def test_named_limits() -> None:
    policy = AdmissionPolicy([Window("minute", 30, 60.0, 25), Window("day", 10, 600.0, 10)],
                             0.1)
    assert policy.full_limits == (30, 10)
    assert policy.bulk_limits_while_interactive == (27, 9)
    assert policy.answer_gate_limits == (20, 10)
    assert policy.has_answer_gate
    assert policy.pacing_interval() == 600.0 / 9


@pytest.mark.parametrize(("kw", "reason"), [({"interactive_reserve": 1.0}, "interactive_reserve"),
                                            ({"burst_margin": -1}, "burst_margin")])
def test_bad_options(kw: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        AdmissionPolicy([Window("minute", 30, 60.0, 25)], **kw)  # type: ignore[arg-type]
