"""Issue 7: every fault mode of the emulator, against the client's retries and post resolution."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from agupshup import Client, Closed, GupshupError, ServerError, TransportError
from agupshup.clock import SystemClock
from agupshup.emulator import FaultSpec, ThrottleConfig
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.retry import RetryPolicy
from agupshup.transport import AiohttpTransport, RawResponse

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, total=5.0)
FAULTS: dict[str, dict[str, Any]] = {
    "reset": {},
    "http502": {},
    "truncated-length": {"kind": "truncated", "truncate": "length"},
    "truncated-cut": {"kind": "truncated", "truncate": "cut"},
    "slow": {"delay": 1.0},
    "oversized": {"size": 300_000},
    "garbage": {"size": 64},
    "content_type": {},
    "error129": {},
}


def _spec(name: str, **kw: Any) -> FaultSpec:
    fields = {"kind": name, **FAULTS[name]}
    return FaultSpec(**{**fields, **kw})


def _client(server: Any, fmt: str = "json", **kw: Any) -> Client:
    return Client(
        server.base_url,
        phone=DEMO_PHONE,
        password=DEMO_PASSWORD,
        wire_format=fmt,  # type: ignore[arg-type]
        throttle=None,
        retry=FAST,
        timeout=0.3,
        max_body=100_000,
        **kw,
    )


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_reads_survive_two_faults(gupshup_server: Any, fault: str, fmt: str) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(_spec(fault, methods=("groups.getStream",), count=2))
    async with _client(gupshup_server, fmt) as client:
        page = await client.get_stream("jumpy")
    assert len(page) == 15
    assert emulator.calls["groups.getstream"] == 3  # two faults, then the answer


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_reads_fail_typed_when_faults_persist(gupshup_server: Any, fault: str) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(_spec(fault, methods=("groups.getInfo",)))
    async with _client(gupshup_server) as client:
        with pytest.raises((TransportError, ServerError)) as info:
            await client.get_info("jumpy")
    assert info.value.method == "groups.getInfo"
    assert emulator.calls["groups.getinfo"] == FAST.attempts  # bounded, every one admitted


@pytest.mark.gupshup(throttle=ThrottleConfig.off(), poster_limit=1_000_000)
async def test_no_double_posts_under_faults(gupshup_server: Any) -> None:
    """1 000 posts, 20 % of answers damaged (half after the post was stored): none twice."""
    emulator = gupshup_server.emulator
    kinds = ["reset", "http502", "truncated-cut", "garbage", "content_type", "error129"]
    emulator.faults.add(
        *(
            _spec(
                k,
                methods=("groups.postMessage",),
                probability=0.2 / len(kinds),
                when=("after" if i % 2 else "before"),
            )
            for i, k in enumerate(kinds)
        )
    )
    groups = ["jumpy", "demo-bot"]
    outcomes: Counter[str] = Counter()
    ids: list[int] = []

    async def poster(group: str, n: int) -> None:
        async with _client(gupshup_server) as client:
            for i in range(n):
                try:
                    ids.append(await client.post_message(group, f"post {group} {i}"))
                    outcomes["ok"] += 1
                except GupshupError as exc:
                    outcomes[type(exc).__name__] += 1

    await asyncio.gather(*(poster(g, 500) for g in groups))
    stored = Counter(
        m.text
        for g in groups
        for m in emulator.world.group(g).messages
        if m.text.startswith("post ")
    )
    faults = Counter(kind for _, kind in emulator.faults.log)
    assert sum(faults.values()) > 100, faults  # the faults really fired
    assert max(stored.values()) == 1  # never twice
    assert outcomes["ok"] == 1000 == len(stored), outcomes  # and never lost
    assert len(set(ids)) == 1000


class _PostsNowhere(AiohttpTransport):
    """The emulator for every call but postMessage, which goes to a closed port (port 9)."""

    posts = 0

    async def send(self, fields: Any, **kw: Any) -> RawResponse:
        if dict(fields).get("method") != "groups.postMessage":
            return await super().send(fields, **kw)
        self.posts += 1
        url, self.url = self.url, "http://127.0.0.1:9/GupShup/api"
        try:
            return await super().send(fields, **kw)
        finally:
            self.url = url


async def test_unsent_post_is_not_resent(gupshup_server: Any) -> None:
    transport = _PostsNowhere(gupshup_server.base_url)
    async with _client(gupshup_server, transport=transport) as client:
        with pytest.raises(TransportError) as info:
            await client.post_message("jumpy", "never left")
    assert info.value.maybe_sent is False
    assert info.value.method == "groups.postMessage"
    assert transport.posts == 1  # a post that never left is not resent
    assert gupshup_server.emulator.calls["groups.getstream"] == 0  # nor resolved


async def test_a_failed_login_inside_a_post_is_not_an_unknown_outcome(
    gupshup_server: Any,
) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(_spec("http502", methods=("users.getChallenge",)))
    async with _client(gupshup_server) as client:
        with pytest.raises(TransportError) as info:
            await client.post_message("jumpy", "never sent at all")
    assert info.value.method == "users.getChallenge"
    assert emulator.calls["groups.postmessage"] == 0
    assert emulator.calls["users.getchallenge"] == FAST.attempts  # one login, not one per resend


class _GatedClock(SystemClock):
    """Real time, but a back-off lasts until the test opens the gate."""

    def __init__(self) -> None:
        self.sleeping, self.gate = asyncio.Event(), asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self.gate.wait()


async def test_a_retry_after_close_sends_nothing(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(_spec("http502", methods=("groups.getStream",), count=1))
    clock = _GatedClock()
    client = _client(gupshup_server, clock=clock)
    straggler = asyncio.ensure_future(client.get_stream("jumpy"))
    await clock.sleeping.wait()  # the first attempt met the fault; the retry waits
    await client.aclose()
    clock.gate.set()
    with pytest.raises(Closed):
        await straggler
    assert emulator.calls["groups.getstream"] == 1
    with pytest.raises(Closed):
        await client._transport.send([("method", "groups.getStream")])
