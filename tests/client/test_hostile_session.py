"""Issue 13.2, 13.3, 13.8: tokens that die young, a faulty login path, whole-call deadlines."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from agupshup import (
    CircuitOpen,
    Client,
    DeadlineExceeded,
    FakeClock,
    HTTPStatusError,
    InvalidRequest,
    InvalidToken,
    QuotaExhausted,
    WrongPassword,
    wire,
)
from agupshup.emulator import FaultSpec, ThrottleConfig
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.models import Challenge
from agupshup.retry import RetryPolicy
from agupshup.session import Credentials, Session
from agupshup.throttle import Scheduler, Window
from agupshup.transport import MockTransport, RawResponse

FAST = RetryPolicy(attempts=6, base=0.001, cap=0.01, total=5.0)
OFF = ThrottleConfig.off()
Req = wire.Request[Any]


def _client(server: Any, **kw: Any) -> Client:
    kw.setdefault("retry", FAST)
    kw.setdefault("throttle", None)  # a test's own scheduler, given, is its throttle
    return Client(server.base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD, timeout=2.0, **kw)


async def _fifty_token_calls(client: Client) -> Counter[str]:
    results = await asyncio.gather(
        *(client.get_my_groups() for _ in range(50)), return_exceptions=True
    )
    return Counter("ok" if isinstance(r, list) else type(r).__name__ for r in results)


# -- 13.2: token death under concurrency ----------------------------------------------------------


@pytest.mark.gupshup(throttle=OFF, token_uses=5)
async def test_tokens_dying_after_five_uses_never_reach_fifty_callers(gupshup_server: Any) -> None:
    """The protocol names no such server, but the promise holds against one: while tokens keep
    working for somebody, no caller sees an InvalidToken."""
    async with _client(gupshup_server) as client:
        outcomes = await _fifty_token_calls(client)
        logins = client.session.logins
    calls = gupshup_server.emulator.calls
    assert outcomes == {"ok": 50}
    assert logins >= 10  # each token served at most five calls
    # Single-flight: one challenge and one login per token, never one per refused caller.
    assert calls["users.login"] == logins


@pytest.mark.gupshup(throttle=OFF, token_uses=5)
async def test_tokens_dying_with_ten_percent_faults_everywhere(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    kinds = ["reset", "http502", "garbage", "error129"]
    emulator.faults.add(
        *(
            FaultSpec(kind, probability=0.1 / len(kinds), when="after" if i % 2 else "before")
            for i, kind in enumerate(kinds)
        )
    )
    async with _client(gupshup_server) as client:
        outcomes = await _fifty_token_calls(client)
    faulted = Counter(method for method, _ in emulator.faults.log)
    assert faulted["users.getmygroups"] > 0
    assert faulted["users.login"] + faulted["users.getchallenge"] > 0  # the login path too
    assert outcomes == {"ok": 50}


@pytest.mark.gupshup(throttle=OFF)
async def test_a_server_whose_tokens_never_work_ends_with_invalid_token(
    gupshup_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh tokens refused with no call ever succeeding: a few tries, then the refusal."""
    from agupshup.emulator.sessions import Sessions

    monkeypatch.setattr(Sessions, "check_token", lambda self, token, now: None)
    async with _client(gupshup_server) as client:
        with pytest.raises(InvalidToken):
            await client.get_my_groups()
    calls = gupshup_server.emulator.calls
    assert calls["users.getmygroups"] == FAST.relogins + 2
    assert calls["users.login"] == FAST.relogins + 2


# -- 13.3: the login path is retried, and faults never open the circuit ---------------------------


@pytest.mark.gupshup(throttle=OFF)
async def test_three_garbage_challenges_in_a_row_are_retried(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("garbage", methods=("users.getChallenge",), count=3, size=64))
    async with _client(gupshup_server) as client:
        for _ in range(3):  # the breaker would have opened after the third DecodeError
            assert await client.get_my_groups()
    assert emulator.calls["users.getchallenge"] == 4
    assert emulator.calls["users.login"] == 1


@pytest.mark.gupshup(throttle=OFF)
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kind", ["reset", "http502", "truncated", "garbage", "error129"])
async def test_login_with_unknown_outcome_is_redone_with_a_fresh_challenge(
    gupshup_server: Any, kind: str, when: str
) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec(kind, methods=("users.login",), count=2, when=when, size=64))  # type: ignore[arg-type]
    async with _client(gupshup_server) as client:
        assert await client.get_my_groups()
    assert emulator.calls["users.login"] == 3
    assert emulator.calls["users.getchallenge"] == 3  # a spent challenge is never reused
    assert emulator.calls["users.getmygroups"] == 1


async def _refusing_call(request: Req, token: str | None, deadline: float | None = None) -> Any:
    if request.spec.name == "users.getChallenge":
        return Challenge(salt="s", challenge="c")
    raise InvalidRequest(request.spec.name, 107, "refused")


async def test_real_login_refusals_still_open_the_circuit() -> None:
    session = Session(Credentials(DEMO_PHONE, "pw"), clock=FakeClock(), max_failures=3)
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            await session.token(_refusing_call)
    with pytest.raises(CircuitOpen):
        await session.token(_refusing_call)


async def _challenge_refused(request: Req, token: str | None, deadline: float | None = None) -> Any:
    raise InvalidRequest(request.spec.name, 108, "refused")


async def test_refusals_of_the_challenge_never_open_the_circuit() -> None:
    session = Session(Credentials(DEMO_PHONE, "pw"), clock=FakeClock(), max_failures=3)
    for _ in range(5):
        with pytest.raises(InvalidRequest):
            await session.token(_challenge_refused)


# -- 13.8: max_wait is a deadline for the whole call ----------------------------------------------


@pytest.mark.gupshup(throttle=OFF)
async def test_implicit_login_respects_max_wait(gupshup_server: Any) -> None:
    """Two calls a minute: a public read and a challenge fit; the login would wait a minute."""
    clock = FakeClock(autojump=True)
    scheduler = Scheduler((Window("minute", 2, 60.0, 2),), clock=clock)
    async with _client(gupshup_server, clock=clock, throttle=scheduler) as client:
        await client.get_stream("jumpy")
        with pytest.raises(QuotaExhausted):
            await client.get_my_groups(max_wait=5)
        assert clock.monotonic() <= 5  # refused by the deadline, not after the minute's wait
        assert gupshup_server.emulator.calls["users.login"] == 0
        await clock.sleep(60)
        assert await client.get_my_groups()  # the unspent challenge is used: no call lost
    await scheduler.aclose()
    assert gupshup_server.emulator.calls["users.getchallenge"] == 1
    assert gupshup_server.emulator.calls["users.login"] == 1


@pytest.mark.gupshup(throttle=OFF)
async def test_back_offs_stop_at_the_deadline(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("http502", methods=("groups.getStream",)))
    clock = FakeClock(autojump=True)
    slow = RetryPolicy(attempts=10, base=2.0, cap=8.0, total=60.0)
    async with _client(gupshup_server, clock=clock, retry=slow) as client:
        with pytest.raises(HTTPStatusError):
            await client.get_stream("jumpy", max_wait=3.0)
        assert clock.monotonic() <= 3.0
    assert emulator.calls["groups.getstream"] < slow.attempts


async def test_a_login_waiter_gives_up_at_its_own_deadline() -> None:
    clock = FakeClock()
    release = asyncio.Event()

    async def slow_call(request: Req, token: str | None, deadline: float | None = None) -> Any:
        if request.spec.name == "users.getChallenge":
            await release.wait()
            return Challenge(salt="s", challenge="c")
        return "tok"

    session = Session(Credentials(DEMO_PHONE, "pw"), clock=clock)
    patient = asyncio.ensure_future(session.token(slow_call))
    hasty = asyncio.ensure_future(session.token(slow_call, deadline=1.0))
    await clock.advance(2.0)
    with pytest.raises(DeadlineExceeded):
        await hasty
    release.set()
    assert await patient == "tok"
    assert session.logins == 1


async def test_a_waiter_with_more_time_logs_in_after_a_hasty_login_gave_up() -> None:
    clock = FakeClock()
    calls: list[float | None] = []

    async def call(request: Req, token: str | None, deadline: float | None = None) -> Any:
        if request.spec.name == "users.getChallenge":
            calls.append(deadline)
            await asyncio.sleep(0)
            if deadline is not None:
                raise QuotaExhausted("minute", 60.0)
            return Challenge(salt="s", challenge="c")
        return "tok"

    session = Session(Credentials(DEMO_PHONE, "pw"), clock=clock)
    hasty = asyncio.ensure_future(session.token(call, deadline=1.0))
    patient = asyncio.ensure_future(session.token(call))
    with pytest.raises(QuotaExhausted):
        await hasty
    assert await patient == "tok"
    assert calls == [1.0, None]


async def test_a_kept_challenge_refused_as_spent_is_replaced_once() -> None:
    """A challenge kept from an unsent login may have expired early on the server (121)."""
    fetched: list[str] = []
    logins: list[str] = []

    async def call(request: Req, token: str | None, deadline: float | None = None) -> Any:
        if request.spec.name == "users.getChallenge":
            fetched.append(f"c{len(fetched)}")
            return Challenge(salt="s", challenge=fetched[-1])
        logins.append(dict(request.params)["challenge"])
        if len(logins) == 1:
            raise QuotaExhausted("minute", 60.0)
        if len(logins) == 2:
            raise WrongPassword(request.spec.name, 121, "spent")
        return "tok"

    session = Session(Credentials(DEMO_PHONE, "pw"), clock=FakeClock())
    with pytest.raises(QuotaExhausted):
        await session.token(call)
    assert await session.token(call) == "tok"
    assert logins == ["c0", "c0", "c1"]  # kept, refused as spent, then a fresh one



def _business_refusals_then_dead_tokens() -> Any:
    """A server whose tokens die after one use; a valid use is refused with 127."""
    seq, uses = iter(range(10**6)), Counter[str]()

    def handler(fields: Any) -> RawResponse:
        f = dict(fields)
        method, body = f["method"], {"status": "success"}
        if method == "users.getChallenge":
            body = {**body, "salt": "s", "challenge": f"c{next(seq)}"}
        elif method == "users.login":
            body = {**body, "token": f"t{next(seq)}"}
        elif method != "users.logout":
            uses[f["token"]] += 1
            code = "6" if uses[f["token"]] > 1 else "127"
            body = {"error": [{"code": code, "msg": "no"}, {"code": code, "msg": "no"}]}
        return RawResponse(200, "application/json", json.dumps({"response": body}).encode())

    return MockTransport(handler)


async def test_business_refusals_prove_the_token_worked() -> None:
    async with Client(
        "http://x", phone=DEMO_PHONE, password=DEMO_PASSWORD, throttle=None,
        transport=_business_refusals_then_dead_tokens(), retry=RetryPolicy(base=0.001, cap=0.001),
    ) as client:
        results = await asyncio.gather(
            *(client.post_message(f"g{i}", "hi") for i in range(10)), return_exceptions=True
        )
    assert Counter(type(r).__name__ for r in results) == {"PosterThrottled": 10}


async def test_max_wait_covers_a_slow_credentials_provider(gupshup_server: Any) -> None:
    async def slow() -> Credentials:
        await asyncio.sleep(5)  # a vault that answers late
        return Credentials(DEMO_PHONE, DEMO_PASSWORD)

    async with Client(gupshup_server.base_url, credentials=slow, throttle=None) as client:
        with pytest.raises(DeadlineExceeded):
            await client.get_my_groups(max_wait=0.1)
    assert gupshup_server.emulator.calls["users.getmygroups"] == 0


@pytest.mark.gupshup(throttle=OFF)
async def test_closing_never_waits_for_the_throttle_to_log_out(gupshup_server: Any) -> None:
    clock = FakeClock(autojump=True)
    scheduler = Scheduler((Window("day", 3, 86_400.0, 3),), clock=clock)
    client = _client(gupshup_server, clock=clock, throttle=scheduler)
    await client.get_my_groups()  # challenge, login and the call: the day is full
    await client.aclose()
    await scheduler.aclose()
    assert clock.monotonic() < 86_400  # not a day's wait for a best-effort logout
    assert gupshup_server.emulator.calls["users.logout"] == 0


async def test_no_relogin_after_the_deadline() -> None:
    clock = FakeClock()

    def handler(fields: Any) -> RawResponse:
        method, body = dict(fields)["method"], {"status": "success"}
        if method == "users.getChallenge":
            body = {**body, "salt": "s", "challenge": "c"}
        elif method == "users.login":
            body = {**body, "token": "t"}
        else:
            clock._now += 10  # the answer arrives after the deadline
            body = {"error": {"code": "6", "msg": "invalid token"}}
        return RawResponse(200, "application/json", json.dumps({"response": body}).encode())

    transport = MockTransport(handler)
    async with Client(
        "http://x", phone=DEMO_PHONE, password=DEMO_PASSWORD, throttle=None, clock=clock,
        transport=transport,
    ) as client:
        with pytest.raises(InvalidToken):
            await client.get_my_groups(max_wait=5)
    methods = Counter(dict(call)["method"] for call in transport.calls)
    assert methods["users.getChallenge"] == 1
    assert methods["users.getMyGroups"] == 1


def _dead_tokens() -> MockTransport:
    """Logins succeed; every token is refused."""

    def handler(fields: Any) -> RawResponse:
        method, body = dict(fields)["method"], {"status": "success"}
        if method == "users.getChallenge":
            body = {**body, "salt": "s", "challenge": "c"}
        elif method == "users.login":
            body = {**body, "token": "t"}
        elif method != "users.logout":
            body = {"error": {"code": "6", "msg": "invalid token"}}
        return RawResponse(200, "application/json", json.dumps({"response": body}).encode())

    return MockTransport(handler)


async def test_a_call_meets_at_most_token_refusals_refusals() -> None:
    transport = _dead_tokens()
    policy = RetryPolicy(relogins=100, token_refusals=5)
    async with Client(
        "http://x", phone=DEMO_PHONE, password=DEMO_PASSWORD, throttle=None, retry=policy,
        transport=transport,
    ) as client:
        with pytest.raises(InvalidToken):
            await client.get_my_groups()
    methods = Counter(dict(call)["method"] for call in transport.calls)
    assert methods["users.getMyGroups"] == 5
