"""Fault modes: each does what it says, deterministically, and only where it is told to."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from agupshup.emulator import Emulator, EmulatorConfig, EmulatorServer, FaultSpec
from agupshup.emulator.seed import DEMO_PHONE

from .helpers import Api

INFO = {"method": "groups.getInfo", "v": "1.0", "group": "jumpy", "format": "json"}


@pytest_asyncio.fixture
async def fresh() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that opens a new connection per request (aiohttp retries none of them)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


async def get(
    session: aiohttp.ClientSession, server: EmulatorServer, params: dict[str, str]
) -> tuple[int, str, bytes]:
    async with session.get(server.url, params=params) as response:
        return response.status, response.headers["Content-Type"], await response.read()


def post_params(emulator: Emulator, text: str) -> dict[str, str]:
    return {
        "method": "groups.postMessage",
        "v": "1.0",
        "token": emulator.issue_token(DEMO_PHONE),
        "groupName": "jumpy",
        "text": text,
    }


@pytest.mark.parametrize("when", ["before", "after"])
async def test_reset(
    gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession, when: str
) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("reset", methods=("groups.postMessage",), when=when))  # type: ignore[arg-type]
    with pytest.raises(aiohttp.ClientOSError) as caught:
        await get(fresh, gupshup_server, post_params(emulator, "maybe stored"))
    assert "reset" in str(caught.value).lower()
    assert emulator.posts == (1 if when == "after" else 0)
    status, _, body = await get(fresh, gupshup_server, INFO)  # other methods are untouched
    assert status == 200
    assert b'"success"' in body


async def test_http_502(gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("http502"))
    status, ctype, body = await get(fresh, gupshup_server, INFO)
    assert status == 502
    assert ctype.startswith("text/html")
    assert b"502 Bad Gateway" in body


async def test_truncated_by_content_length(
    gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession
) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("truncated", when="after"))
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(fresh, gupshup_server, INFO)


async def test_truncated_cut(gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("truncated", truncate="cut", when="after"))
    status, ctype, body = await get(fresh, gupshup_server, INFO)
    assert status == 200
    assert ctype.startswith("application/json")
    assert body.startswith(b'{"response":{"status":"success"')
    with pytest.raises(ValueError):
        json.loads(body)


@pytest.mark.parametrize("when", ["before", "after"])
async def test_slow(
    gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession, when: str
) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("slow", delay=0.3, when=when))  # type: ignore[arg-type]
    started = time.monotonic()
    status, _, body = await get(fresh, gupshup_server, post_params(emulator, "slowly"))
    assert time.monotonic() - started >= 0.3
    assert status == 200
    assert b'"success"' in body
    assert emulator.posts == 1


async def test_slow_times_a_client_out_and_the_post_lands_later(
    gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession
) -> None:
    emulator = gupshup_server.emulator
    emulator.faults.add(FaultSpec("slow", delay=0.4, when="before"))
    with pytest.raises(asyncio.TimeoutError):
        async with fresh.get(
            gupshup_server.url,
            params=post_params(emulator, "late"),
            timeout=aiohttp.ClientTimeout(total=0.1),
        ) as response:
            await response.read()
    assert emulator.posts == 0
    for _ in range(100):
        if emulator.posts:
            break
        await asyncio.sleep(0.02)
    assert emulator.posts == 1


async def test_oversized(gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("oversized", size=3_000_000, when="after"))
    status, _, body = await get(fresh, gupshup_server, INFO)
    assert status == 200
    assert len(body) == 3_000_000
    assert json.loads(body)["response"]["status"] == "success"


async def test_garbage(gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("garbage", count=2))
    first = await get(fresh, gupshup_server, INFO)
    second = await get(fresh, gupshup_server, INFO)
    assert first[0] == 200
    assert first[1].startswith("application/json")
    assert first[2] != second[2]
    for _, _, body in (first, second):
        with pytest.raises(ValueError):
            json.loads(body)
    # same seed, same garbage
    async with EmulatorServer(EmulatorConfig(faults=(FaultSpec("garbage", count=2),))) as other:
        assert await get(fresh, other, INFO) == first


async def test_wrong_content_type(
    gupshup_server: EmulatorServer, fresh: aiohttp.ClientSession
) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("content_type", when="after"))
    status, ctype, body = await get(fresh, gupshup_server, INFO)
    assert status == 200
    assert ctype.startswith("text/html")
    assert json.loads(body)["response"]["status"] == "success"


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_error_129(api: Api, when: str, fmt: str) -> None:
    emulator = api.emulator
    emulator.faults.add(FaultSpec("error129", methods=("groups.postMessage",), when=when))  # type: ignore[arg-type]
    resp = await api.call(
        "groups.postMessage",
        fmt,
        **{k: v for k, v in post_params(emulator, "hello").items() if k not in ("method", "v")},
    )
    assert resp.errors == [
        (
            129,
            "There was an internal error and your last action could not be "
            "performed. Please resubmit your last action after some time.",
        )
    ]
    assert emulator.posts == (1 if when == "after" else 0)


async def test_error_129_on_get_challenge(api: Api) -> None:
    api.emulator.faults.add(FaultSpec("error129", methods=("users.getChallenge",), count=1))
    assert (await api.call("users.getChallenge")).code == 129
    assert (await api.call("users.getChallenge")).tree["status"] == "success"


async def test_count_skip_and_method_filter(api: Api) -> None:
    api.emulator.faults.add(FaultSpec("error129", methods=("GROUPS.getInfo",), skip=2, count=2))
    codes = []
    for _ in range(6):
        resp = await api.call("groups.getInfo", "json", group="jumpy")
        codes.append(resp.code if "error" in resp.tree else 0)
        assert (await api.call("groups.getMessage", "json", group="jumpy")).tree["status"]
    assert codes == [0, 0, 129, 129, 0, 0]
    assert api.emulator.stats()["faults"] == [{"method": "groups.getinfo", "kind": "error129"}] * 2


def fired(seed: int) -> list[bool]:
    emulator = Emulator(
        EmulatorConfig(fault_seed=seed, faults=(FaultSpec("error129", probability=0.5),))
    )
    return [b'"129"' in emulator.request(INFO).body for _ in range(40)]


def test_probability_is_deterministic_with_a_seed() -> None:
    assert fired(7) == fired(7)
    assert fired(7) != fired(8)
    assert 5 < sum(fired(7)) < 35


async def test_faults_over_http(api: Api) -> None:
    added = await api.admin(
        "POST",
        "/_emulator/faults",
        json={"kind": "error129", "methods": "groups.getInfo", "count": 1},
    )
    assert added[0]["kind"] == "error129"
    assert added[0]["methods"] == ["groups.getinfo"]
    assert (await api.call("groups.getInfo", "json", group="jumpy")).code == 129
    replaced = await api.admin("PUT", "/_emulator/faults", json=[{"kind": "http502"}])
    assert [f["kind"] for f in replaced] == ["http502"]
    assert await api.admin("DELETE", "/_emulator/faults") == []
    async with api.session.post(
        api.server.base_url + "/_emulator/faults", json={"kind": "meteor"}
    ) as response:
        assert response.status == 400


async def test_faults_never_touch_a_113(api: Api) -> None:
    from agupshup.emulator import ThrottleConfig

    api.emulator.throttle.configure(ThrottleConfig.single(1, 60.0))
    api.emulator.faults.add(FaultSpec("http502"))
    async with api.session.get(api.server.url, params=INFO) as response:
        assert response.status == 502
    resp = await api.call("groups.getInfo", "json", group="jumpy")
    assert resp.code == 113
