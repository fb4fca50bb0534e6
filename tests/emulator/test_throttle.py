"""The per-IP throttle (protocol.md §3): warn tags, 113 at the exact counts, both window kinds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agupshup.emulator import Emulator, EmulatorConfig, ThrottleConfig, Window
from agupshup.emulator.throttle import DEFAULT_WINDOWS, Tag, Throttle

from .helpers import START, Api, FakeTime

SMALL = ThrottleConfig(mode="sliding", windows=(Window("minute", 5, 2.0, 3),))
FIXED = ThrottleConfig(mode="fixed", windows=(Window("minute", 5, 2.0, 3),))
TWO = ThrottleConfig(windows=(Window("minute", 5, 2.0, 3), Window("hour", 6, 10.0, 4)))


def tag(count: int, period: str = "minute", warn: int = 3, limit: int = 5) -> dict[str, str]:
    return {"period": period, "count": str(count), "warn": str(warn), "limit": str(limit)}


def test_defaults_are_the_reference_limits() -> None:
    assert [(w.name, w.length, w.warn, w.limit) for w in DEFAULT_WINDOWS] == [
        ("minute", 60.0, 25, 30),
        ("hour", 3600.0, 990, 1000),
        ("day", 86400.0, 9990, 10000),
    ]
    throttle = Throttle()
    verdicts = [throttle.admit("1.2.3.4", START + i * 0.01) for i in range(31)]
    assert [v.admitted for v in verdicts] == [True] * 30 + [False]
    assert [v.tags[0].count for v in verdicts[24:30]] == [25, 26, 27, 28, 29, 30]
    assert verdicts[23].tags == ()
    assert throttle.refusals == {"1.2.3.4": 1}


@pytest.mark.gupshup(throttle=SMALL)
@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_warn_then_113_at_the_exact_counts(api: Api, clock: FakeTime, fmt: str) -> None:
    answers = [await api.call("groups.getInfo", fmt, group="jumpy") for _ in range(6)]
    assert [a.tree.get("throttle") for a in answers[:5]] == [
        None,
        None,
        [tag(3)],
        [tag(4)],
        [tag(5)],
    ]
    assert all(a.tree["status"] == "success" for a in answers[:5])
    refused = answers[5]
    assert refused.errors == [
        (
            113,
            "The API call has not been executed since you have exceeded "
            'the throttle minute limit of "5".',
        )
    ]
    assert refused.tree["throttle"] == [tag(5)]
    assert "status" not in refused.tree
    if fmt == "json":
        assert isinstance(refused.raw["response"]["throttle"], dict)
    assert api.emulator.calls["groups.getinfo"] == 6
    assert api.emulator.throttled == {"127.0.0.1": 1}
    # errors carry throttle tags too
    clock.advance(1.0)
    still = await api.call("groups.getInfo", fmt, group="jumpy")
    assert still.code == 113
    clock.advance(1.0)  # the first five calls leave the sliding window
    again = await api.call("groups.getInfo", fmt, group="nope")
    assert again.code == 2
    assert "throttle" not in again.tree


@pytest.mark.gupshup(throttle=SMALL)
async def test_sliding_window_counts_any_interval(api: Api, clock: FakeTime) -> None:
    clock.now = START + 1.5
    for _ in range(5):
        await api.call("groups.getInfo", "json", group="jumpy")
    clock.now = START + 2.0  # a new fixed window would start here; a sliding one does not
    assert (await api.call("groups.getInfo", "json", group="jumpy")).code == 113
    clock.now = START + 3.5
    ok = await api.call("groups.getInfo", "json", group="jumpy")
    assert ok.tree["status"] == "success"
    assert "throttle" not in ok.tree


@pytest.mark.gupshup(throttle=FIXED)
async def test_fixed_window_aligned_to_the_epoch(api: Api, clock: FakeTime) -> None:
    clock.now = START + 1.5
    answers = [await api.call("groups.getInfo", "json", group="jumpy") for _ in range(6)]
    assert answers[4].tree["throttle"] == [tag(5)]
    assert answers[5].code == 113
    clock.now = START + 2.0  # START is a multiple of 2: a new window
    fresh = await api.call("groups.getInfo", "json", group="jumpy")
    assert fresh.tree["status"] == "success"
    assert "throttle" not in fresh.tree
    answers = [await api.call("groups.getInfo", "json", group="jumpy") for _ in range(5)]
    assert [a.tree.get("throttle") for a in answers] == [
        None,
        [tag(3)],
        [tag(4)],
        [tag(5)],
        [tag(5)],
    ]
    assert answers[-1].code == 113  # 2 to 5 counted, the sixth of this window refused


@pytest.mark.gupshup(throttle=TWO)
async def test_several_windows_give_several_tags(api: Api, clock: FakeTime) -> None:
    for _ in range(4):
        resp = await api.call("groups.getInfo", "json", group="jumpy")
    assert resp.tree["throttle"] == [tag(4), tag(4, "hour", 4, 6)]
    assert isinstance(resp.raw["response"]["throttle"], list)
    clock.advance(2.0)
    await api.call("groups.getInfo", "json", group="jumpy")
    await api.call("groups.getInfo", "json", group="jumpy")
    refused = await api.call("groups.getInfo", "xml", group="jumpy")
    assert refused.errors == [
        (
            113,
            "The API call has not been executed since you have exceeded "
            'the throttle hour limit of "6".',
        )
    ]
    assert refused.tree["throttle"] == [tag(6, "hour", 4, 6)]


def test_a_refused_call_that_exceeds_two_windows_lists_both() -> None:
    throttle = Throttle(
        ThrottleConfig(windows=(Window("minute", 2, 5, 2), Window("hour", 2, 50, 2)))
    )
    assert throttle.admit("ip", 0.0).admitted
    assert throttle.admit("ip", 1.0).admitted
    refused = throttle.admit("ip", 2.0)
    assert not refused.admitted
    assert [t.period for t in refused.tags] == ["minute", "hour"]


def test_113_is_written_in_the_requested_format() -> None:
    clock = FakeTime()
    emulator = Emulator(EmulatorConfig(clock=clock, throttle=ThrottleConfig.single(1, 10.0)))
    emulator.request({"method": "users.login", "v": "1.0"})
    xml = emulator.request({"method": "users.login", "v": "1.0", "format": "xml"})
    assert xml.fmt == "xml"
    default = emulator.request({"method": "users.login", "v": "1.0"})
    assert default.fmt == "json"
    unknown = emulator.request({"method": "nope"})
    assert unknown.fmt == "xml"
    assert b'"113"' in default.body


def test_each_ip_has_its_own_count_and_off_counts_nothing() -> None:
    emulator = Emulator(EmulatorConfig(clock=FakeTime(), throttle=ThrottleConfig.single(2, 10)))
    for ip in ("10.0.0.1", "10.0.0.2"):
        for _ in range(3):
            emulator.request({"method": "groups.getInfo", "v": "1.0", "group": "jumpy"}, ip)
    assert emulator.throttled == {"10.0.0.1": 1, "10.0.0.2": 1}
    free = Emulator(EmulatorConfig(clock=FakeTime(), throttle=ThrottleConfig.off()))
    for _ in range(100):
        answer = free.request({"method": "groups.getInfo", "v": "1.0", "group": "jumpy"})
    assert b"throttle" not in answer.body
    assert free.throttled == {}


def reference_decisions(
    mode: str, windows: tuple[Window, ...], calls: list[tuple[float, str]]
) -> list[tuple[bool, tuple[Tag, ...]]]:
    """Each call's verdict from the rules alone: per IP, a call is counted when every window
    holds fewer than its limit of counted calls — the last ``length`` seconds (sliding) or the
    same multiple of ``length`` (fixed) — and refused (113) otherwise, not counted, naming the
    windows it would have exceeded; an admitted call tags each window from its warn count on."""
    counted: dict[str, list[float]] = {}
    out = []
    for now, ip in calls:
        mine = counted.setdefault(ip, [])

        def same(u: float, w: Window, now: float = now) -> bool:
            if mode == "sliding":
                return u > now - w.length
            return math.floor(u / w.length) == math.floor(now / w.length)

        held = [sum(1 for u in mine if same(u, w)) for w in windows]
        over = tuple(Tag(w.name, n, w.warn, w.limit)
                     for w, n in zip(windows, held, strict=True) if n >= w.limit)
        if over:
            out.append((False, over))
            continue
        mine.append(now)
        out.append((True, tuple(Tag(w.name, n + 1, w.warn, w.limit)
                                for w, n in zip(windows, held, strict=True) if n + 1 >= w.warn)))
    return out


@given(
    mode=st.sampled_from(["sliding", "fixed"]),
    windows=st.lists(
        st.builds(lambda k, limit, length, warn: Window(f"w{k}", limit, length, min(warn, limit)),
                  st.integers(0, 9), st.integers(1, 6), st.sampled_from([0.5, 1.0, 2.0, 3.5]),
                  st.integers(1, 6)),
        min_size=1, max_size=3, unique_by=lambda w: w.name),
    calls=st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.5),
                             st.sampled_from(["10.0.0.1", "10.0.0.2"])),
                   min_size=1, max_size=60),
)
def test_every_verdict_is_the_references(
    mode: str, windows: list[Window], calls: list[tuple[float, str]]
) -> None:
    """Not only "never over the limit" (a throttle refusing everything would pass that): each
    call is admitted or refused, with its tags, exactly as the rules say."""
    throttle = Throttle(ThrottleConfig(mode=mode, windows=tuple(windows)))  # type: ignore[arg-type]
    now, timed = 0.0, []
    for gap, ip in calls:
        now += gap
        timed.append((now, ip))
    got = [(d.admitted, d.tags) for d in (throttle.admit(ip, t) for t, ip in timed)]
    assert got == reference_decisions(mode, tuple(windows), timed)


@pytest.mark.gupshup(time_scale=60.0, throttle=ThrottleConfig.single(2, 60.0))
async def test_time_scale_shrinks_windows(api: Api, clock: FakeTime) -> None:
    for _ in range(2):
        await api.call("groups.getInfo", "json", group="jumpy")
    assert (await api.call("groups.getInfo", "json", group="jumpy")).code == 113
    clock.advance(1.0)  # one real second is an emulator minute
    assert (await api.call("groups.getInfo", "json", group="jumpy")).tree["status"] == "success"


async def test_throttle_over_http_control(api: Api) -> None:
    shown = await api.admin(
        "PUT",
        "/_emulator/throttle",
        json={
            "mode": "fixed",
            "windows": [{"period": "minute", "length": 60, "warn": 1, "limit": 1}],
        },
    )
    assert shown["mode"] == "fixed"
    await api.call("groups.getInfo", "json", group="jumpy")
    assert (await api.call("groups.getInfo", "json", group="jumpy")).code == 113
    assert (await api.admin("GET", "/_emulator/throttle"))["refusals"] == {"127.0.0.1": 1}
    await api.admin("DELETE", "/_emulator/throttle")
    assert (await api.call("groups.getInfo", "json", group="jumpy")).tree["status"] == "success"
