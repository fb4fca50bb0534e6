"""Issue 4 through the Client: the scheduler in the call path, against the emulator's throttle."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from agupshup import Client, QuotaExhausted, Throttle
from agupshup.emulator import ThrottleConfig
from agupshup.emulator import Window as ServerWindow
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.throttle import Window

# Shrunk windows: 8 calls a second, 20 every 3 seconds (warn a little earlier).
CLIENT_WINDOWS = (Window("minute", 8, 1.0, 6), Window("hour", 20, 3.0, 18))
SERVER_WINDOWS = (ServerWindow("minute", 8, 1.0, 6), ServerWindow("hour", 20, 3.0, 18))


def _client(server: Any, **kw: Any) -> Client:
    kw.setdefault("throttle", Throttle(windows=CLIENT_WINDOWS))
    return Client(server.base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD, **kw)


@pytest.mark.parametrize("mode", ["sliding", "fixed"])
async def test_many_concurrent_callers_never_earn_a_113(gupshup_server: Any, mode: str) -> None:
    emulator = gupshup_server.emulator
    emulator.throttle.configure(ThrottleConfig(mode=mode, windows=SERVER_WINDOWS))  # type: ignore[arg-type]
    async with _client(gupshup_server) as client:
        pages = await asyncio.gather(*(client.get_message("jumpy") for _ in range(30)))
        windows = {w.period: w for w in client.quota()}
    assert all(p is not None for p in pages)
    assert sum(emulator.throttled.values()) == 0
    assert emulator.calls["groups.getmessage"] == 30  # nothing resent, nothing refused
    assert windows["minute"].limit == 8


async def test_max_wait_refuses_before_sending(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    tight = (Window("minute", 2, 60.0, 2),)
    async with Client(gupshup_server.base_url, throttle=Throttle(windows=tight)) as client:
        await client.get_message("jumpy")
        await client.get_message("jumpy")
        with pytest.raises(QuotaExhausted) as info:
            await client.get_message("jumpy", max_wait=0.05)
    assert info.value.window == "minute"
    assert emulator.calls["groups.getmessage"] == 2  # the third never left


async def test_other_programs_on_the_same_ip_are_learned(gupshup_server: Any) -> None:
    """Another program spends most of the window; its count comes back in a throttle tag and
    the client holds back instead of earning a 113."""
    emulator = gupshup_server.emulator
    emulator.throttle.configure(ThrottleConfig(windows=(ServerWindow("minute", 6, 60.0, 3),)))
    url = f"{gupshup_server.url}?method=groups.getMessage&v=1.0&group=jumpy"
    async with aiohttp.ClientSession() as other:
        for _ in range(4):
            async with other.get(url) as resp:
                await resp.read()
    six = Throttle(windows=(Window("minute", 6, 60.0, 3),))
    async with Client(gupshup_server.base_url, throttle=six) as client:
        await client.get_message("jumpy")  # the 5th call of the minute: tagged "count 5"
        await client.get_message("jumpy")  # the 6th: still fits
        with pytest.raises(QuotaExhausted):
            await client.get_message("jumpy", max_wait=0.05)
    assert sum(emulator.throttled.values()) == 0


async def test_a_post_refused_with_113_goes_again_after_the_hold(gupshup_server: Any) -> None:
    """The client believes in 10 calls a second, the server allows 2: the 113 proves the post
    did not run, the scheduler holds until the window rolls over, and the post lands once."""
    emulator = gupshup_server.emulator
    emulator.throttle.configure(ThrottleConfig(windows=(ServerWindow("minute", 2, 1.0, 2),)))
    optimistic = (Window("minute", 10, 1.0, 10),)
    async with _client(gupshup_server, throttle=Throttle(windows=optimistic)) as client:
        await client.login()  # before the tight window
        await asyncio.sleep(1.1)
        ids = [await client.post_message("jumpy", f"post {i}") for i in range(3)]
    assert len(set(ids)) == 3
    assert emulator.posts == 3
    assert sum(emulator.throttled.values()) == 1  # one 113, learned, then no more
