"""Issue 13 (5, 7, 10): the client against the emulator's hostile HTTP modes.

A redirect is never followed and a 4xx page is never retried: one admitted call is exactly one
HTTP request, and no form body (token, ``rand``) ever reaches the host a redirect names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from agupshup import Client, DecodeError, HTTPClientError, RedirectRefused
from agupshup.emulator import EmulatorServer, FaultSpec
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.retry import RetryPolicy

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, total=5.0)


class CountingAdmission:
    """Admits everything at once, counting the calls it admits."""

    def __init__(self) -> None:
        self.admitted = 0

    def slot(self, lane: str = "bulk", *, max_wait: float | None = None) -> CountingAdmission:
        self.admitted += 1
        return self

    async def __aenter__(self) -> CountingAdmission:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def learn(self, throttle: Any = (), limited: bool = False) -> None:
        return None

    def quota(self) -> list[Any]:
        return []


@pytest_asyncio.fixture
async def elsewhere() -> AsyncIterator[EmulatorServer]:
    """Another host a redirect may point to; its ``calls`` show whatever reached it."""
    async with EmulatorServer() as server:
        yield server


def _client(server: Any, admission: CountingAdmission, fmt: str = "json") -> Client:
    return Client(
        server.base_url,
        phone=DEMO_PHONE,
        password=DEMO_PASSWORD,
        wire_format=fmt,  # type: ignore[arg-type]
        throttle=admission,  # type: ignore[arg-type]
        retry=FAST,
        timeout=2.0,
    )


def _requests(server: Any) -> int:
    return sum(server.emulator.calls.values())


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_to_another_host_is_refused_and_nothing_reaches_it(
    gupshup_server: Any, elsewhere: EmulatorServer, status: int
) -> None:
    target = f"{elsewhere.url}?token=LEAKED-IN-LOCATION"
    gupshup_server.emulator.faults.add(
        FaultSpec("redirect", status=status, location=target, methods=("groups.postMessage",))
    )
    admission = CountingAdmission()
    async with _client(gupshup_server, admission) as client:
        await client.login()
        with pytest.raises(RedirectRefused) as caught:
            await client.post_message("jumpy", "hello over a redirect")
        token = client.session._token
    assert caught.value.status == status
    assert caught.value.location_host == "127.0.0.1"
    assert caught.value.method == "groups.postMessage"
    assert token is not None
    assert "LEAKED" not in str(caught.value)
    assert token not in str(caught.value)
    assert _requests(elsewhere) == 0  # the form body, token and all, never left for it
    assert gupshup_server.emulator.calls["groups.postmessage"] == 1  # no retry, no resolution
    assert gupshup_server.emulator.posts == 0
    assert _requests(gupshup_server) == admission.admitted  # login, post, logout


async def test_a_redirect_loop_costs_one_request_per_admitted_call(gupshup_server: Any) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("redirect"))  # to itself, forever
    admission = CountingAdmission()
    async with _client(gupshup_server, admission, "xml") as client:
        for _ in range(4):
            with pytest.raises(RedirectRefused) as caught:
                await client.get_stream("jumpy")
            assert caught.value.location_host == ""
    assert gupshup_server.emulator.calls["groups.getstream"] == 4
    assert admission.admitted == _requests(gupshup_server) == 4


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_a_4xx_page_is_a_typed_error_at_once(gupshup_server: Any, status: int) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("http4xx", status=status))
    admission = CountingAdmission()
    async with _client(gupshup_server, admission) as client:
        with pytest.raises(HTTPClientError) as caught:
            await client.get_info("jumpy")
    assert caught.value.status == status
    assert caught.value.method == "groups.getInfo"
    assert gupshup_server.emulator.calls["groups.getinfo"] == 1  # not retried, not paid again
    assert admission.admitted == 1


async def test_a_wrong_base_url_is_a_404_at_once(gupshup_server: Any) -> None:
    admission = CountingAdmission()
    async with Client(
        gupshup_server.base_url + "/wrong", throttle=admission, retry=FAST  # type: ignore[arg-type]
    ) as client:
        with pytest.raises(HTTPClientError) as caught:
            await client.get_public_stream()
    assert caught.value.status == 404
    assert admission.admitted == 1


async def test_a_5xx_stays_transient(gupshup_server: Any) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("http502", count=2))
    async with _client(gupshup_server, CountingAdmission()) as client:
        assert (await client.get_info("jumpy")).group_name == "jumpy"
    assert gupshup_server.emulator.calls["groups.getinfo"] == 3


@pytest.mark.parametrize(
    ("encoding", "bom"),
    # expat reads UTF-16 either way; UTF-32 only with a byte-order mark (decoded first)
    [(e, b) for e in ("utf-16-le", "utf-16-be") for b in (True, False)]
    + [("utf-32-le", True), ("utf-32-be", True)],
)
async def test_xml_answers_in_utf16_and_utf32_decode_alike(
    gupshup_server: Any, encoding: str, bom: bool
) -> None:
    async with _client(gupshup_server, CountingAdmission(), "xml") as client:
        plain = await client.get_stream("jumpy")
        gupshup_server.emulator.faults.add(FaultSpec("encoding", encoding=encoding, bom=bom))
        assert await client.get_stream("jumpy") == plain
        assert await client.get_info("jumpy") is not None


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be", "utf-32-le"])
async def test_a_billion_laughs_answer_is_a_decode_error(
    gupshup_server: Any, encoding: str
) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("laughs", encoding=encoding))
    async with _client(gupshup_server, CountingAdmission(), "xml") as client:
        with pytest.raises(DecodeError, match="DTD"):
            await client.get_info("jumpy")
    assert gupshup_server.emulator.calls["groups.getinfo"] == FAST.attempts


@pytest.mark.parametrize("fault", ["redirect", "http4xx"])
async def test_a_refused_logout_does_not_break_leaving_the_block(
    gupshup_server: Any, fault: str
) -> None:
    """Logout is best effort: a redirect or a 4xx page on it is logged, not raised."""
    gupshup_server.emulator.faults.add(FaultSpec(fault, methods=("users.logout",)))  # type: ignore[arg-type]
    async with _client(gupshup_server, CountingAdmission()) as client:
        await client.get_my_groups()
    assert gupshup_server.emulator.calls["users.logout"] == 1
