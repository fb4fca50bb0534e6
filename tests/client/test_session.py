"""Issue 5: the login token's lifecycle, counted on the emulator's side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from agupshup import Client, FakeClock, WrongPassword
from agupshup.emulator import ThrottleConfig
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.session import Credentials
from agupshup.transport import AiohttpTransport, HTTPMethod, RawResponse


def _client(server: Any, **kw: Any) -> Client:
    kw.setdefault("phone", DEMO_PHONE)
    kw.setdefault("password", DEMO_PASSWORD)
    return Client(server.base_url, throttle=None, **kw)


@pytest.mark.gupshup(throttle=ThrottleConfig.off())
async def test_fifty_concurrent_first_calls_log_in_once(gupshup_server: Any) -> None:
    async with _client(gupshup_server) as client:
        results = await asyncio.gather(*(client.get_my_groups() for _ in range(50)))
    calls = gupshup_server.emulator.calls
    assert len(results) == 50
    assert all(results)
    assert calls["users.getchallenge"] == 1
    assert calls["users.login"] == 1
    assert calls["users.getmygroups"] == 50


async def test_login_is_lazy(gupshup_server: Any) -> None:
    async with _client(gupshup_server) as client:
        await client.get_stream("jumpy")
    calls = gupshup_server.emulator.calls
    assert calls["users.login"] == 0
    assert calls["users.logout"] == 0


async def test_expired_token_means_one_relogin_and_no_failed_call(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    async with _client(gupshup_server) as client:
        await client.get_my_groups()
        emulator.sessions.expire_all()
        groups = await client.get_my_groups()
        joined = await client.get_joined_groups()  # token code 1 here, and the new token works
    assert groups
    assert joined
    assert emulator.calls["users.login"] == 2
    assert emulator.calls["users.getmygroups"] == 3  # one refused, then the retry


async def test_idle_token_is_dropped_before_use(gupshup_server: Any) -> None:
    clock = FakeClock()
    async with _client(gupshup_server, clock=clock) as client:
        await client.get_my_groups()
        await clock.advance(31 * 60)
        await client.get_my_groups()
    calls = gupshup_server.emulator.calls
    assert calls["users.login"] == 2
    assert calls["users.getmygroups"] == 2  # no call wasted on a token known to be stale


async def test_wrong_password_makes_one_attempt(gupshup_server: Any) -> None:
    async with _client(gupshup_server, password="not-the-password") as client:
        with pytest.raises(WrongPassword) as first:
            await client.get_my_groups()
        with pytest.raises(WrongPassword) as second:
            await client.post_message("jumpy", "never sent")
        with pytest.raises(WrongPassword) as third:
            await client.get_my_groups()
    assert first.value.code == second.value.code == 121
    assert second.value is not third.value  # each caller its own exception (and traceback)
    calls = gupshup_server.emulator.calls
    assert calls["users.getchallenge"] == 1
    assert calls["users.login"] == 1
    assert calls["groups.postmessage"] == 0
    assert calls["users.logout"] == 0


async def test_leaving_the_context_logs_out(gupshup_server: Any) -> None:
    emulator = gupshup_server.emulator
    async with _client(gupshup_server) as client:
        await client.get_my_groups()
        assert emulator.sessions.tokens_of(DEMO_PHONE)
    assert emulator.calls["users.logout"] == 1
    assert emulator.sessions.tokens_of(DEMO_PHONE) == []


async def test_credentials_from_a_provider_and_the_environment(
    gupshup_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def provider() -> Credentials:
        return Credentials(DEMO_PHONE, DEMO_PASSWORD)

    async with Client(gupshup_server.base_url, credentials=provider, throttle=None) as c:
        assert await c.get_my_groups()
    monkeypatch.setenv("GUPSHUP_PHONE", DEMO_PHONE)
    monkeypatch.setenv("GUPSHUP_PASSWORD", DEMO_PASSWORD)
    async with Client(gupshup_server.base_url, throttle=None) as c:
        assert await c.get_my_groups()


class _Recorder(AiohttpTransport):
    """Remembers every secret it sends, so the test can look for it everywhere else."""

    secrets: set[str]

    async def send(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        http_method: HTTPMethod = "POST",
        timeout: float | None = None,
    ) -> RawResponse:
        sent = {v for k, v in fields if k in ("token", "rand")}
        assert not sent or http_method == "POST", "a secret would have been put in a URL"
        self.secrets.update(sent)
        return await super().send(fields, http_method=http_method, timeout=timeout)


async def test_secrets_never_appear_in_logs_or_errors(
    gupshup_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from agupshup.emulator import FaultSpec

    emulator = gupshup_server.emulator
    emulator.faults.add(
        FaultSpec("reset", methods=("users.getMyGroups",), count=2),
        FaultSpec("http502", methods=("users.getJoinedGroups",), count=1),
        FaultSpec("garbage", methods=("users.getJoinedGroupsStream",), count=1, size=200),
    )
    caplog.set_level(logging.DEBUG)
    transport = _Recorder(gupshup_server.base_url)
    transport.secrets = set()
    texts: list[str] = []
    async with _client(gupshup_server, transport=transport) as client:
        await client.get_my_groups()
        await client.get_joined_groups()
        await client.get_joined_groups_stream()
        emulator.sessions.expire_all()
        await client.get_my_groups()
        texts += [repr(client), repr(client.session), str(client.__dict__)]
    again = _Recorder(gupshup_server.base_url)  # a closed transport stays closed
    again.secrets = transport.secrets
    async with _client(gupshup_server, password="wrong", transport=again) as bad:
        try:
            await bad.get_my_groups()
        except WrongPassword as exc:
            texts += [str(exc), repr(exc)]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info) for r in caplog.records if r.exc_info]
    secrets = transport.secrets | {DEMO_PASSWORD, "wrong"}
    assert len(transport.secrets) >= 4  # two tokens and at least two rands were sent
    everything = "\n".join(texts)
    for secret in secrets:
        assert secret not in everything, "a secret leaked"


@pytest.mark.gupshup(throttle=ThrottleConfig.off())
async def test_login_faults_never_open_the_circuit(gupshup_server: Any) -> None:
    """Issue 13.3: 129s say nothing about the credentials; each call retries, none is locked out."""
    from agupshup import ServerError
    from agupshup.emulator import FaultSpec
    from agupshup.retry import RetryPolicy

    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("error129", methods=("users.login",)))
    policy = RetryPolicy(attempts=3, base=0.001, cap=0.002)
    async with _client(gupshup_server, retry=policy) as client:
        for _ in range(4):
            with pytest.raises(ServerError):
                await client.get_my_groups()
    assert emulator.calls["users.login"] == 4 * 3  # every call tried, each one bounded
    assert emulator.calls["users.getchallenge"] == 4 * 3  # a fresh challenge for each login
    assert emulator.calls["users.getmygroups"] == 0
