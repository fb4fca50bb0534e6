"""Issue 14.3, 14.5 and 17.5: Client throttle options that cannot contradict, one budget per
egress, a first-class time scale, and a quota a person can read."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from agupshup import Client, QuotaExhausted, Throttle
from agupshup.client import egress_key
from agupshup.clock import FakeClock, ScaledClock, SystemClock, readable
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.session import Credentials
from agupshup.throttle import DEFAULT_WINDOWS, MemoryLedger, Scheduler, Window, scaled_windows
from agupshup.throttle._ledger import release_margin

TIGHT = (Window("minute", 10, 60.0, 10),)
OTHER = (Window("minute", 20, 60.0, 20),)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"phone": DEMO_PHONE}, "phone= without password="),
        ({"password": DEMO_PASSWORD}, "password= without phone="),
        ({"phone": DEMO_PHONE, "password": DEMO_PASSWORD,
          "credentials": Credentials(DEMO_PHONE, DEMO_PASSWORD)}, "not both"),
    ],
)
async def test_conflicting_options_raise(kw: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Client("http://options.invalid", **kw)


async def test_throttle_is_one_argument() -> None:
    own = Scheduler(TIGHT)
    async with Client("http://one.invalid", throttle=own) as a:
        assert a.scheduler is own
    async with Client("http://one.invalid", throttle=None) as b:
        assert b.quota() == []  # admits everything
    async with Client("http://one.invalid", throttle=Throttle(windows=TIGHT)) as c:
        assert isinstance(c.scheduler, Scheduler)
        assert [w.limit for w in c.quota()] == [10]
    assert Throttle(windows=list(TIGHT)) == Throttle(windows=TIGHT)  # a frozen value


#: The spellings before issue 25: each warns, naming the new one, and still works.
OLD = [
    ({"throttle": False}, "throttle=None", lambda c: c.quota() == []),
    ({"throttle": True}, r"throttle=Throttle\(\)", lambda c: len(c.quota()) == 3),
    ({"windows": TIGHT}, r"throttle=Throttle\(windows=", lambda c: len(c.quota()) == 1),
    ({"ledger": "memory"}, r"throttle=Throttle\(ledger=", lambda c: len(c.quota()) == 3),
    ({"scheduler": "own"}, "throttle=<the scheduler>", lambda c: c.scheduler.windows == TIGHT),
    ({"time_scale": 6.0, "throttle": None}, r"clock=ScaledClock\(scale=",
     lambda c: isinstance(c.clock, ScaledClock) and c.clock.scale == 6.0),
    ({"format": "xml"}, "wire_format=", lambda c: c.wire_format == "xml"),
]


@pytest.mark.parametrize(("kw", "new", "works"), OLD)
async def test_old_spellings_warn_and_work(
    kw: dict[str, Any], new: str, works: Callable[[Client], bool]
) -> None:
    kw = _built(kw)
    with pytest.warns(DeprecationWarning, match=new) as caught:
        client = Client("http://old.invalid", **kw)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    async with client:
        assert works(client)


def test_client_format_attribute_warns() -> None:
    client = Client("http://old.invalid", wire_format="xml", throttle=None)
    with pytest.warns(DeprecationWarning, match="Client.wire_format"):
        assert client.format == "xml"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"scheduler": "own", "windows": TIGHT}, "windows="),
        ({"scheduler": "own", "ledger": "memory"}, "ledger="),
        ({"scheduler": "own", "throttle": False}, "throttle="),
        ({"scheduler": "own", "throttle": Throttle()}, "throttle="),
        ({"scheduler": "own", "time_scale": 10.0}, "time_scale="),
        ({"throttle": "own", "time_scale": 10.0}, "time_scale= would be ignored"),
        ({"throttle": False, "windows": TIGHT}, "throttle=None admits every call"),
        ({"throttle": None, "ledger": "memory"}, "throttle=None admits every call"),
        ({"throttle": Throttle(), "windows": TIGHT}, "throttle= already fixes"),
        ({"format": "json", "wire_format": "xml"}, "format= is the old spelling"),
        ({"time_scale": 0.0}, "time_scale must be"),
        ({"time_scale": math.nan}, "time_scale must be"),
    ],
)
async def test_old_spellings_that_contradict_raise(kw: dict[str, Any], reason: str) -> None:
    kw = _built(kw)
    with pytest.warns(DeprecationWarning, match="deprecated"), \
            pytest.raises(ValueError, match=reason):
        Client("http://options.invalid", **kw)


def test_an_unknown_keyword_is_still_a_type_error() -> None:
    with pytest.raises(TypeError, match="'pacing'"):
        Client("http://options.invalid", pacing=True)  # type: ignore[call-arg]


def _built(kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with "own" a fresh scheduler and "memory" a fresh ledger."""
    made = {"own": lambda: Scheduler(TIGHT), "memory": MemoryLedger}
    return {k: made[v]() if isinstance(v, str) and v in made else v for k, v in kw.items()}


def test_egress_is_the_server_host() -> None:
    assert egress_key("http://API.smsgupshup.com") == "api.smsgupshup.com"
    assert egress_key("https://api.smsgupshup.com/x/") == "api.smsgupshup.com"
    assert egress_key("http://api.smsgupshup.com:80") == "api.smsgupshup.com"
    assert egress_key("http://127.0.0.1:8080") == "127.0.0.1:8080"  # another port: another server


async def test_clients_of_one_egress_share_one_budget() -> None:
    async with Client("http://share.invalid") as a, Client("https://SHARE.invalid/api") as b:
        assert a.scheduler is b.scheduler
        async with Client("http://share.invalid:8080") as c:
            assert c.scheduler is not a.scheduler


async def test_two_open_clients_must_agree_on_windows_clock_and_ledger() -> None:
    async with Client("http://agree.invalid", throttle=Throttle(windows=TIGHT)) as a:
        with pytest.raises(ValueError, match=r"windows \[minute 20/60s\] differ"):
            Client("http://agree.invalid", throttle=Throttle(windows=OTHER))
        with pytest.raises(ValueError, match="clock FakeClock"):
            Client("http://agree.invalid", clock=FakeClock())
        with pytest.raises(ValueError, match="ledger"):
            Client("http://agree.invalid", throttle=Throttle(ledger=MemoryLedger()))
        async with Client("http://agree.invalid") as b:  # declares nothing: joins
            assert b.scheduler is a.scheduler
            assert [w.limit for w in b.quota()] == [10]
    # Nobody uses it any more: new options start a new scheduler.
    async with Client("http://agree.invalid", throttle=Throttle(windows=OTHER)) as c:
        assert [w.limit for w in c.quota()] == [20]


async def test_a_read_only_client_fills_the_whole_window(gupshup_server: Any) -> None:
    """The default reserve (10 %) costs a reader nothing: all 10 places of the minute."""
    emulator = gupshup_server.emulator
    async with Client(gupshup_server.base_url, throttle=Throttle(windows=TIGHT)) as client:
        await asyncio.gather(*(client.get_message("jumpy") for _ in range(10)))
        with pytest.raises(QuotaExhausted):
            await client.get_message("jumpy", max_wait=0.0)
    assert emulator.calls["groups.getmessage"] == 10
    assert sum(emulator.throttled.values()) == 0


async def test_time_scale_moves_the_windows_and_the_quota_reads_in_real_time() -> None:
    base = FakeClock()
    async with Client("http://scale.invalid", clock=ScaledClock(base, 60.0)) as client:
        assert client.clock == ScaledClock(base, 60.0)
        assert isinstance(client.scheduler, Scheduler)
        assert client.scheduler.windows == DEFAULT_WINDOWS  # in server seconds
        for _ in range(30):
            async with client.scheduler.slot():
                pass
        minute = client.quota()[0]
    assert minute.used == 30
    held = 60.0 + release_margin(60.0)  # server seconds
    assert minute.free_at - client.clock.monotonic() == pytest.approx(held)
    assert minute.free_in == pytest.approx(held / 60)  # a real second, and the margin
    assert minute.free_wall == datetime.fromtimestamp(base.time() + held / 60, UTC)


@pytest.mark.gupshup(time_scale=6000.0)
async def test_time_scale_moves_the_token_idle_rule(gupshup_server: Any) -> None:
    """At 6000x the server forgets a token after 0.3 s idle; the client, on the same scale,
    logs in again before using it (29 server minutes), so no call is refused."""
    emulator = gupshup_server.emulator
    async with Client(gupshup_server.base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD,
                      clock=ScaledClock(scale=6000.0)) as client:
        await client.get_my_groups()
        await asyncio.sleep(0.4)
        await client.get_my_groups()
    assert emulator.calls["users.getmygroups"] == 2  # none refused for a dead token
    assert emulator.calls["users.login"] == 2


def test_scaled_clock_and_windows() -> None:
    base = FakeClock(10.0)
    clock = ScaledClock(base, 10.0)
    assert clock.monotonic() == 100.0
    assert clock == ScaledClock(base, 10.0)
    assert ScaledClock(scale=2.0) == ScaledClock(SystemClock(), 2.0)
    seconds, wall = readable(clock, 150.0)
    assert seconds == 5.0
    assert wall == datetime.fromtimestamp(base.time() + 5.0, UTC)
    assert [w.length for w in scaled_windows(60.0)] == [1.0, 60.0, 1440.0]
    with pytest.raises(ValueError, match="time_scale"):
        scaled_windows(-1.0)
