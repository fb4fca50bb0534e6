"""Local refusals: what the server would refuse is refused before anything is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agupshup import Client, ValidationError
from agupshup.transport import MockTransport, RawResponse


def _never(fields: Any) -> RawResponse:
    raise AssertionError(f"a call was sent: {fields}")


@pytest.fixture
async def client() -> Any:
    transport = MockTransport(_never)
    async with Client(
        "http://127.0.0.1:9", phone="9999900000", password="pw", transport=transport, throttle=None
    ) as c:
        yield c
    assert transport.calls == []


Case = Callable[[Client], Awaitable[object]]
CASES: dict[str, tuple[Case, str]] = {
    "public range 0": (lambda c: c.get_public_stream(count=0), "range"),
    "public range 16": (lambda c: c.get_public_stream(count=16), "range"),
    "public from -1": (lambda c: c.get_public_stream(start=-1), "from"),
    "stream range 16": (lambda c: c.get_stream("jumpy", count=16), "range"),
    "stream from -1": (lambda c: c.get_stream("jumpy", start=-1), "from"),
    "stream bool range": (lambda c: c.get_stream("jumpy", count=True), "range"),
    "stream empty group": (lambda c: c.get_stream("  "), "group"),
    "message empty group": (lambda c: c.get_message(""), "group"),
    "info empty group": (lambda c: c.get_info(""), "group"),
    "my groups range 31": (lambda c: c.get_my_groups(count=31), "range"),
    "joined range 0": (lambda c: c.get_joined_groups(count=0), "range"),
    "joined stream from -5": (lambda c: c.get_joined_groups_stream(start=-5), "from"),
    "replies range 31": (lambda c: c.get_replies("jumpy", count=31), "range"),
    "post non-ascii": (lambda c: c.post_message("jumpy", "caf\u00e9"), "text"),
    "post too long": (lambda c: c.post_message("jumpy", "x" * 161), "text"),
    "post empty": (lambda c: c.post_message("jumpy", ""), "text"),
    "post no group": (lambda c: c.post_message("", "hi"), "groupName"),
    "reply without @group": (lambda c: c.post_reply("hello there"), "text"),
    "reply empty beyond @group": (lambda c: c.post_reply("@cricket   "), "text"),
    "reply non-ascii": (lambda c: c.post_reply("@cricket caf\u00e9"), "text"),
    "reply too long": (lambda c: c.post_reply("@cricket " + "x" * 160), "text"),
    "subscribe bad phone": (lambda c: c.subscribe("12345", "jumpy"), "phone"),
    "subscribe letters": (lambda c: c.subscribe("98765abcde", "jumpy"), "phone"),
    "invite none valid": (lambda c: c.invite_friends(["12345", "5555555555"]), "phoneNumbers"),
    "invite empty": (lambda c: c.invite_friends([]), "phoneNumbers"),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_refused_locally_without_a_call(client: Client, name: str) -> None:
    case, param = CASES[name]
    with pytest.raises(ValidationError) as info:
        await case(client)
    assert info.value.param == param
    assert info.value.method in str(info.value)


async def test_bad_login_phone_is_refused_without_a_call() -> None:
    transport = MockTransport(_never)
    async with Client(
        "http://127.0.0.1:9", phone="12", password="pw", transport=transport, throttle=None
    ) as c:
        with pytest.raises(ValidationError) as info:
            await c.get_my_groups()
    assert info.value.param == "phone"
    assert transport.calls == []  # not even getChallenge: the phone is checked first
