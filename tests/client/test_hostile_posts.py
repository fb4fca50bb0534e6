"""Issue 13.4: a post whose first attempt may have landed is resolved, never reported refused."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from agupshup import Client, DeadlineExceeded, GupshupError, OutcomeUnknown, PosterThrottled
from agupshup.clock import FakeClock
from agupshup.emulator import FaultSpec, ThrottleConfig
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.errors import TimeoutError as TransportTimeout
from agupshup.retry import RetryPolicy
from agupshup.transport import AiohttpTransport, HTTPMethod, RawResponse

#: ``late_landing`` short: a real-time server here runs nothing late unless a test makes it.
FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01, total=5.0, late_landing=0.05)
OFF = ThrottleConfig.off()
ALICE, ALICE_PASSWORD = "9888800001", "alice-pass"


def _client(
    server: Any, phone: str = DEMO_PHONE, password: str = DEMO_PASSWORD, **kw: Any
) -> Client:
    return Client(server.base_url, phone=phone, password=password, throttle=None, retry=FAST, **kw)


def _stored(server: Any, group: str, prefix: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for message in server.emulator.world.group(group).messages:
        if message.text.startswith(prefix):
            out.setdefault(message.text, []).append(message.id)
    return out


@pytest.mark.gupshup(throttle=OFF, poster_limit=5, poster_window=0.25, poster_before_duplicate=True)
async def test_sixty_posts_at_the_poster_limit_with_answers_lost(gupshup_server: Any) -> None:
    """Stored posts whose answer was lost, resent into a full poster window, get their id."""
    emulator = gupshup_server.emulator
    emulator.faults.add(
        *(
            FaultSpec(kind, methods=("groups.postMessage",), probability=0.1, when="after")
            for kind in ("reset", "garbage", "http502")
        )
    )
    outcomes: dict[str, int | str] = {}
    async with _client(gupshup_server) as client:
        for i in range(60):
            text = f"limit post {i}"
            try:
                outcomes[text] = await client.post_message("jumpy", text)
            except GupshupError as exc:
                outcomes[text] = type(exc).__name__
            await asyncio.sleep(0.02)  # posting faster than the window: many 127s
    stored = _stored(gupshup_server, "jumpy", "limit post ")
    assert len(emulator.faults.log) >= 5  # answers were really lost
    assert "PosterThrottled" in outcomes.values()  # and the limit really reached
    assert all(len(ids) == 1 for ids in stored.values())  # never twice
    for text, ids in stored.items():
        assert outcomes[text] == ids[0], f"{text!r} was stored but reported {outcomes[text]!r}"
    refused = {v for t, v in outcomes.items() if t not in stored}
    assert refused == {"PosterThrottled"}  # nothing absent reported posted, nothing unknown


class _Crowd(AiohttpTransport):
    """Lets ``crowd`` messages by someone else arrive right after the first post left."""

    emulator: Any
    crowd: int

    async def send(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        http_method: HTTPMethod = "POST",
        timeout: float | None = None,
    ) -> RawResponse:
        try:
            return await super().send(fields, http_method=http_method, timeout=timeout)
        finally:
            if ("method", "groups.postMessage") in fields and self.crowd:
                for i in range(self.crowd):
                    self.emulator.insert_message("jumpy", f"someone else {i}", ALICE)
                self.crowd = 0


@pytest.mark.parametrize(
    "gupshup_server",
    [
        {"throttle": OFF},
        # The resend meets the poster limit before the duplicate check.
        {"throttle": OFF, "poster_limit": 1, "poster_before_duplicate": True},
    ],
    ids=["128", "127"],
    indirect=True,
)
async def test_id_found_behind_more_than_fifteen_posts_by_others(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("reset", methods=("groups.postMessage",), count=1, when="after"))
    transport = _Crowd(gupshup_server.base_url)
    transport.emulator, transport.crowd = emulator, 20
    async with _client(gupshup_server, transport=transport) as client:
        post_id = await client.post_message("jumpy", "buried under the crowd")
    assert _stored(gupshup_server, "jumpy", "buried") == {"buried under the crowd": [post_id]}
    assert emulator.calls["groups.postmessage"] == 2
    assert emulator.calls["groups.getstream"] == 2  # read back past the crowd, no further


@pytest.mark.gupshup(throttle=OFF, poster_limit=1, poster_before_duplicate=True)
async def test_a_post_proven_absent_gets_the_resends_refusal(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    async with _client(gupshup_server) as client:
        await client.post_message("jumpy", "fills the poster window")
        emulator.faults.add(FaultSpec("reset", methods=("groups.postMessage",), count=1))
        with pytest.raises(PosterThrottled):
            await client.post_message("jumpy", "never stored")
    assert "never stored" not in _stored(gupshup_server, "jumpy", "never")
    # Absent at the first read, proven so by a second once the reset attempt cannot land.
    assert emulator.calls["groups.getstream"] == 2


@pytest.mark.gupshup(throttle=OFF)
async def test_an_unreadable_group_gives_outcome_unknown_with_the_text(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(
        FaultSpec("garbage", methods=("groups.postMessage",), count=1, when="after", size=64)
    )
    async with _client(gupshup_server, ALICE, ALICE_PASSWORD) as client:
        with pytest.raises(OutcomeUnknown) as info:
            await client.post_message("secret", "in a private group")
    assert info.value.group == "secret"
    assert info.value.text == "in a private group"
    assert len(_stored(gupshup_server, "secret", "in a private")["in a private group"]) == 1


@pytest.mark.gupshup(throttle=OFF, poster_limit=2)
async def test_an_older_post_of_the_same_text_is_not_claimed(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    async with _client(gupshup_server) as client:
        await client.post_message("jumpy", "alive")
        await client.post_message("jumpy", "busy")  # the poster window is now full
        emulator.faults.add(
            FaultSpec("reset", methods=("groups.postMessage",), count=1, when="before")
        )
        with pytest.raises(PosterThrottled):
            await client.post_message("jumpy", "alive")
    assert len(_stored(gupshup_server, "jumpy", "alive")["alive"]) == 1


@pytest.mark.gupshup(throttle=OFF)
async def test_waiting_for_an_earlier_post_to_the_group_keeps_the_deadline(
    gupshup_server: Any,
) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(
        FaultSpec("slow", methods=("groups.postMessage",), count=1, delay=1.0)
    )
    async with _client(gupshup_server) as client:
        first = asyncio.ensure_future(client.post_message("jumpy", "slow to answer"))
        await asyncio.sleep(0)  # the first post takes the group's lock, then logs in
        with pytest.raises(DeadlineExceeded):
            await client.post_message("jumpy", "in a hurry", max_wait=0.1)
        assert await first
    assert emulator.calls["groups.postmessage"] == 1
    assert "in a hurry" not in _stored(gupshup_server, "jumpy", "in a")


@pytest.mark.gupshup(throttle=OFF, poster_limit=2)
async def test_a_match_admitted_only_by_the_clock_tolerance_is_outcome_unknown(
    gupshup_server: Any,
) -> None:
    emulator = gupshup_server.emulator
    async with _client(gupshup_server) as first:
        await first.post_message("jumpy", "alive")
        await first.post_message("jumpy", "busy")  # the poster window is now full
    messages = emulator.world.group("jumpy").messages
    at = next(i for i, m in enumerate(messages) if m.text == "alive")
    # Thirty seconds before "busy": older than this post could be, but within the tolerance.
    messages[at] = dataclasses.replace(messages[at], timestamp=messages[-1].timestamp - 30_000)
    emulator.faults.add(FaultSpec("reset", methods=("groups.postMessage",), count=1, when="before"))
    async with _client(gupshup_server) as second:  # knows no earlier post of its own
        with pytest.raises(OutcomeUnknown):
            await second.post_message("jumpy", "alive")


class _LandsLate(AiohttpTransport):
    """The first post's answer never comes (a timeout), and the server stores it only after
    the client's first read of the group: a request the server ran late."""

    held: Sequence[tuple[str, str]] | None = None
    landed = False

    async def send(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        http_method: HTTPMethod = "POST",
        timeout: float | None = None,
    ) -> RawResponse:
        if ("method", "groups.postMessage") in fields and self.held is None:
            self.held = fields
            raise TransportTimeout("no complete answer (the server stalls it)", url=self.url)
        answer = await super().send(fields, http_method=http_method, timeout=timeout)
        if ("method", "groups.getStream") in fields and self.held and not self.landed:
            self.landed = True  # the stalled first attempt is stored just after this read
            await super().send(self.held, http_method=http_method, timeout=timeout)
        return answer


def _landing_client(server: Any, transport: AiohttpTransport, late_landing: float) -> Client:
    policy = dataclasses.replace(FAST, resolve_attempts=2, late_landing=late_landing)
    return Client(server.base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD, throttle=None,
                  retry=policy, transport=transport, clock=FakeClock(autojump=True))


@pytest.mark.gupshup(throttle=OFF)
async def test_a_first_attempt_stored_after_the_head_read_is_found_later(
    gupshup_server: Any,
) -> None:
    """P1: the resends got 129, the head showed no post, and the client used to raise the 129
    while the first attempt was still to be stored."""
    gupshup_server.emulator.faults.add(
        FaultSpec("error129", methods=("groups.postMessage",), count=2))
    transport = _LandsLate(gupshup_server.base_url)
    async with _landing_client(gupshup_server, transport, late_landing=60.0) as client:
        post_id = await client.post_message("jumpy", "stored late by the server")
    assert transport.landed
    assert _stored(gupshup_server, "jumpy", "stored late") == {
        "stored late by the server": [post_id]}
    assert gupshup_server.emulator.calls["groups.getstream"] == 2  # read again once it may not


@pytest.mark.gupshup(throttle=OFF)
async def test_a_first_attempt_that_may_land_after_the_deadline_is_outcome_unknown(
    gupshup_server: Any,
) -> None:
    gupshup_server.emulator.faults.add(
        FaultSpec("error129", methods=("groups.postMessage",), count=2))
    transport = _LandsLate(gupshup_server.base_url)
    async with _landing_client(gupshup_server, transport, late_landing=60.0) as client:
        await client.login()  # first: an autojumping clock would jump past a bounded login
        with pytest.raises(OutcomeUnknown) as info:
            await client.post_message("jumpy", "may land after the deadline", max_wait=30.0)
    assert info.value.text == "may land after the deadline"
