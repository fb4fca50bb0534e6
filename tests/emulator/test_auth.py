"""Login (protocol.md §6) and tokens (§7): single-use challenges, idle expiry, logout."""

from __future__ import annotations

import base64
import hashlib

import pytest

from agupshup.emulator import login_rand
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE

from .helpers import Api, FakeTime


def reference_rand(password: str, salt: str, challenge: str) -> str:
    inner = base64.b64encode(hashlib.md5((password + salt).encode()).digest()).decode()
    return base64.b64encode(hashlib.md5((inner + challenge).encode()).digest()).decode()


def test_rand_formula() -> None:
    rand = login_rand("gupshup-demo", "k3J9xQ", "BXuQQ2056310911")
    assert rand == reference_rand("gupshup-demo", "k3J9xQ", "BXuQQ2056310911")
    assert len(rand) == 24
    assert rand.endswith("==")


async def challenge(api: Api) -> str:
    return str((await api.call("users.getChallenge")).tree["challenge"])


async def login_with(api: Api, ch: str, password: str = DEMO_PASSWORD, **extra: str) -> int | str:
    resp = await api.call(
        "users.login",
        phone=DEMO_PHONE,
        countryCode="91",
        challenge=ch,
        rand=api.emulator.login_rand(password, ch),
        **extra,
    )
    return resp.tree.get("token") or resp.code


async def test_a_challenge_works_once(api: Api) -> None:
    ch = await challenge(api)
    token = await login_with(api, ch)
    assert isinstance(token, str)
    assert await login_with(api, ch) == 121


async def test_a_failed_attempt_spends_the_challenge(api: Api) -> None:
    ch = await challenge(api)
    assert await login_with(api, ch, password="wrong") == 121
    assert await login_with(api, ch) == 121


async def test_even_a_malformed_attempt_spends_the_challenge(api: Api) -> None:
    ch = await challenge(api)
    assert await login_with(api, ch, v="2") == 107
    assert await login_with(api, ch) == 121


async def test_challenges_live_five_minutes(api: Api, clock: FakeTime) -> None:
    ch = await challenge(api)
    clock.advance(299)
    assert isinstance(await login_with(api, ch), str)
    late = await challenge(api)
    clock.advance(300)
    assert await login_with(api, late) == 121


async def test_challenges_are_distinct_and_the_salt_site_wide(api: Api) -> None:
    answers = [(await api.call("users.getChallenge")).tree for _ in range(5)]
    assert len({a["challenge"] for a in answers}) == 5
    assert {a["salt"] for a in answers} == {"k3J9xQ"}


async def test_rand_sent_with_a_raw_plus_still_logs_in(api: Api) -> None:
    for _ in range(20):  # find a rand with a "+" in it
        ch = await challenge(api)
        rand = api.emulator.login_rand(DEMO_PASSWORD, ch)
        if "+" in rand:
            break
    else:
        pytest.skip("no rand with '+' found")
    url = (
        f"{api.server.url}?method=users.login&v=1.0&phone={DEMO_PHONE}&countryCode=91"
        f"&challenge={ch}&rand={rand}"
    )
    async with api.session.get(url) as response:
        assert b'"token"' in await response.read()


async def test_post_login(api: Api) -> None:
    ch = await challenge(api)
    resp = await api.call(
        "users.login",
        "xml",
        verb="POST",
        phone=DEMO_PHONE,
        countryCode="91",
        challenge=ch,
        rand=api.emulator.login_rand(DEMO_PASSWORD, ch),
    )
    assert resp.tree["status"] == "success"
    assert resp.content_type.startswith("text/xml")


async def test_tokens_expire_after_30_idle_minutes(api: Api, clock: FakeTime) -> None:
    token = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    clock.advance(1799)
    assert (await api.call("users.getMyGroups", token=token)).tree["status"] == "success"
    clock.advance(1799)  # use restarted the idle time
    assert (await api.call("users.getMyGroups", token=token)).tree["status"] == "success"
    clock.advance(1800)
    assert (await api.call("users.getMyGroups", token=token)).code == 6
    assert (await api.call("users.getJoinedGroups", token=token)).code == 1


@pytest.mark.gupshup(token_idle=10.0, time_scale=60.0)
async def test_token_idle_is_configurable_and_scaled(api: Api, clock: FakeTime) -> None:
    token = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    clock.advance(0.1)  # 6 emulator seconds
    assert (await api.call("users.getMyGroups", token=token)).tree["status"] == "success"
    clock.advance(0.2)  # 12 emulator seconds
    assert (await api.call("users.getMyGroups", token=token)).code == 6


async def test_logout_kills_the_token(api: Api) -> None:
    token = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    other = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    assert token != other
    await api.call("users.logout", token=token)
    assert (
        await api.call("groups.postMessage", token=token, groupName="jumpy", text="x")
    ).code == 6
    assert (await api.call("groups.getReplies", token=token, groupName="jumpy")).code == 153
    ok = await api.call("groups.postMessage", token=other, groupName="jumpy", text="x")
    assert ok.tree["status"] == "success"


async def test_counting_a_login(api: Api) -> None:
    api.emulator.reset_counts()
    await api.login(DEMO_PHONE, DEMO_PASSWORD)
    assert api.emulator.calls == {"users.getchallenge": 1, "users.login": 1}
