"""The planner, pure: covers, intervals, rates and the text of a plan (no I/O, no clock)."""

from __future__ import annotations

import math
import random

import pytest

from agupshup.planner import (
    DAY,
    JOINED,
    PLAN_FILL,
    PUBLIC,
    Budget,
    Channel,
    GroupInfo,
    Planner,
    Rate,
    UnreadableGroups,
    describe,
    extra_pages,
    optimal_intervals,
    suggestions,
)

NOW = 1_700_000_000.0


def infos(joined: int = 0, public: int = 0, private_joined: int = 0) -> dict[str, GroupInfo]:
    out = {}
    for i in range(joined):
        out[f"j{i}"] = GroupInfo(f"j{i}", joined=True, public=True)
    for i in range(public):
        out[f"p{i}"] = GroupInfo(f"p{i}", public=True)
    for i in range(private_joined):
        out[f"s{i}"] = GroupInfo(f"s{i}", joined=True, public=False)
    return out


LATER = NOW + 900


def flood(planner: Planner) -> None:
    """Unfollowed groups post two messages a second for a quarter of an hour: more pages than
    the budget pays for at any interval."""
    planner.seed_source(PUBLIC, ["p0", "p1"], [("other", NOW - k / 2) for k in range(15)], NOW)
    for minute in range(1, 16):
        planner.observe(PUBLIC, 120, [], NOW + 60 * minute)


def seed_rates(planner: Planner, per_day: dict[str, float], span: float = 6 * 3600) -> None:
    """Give each group (and each shared source) a backlog of evenly spaced messages."""
    for name, rate in per_day.items():
        n = round(rate * span / DAY)
        stamps = [(name, NOW - k * span / max(n, 1)) for k in range(n)]
        planner.group_rates[name].seed((t for _, t in stamps), NOW - span, NOW)


def test_square_root_rule_spends_the_budget() -> None:
    weights, budget = [1.0, 4.0, 16.0], 1.0
    out = optimal_intervals(weights, [0, 0, 0], budget, floor=0.0)
    assert sum(1 / t for t in out) == pytest.approx(budget)
    # T ∝ 1/√w: each source with 4× the rate is polled twice as often.
    assert out[0] / out[1] == pytest.approx(2.0)
    assert out[1] / out[2] == pytest.approx(2.0)


def test_square_root_rule_beats_uniform_and_proportional() -> None:
    weights = [0.01, 0.1, 1.0, 10.0]
    best = optimal_intervals(weights, [0] * 4, 2.0, 0.0)

    def delay(ts: list[float]) -> float:
        return sum(w * t for w, t in zip(weights, ts, strict=True))

    uniform = [len(weights) / 2.0] * 4
    proportional = [sum(weights) / (2.0 * w) for w in weights]
    assert delay(best) < delay(uniform)
    assert delay(best) < delay(proportional)


def test_floor_is_water_filled() -> None:
    out = optimal_intervals([100.0, 1.0, 1.0], [0, 0, 0], budget=1.0, floor=2.0)
    assert out[0] == 2.0  # the formula wanted less than the floor
    assert sum(1 / t for t in out) == pytest.approx(1.0)
    assert out[1] == pytest.approx(out[2])
    assert out[1] > 2.0


def test_water_filling_cascades_when_fixing_one_source_pushes_another_under() -> None:
    # Round 1 puts only the first under the floor; the budget left after fixing it puts the
    # second under too; the last two share what remains.
    out = optimal_intervals([10_000.0, 100.0, 1.0, 1.0], [0.0] * 4, budget=1.0, floor=3.0)
    assert out[:2] == [3.0, 3.0]
    assert out[2] == pytest.approx(6.0)
    assert out[3] == pytest.approx(6.0)
    assert sum(1 / t for t in out) == pytest.approx(1.0)


def test_the_planner_budget_never_reaches_the_floor() -> None:
    # Why the planner does not rely on the water-filling: one source alone, given the whole
    # budget, stays at or above the floor, whatever the share.
    for share in (0.05, 0.5, 1.0):
        budget = Budget(share)
        only = optimal_intervals([1.0], [0.0], budget.calls_per_second, budget.min_interval)
        assert only[0] >= budget.min_interval


def test_volume_is_paid_before_freshness() -> None:
    free = optimal_intervals([1.0], [0.0], 1.0, 0.0)[0]
    busy = optimal_intervals([1.0], [0.5], 1.0, 0.0)[0]
    assert busy == pytest.approx(2 * free)


def test_budget_is_the_strictest_window_times_the_share() -> None:
    budget = Budget(0.5)
    assert budget.calls_per_second == pytest.approx(0.5 * 10_000 / DAY)
    assert budget.min_interval == pytest.approx(60 / 15)
    with pytest.raises(ValueError):
        Budget(0)


def test_joined_groups_share_one_source() -> None:
    planner = Planner(infos(joined=50))
    plan = planner.plan(NOW)
    assert [s.source for s in plan.sources] == [JOINED]
    assert plan.source_of("J7") == JOINED
    assert plan.calls_per_day <= Budget().calls_per_second * DAY * 1.0001


def test_quiet_public_stream_covers_public_groups() -> None:
    planner = Planner(infos(private_joined=3, public=40))
    planner.seed_source(PUBLIC, [f"p{i}" for i in range(40)],
                        [("p1", NOW - 3600 * k) for k in range(15)], NOW)
    plan = planner.plan(NOW)
    assert {s.source for s in plan.sources} == {JOINED, PUBLIC}


def test_busy_public_stream_loses_to_per_group_streams() -> None:
    planner = Planner(infos(joined=3, public=2))
    # Unfollowed groups post two messages a second: 11 520 public pages a day at least.
    flood(planner)
    plan = planner.plan(LATER)
    kinds = {s.source.kind for s in plan.sources}
    assert PUBLIC not in {s.source for s in plan.sources}
    assert kinds == {"joined", "group"}
    assert set(plan.subscribable) == {"p0", "p1"}
    assert any("subscribe to p" in s for s in suggestions(plan))


def test_busier_source_is_polled_more_often() -> None:
    planner = Planner(infos(public=2), mode="per-group")
    seed_rates(planner, {"p0": 400.0, "p1": 25.0})
    rows = {s.source.group: s for s in planner.plan(NOW).sources}
    assert rows["p0"].interval < rows["p1"].interval
    assert rows["p1"].interval / rows["p0"].interval == pytest.approx(4.0, rel=0.1)


def test_unreadable_groups_are_named() -> None:
    groups = infos(public=1)
    groups["hidden"] = GroupInfo("hidden", public=False, problem="private, and not joined")
    groups["ghost"] = GroupInfo("ghost", problem="no such group")
    with pytest.raises(UnreadableGroups) as caught:
        Planner(groups)
    assert caught.value.reasons == {
        "hidden": "private, and not joined",
        "ghost": "no such group",
    }
    assert "ghost (no such group)" in str(caught.value)


def test_rate_is_seeded_from_the_backlog_and_forgets() -> None:
    rate = Rate(horizon=3600.0)
    rate.seed([NOW - 60 * k for k in range(1, 31)], NOW - 1800, NOW)  # 1 a minute, 30 min
    assert rate.value(NOW, 0, 1e-9) == pytest.approx(1 / 60, rel=0.05)
    later = NOW + 5 * 3600  # five silent hours
    assert rate.value(later, 0, 1e-9) < 0.1 / 60


def test_replanning_follows_the_rates() -> None:
    planner = Planner(infos(public=2), mode="per-group")
    seed_rates(planner, {"p0": 100.0, "p1": 100.0})
    before = {s.source.group: s.interval for s in planner.plan(NOW).sources}
    for k in range(200):
        planner.observe(Channel("group", "p1"), 1, ["p1"], NOW + k)
    after = {s.source.group: s.interval for s in planner.plan(NOW + 200).sources}
    assert before["p0"] == pytest.approx(before["p1"])
    assert after["p1"] < after["p0"]


def test_describe_shows_sources_costs_and_delay() -> None:
    planner = Planner(infos(joined=3, public=2))
    flood(planner)
    text = describe(planner.plan(LATER))
    assert "joined stream" in text
    assert "group:*" in text
    assert "calls/day" in text
    assert "mean delay" in text
    assert "hint: subscribe to" in text
    assert not any(math.isnan(float(w)) for w in text.split() if w.replace(".", "").isdigit())


def test_a_fresh_page_of_a_left_source_ends_the_flood() -> None:
    planner = Planner(infos(joined=3, public=2))
    flood(planner)
    plan = planner.plan(LATER)
    assert planner.unused_shared(plan) == [PUBLIC]
    quiet = [("other", LATER - 600 * k) for k in range(15)]  # one message in ten minutes
    planner.resample(PUBLIC, quiet, LATER)
    assert PUBLIC in {s.source for s in planner.plan(LATER).sources}


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method (the means here are small enough for exp(-mean))."""
    limit, n, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        n += 1
        product *= rng.random()
    return n


@pytest.mark.parametrize(("mean", "page"), [(0.5, 15), (12.0, 15), (40.0, 15), (70.0, 30)])
def test_extra_pages_match_simulated_walks(mean: float, page: int) -> None:
    """A walk of N new items reads 1 + N // page pages; the expectation matches a simulation."""
    rng = random.Random(5)
    walks = [poisson(rng, mean) // page for _ in range(20_000)]
    assert extra_pages(mean, page) == pytest.approx(sum(walks) / len(walks), abs=0.02)
    assert extra_pages(mean, page) <= mean / page  # what the volume term used to charge


def test_extra_pages_join_their_far_limit() -> None:
    edge = 200 * 15
    assert extra_pages(edge, 15) == pytest.approx(extra_pages(edge + 1e-6, 15), rel=1e-6)


def test_quiet_sources_spend_the_whole_budget() -> None:
    """Twenty groups of 500 a day polled every minute or so: a poll almost never fills a page,
    so nearly every call of the budget goes to freshness, not to pages never read."""
    names = {f"p{i}": 500.0 for i in range(20)}
    planner = Planner(infos(public=20), mode="per-group")
    seed_rates(planner, names)
    plan = planner.plan(NOW)
    assert plan.calls_per_day == pytest.approx(PLAN_FILL * plan.budget_per_day, rel=1e-3)
    polls = sum(DAY / s.interval for s in plan.sources)
    assert polls >= 0.99 * PLAN_FILL * plan.budget_per_day
