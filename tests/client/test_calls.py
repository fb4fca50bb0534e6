"""Every call of protocol.md §5 through the Client, against the emulator, in both formats."""

from __future__ import annotations

from typing import Any

import pytest

from agupshup import (
    Client,
    GroupNotFound,
    InvalidConfirmation,
    InviteResult,
    Message,
    PermissionDenied,
    PrivateGroup,
    ReplyResult,
)


async def test_public_stream_page(client: Client) -> None:
    page = await client.get_public_stream(0, 15)
    assert len(page) == 15
    assert [m.id for m in page] == sorted((m.id for m in page), reverse=True)
    assert not any(m.adult for m in page)


async def test_group_stream_page_and_message(client: Client) -> None:
    page = await client.get_stream("jumpy", 0, 15)
    latest = await client.get_message("jumpy")
    assert isinstance(latest, Message)
    assert page[0] == latest
    assert {m.group_name for m in page} == {"jumpy"}
    older = await client.get_stream("jumpy", 15, 15)
    assert older[0].id < page[-1].id


async def test_info(client: Client) -> None:
    info = await client.get_info("jumpy")
    assert info.group_name == "jumpy"
    assert info.owner == "demo"
    assert info.num_posts >= 120
    assert not info.private


async def test_unknown_and_private_groups(client: Client) -> None:
    with pytest.raises(GroupNotFound) as info:
        await client.get_info("no-such-group")
    assert info.value.code == 2
    assert info.value.method == "groups.getInfo"
    with pytest.raises(PrivateGroup) as priv:
        await client.get_stream("secret")
    assert priv.value.code == 112
    with pytest.raises(GroupNotFound):  # getMessage says 2 for private groups too (protocol.md §5)
        await client.get_message("secret")


async def test_challenge(client: Client) -> None:
    a, b = await client.get_challenge(), await client.get_challenge()
    assert a.salt == b.salt
    assert a.challenge != b.challenge


async def test_post_and_read_back(client: Client, gupshup_server: Any) -> None:
    new_id = await client.post_message("jumpy", "hello from the client tests")
    latest = await client.get_message("jumpy")
    assert latest is not None
    assert latest.id == new_id
    assert latest.text == "hello from the client tests"
    assert latest.sender == "demo"
    assert gupshup_server.emulator.posts == 1


async def test_post_to_group_not_owned(client: Client) -> None:
    with pytest.raises(PermissionDenied) as info:
        await client.post_message("cricket", "not mine")
    assert info.value.code == 1


async def test_my_and_joined_groups(client: Client) -> None:
    mine = {g.group_name for g in await client.get_my_groups()}
    joined = {g.group_name for g in await client.get_joined_groups()}
    assert {"jumpy", "demo-bot"} <= mine
    assert "cricket" in joined
    stream = await client.get_joined_groups_stream(0, 30)
    assert stream
    assert {m.group_name for m in stream} <= joined


async def test_reply_and_replies(client: Client) -> None:
    result = await client.post_reply("@cricket nice match", group="jumpy")
    assert isinstance(result, ReplyResult)
    assert not result.partial
    assert [r.group_name for r in result.replies] == ["cricket"]
    replies = await client.get_replies("cricket")
    assert replies[0].text == "@cricket nice match"
    assert replies[0].from_group == "jumpy"


async def test_reply_partial(client: Client) -> None:
    result = await client.post_reply("@cricket @nowhere hello both", group="jumpy")
    assert result.partial
    assert [r.group_name for r in result.replies] == ["cricket"]
    assert [f.code for f in result.failed] == [157]


async def test_hidden_replies_need_owner_token(client: Client) -> None:
    visible = await client.get_replies("jumpy")
    everything = await client.get_replies("jumpy", include_hidden=True)
    assert len(everything) > len(visible)
    assert any(r.hidden for r in everything)
    assert not any(r.hidden for r in visible)


async def test_invite_partial(client: Client, gupshup_server: Any) -> None:
    result = await client.invite_friends(["9876543210", "12345"], group="jumpy")
    assert isinstance(result, InviteResult)
    assert result.partial
    assert result.invited == ("919876543210",)
    assert [f.phone for f in result.failed] == ["12345"]
    assert gupshup_server.emulator.outbox.for_phone("919876543210")


async def test_subscription_two_phases(client: Client, gupshup_server: Any) -> None:
    ticket = await client.subscribe("9123456789", "cricket")
    assert "<redacted>" in repr(ticket)
    assert ticket.token not in repr(ticket)
    with pytest.raises(InvalidConfirmation):
        await client.confirm_subscription(ticket, "ZZZZ")
    code = gupshup_server.emulator.outbox.last_code("9123456789")
    assert code
    msg = await client.confirm_subscription(ticket, code)
    assert isinstance(msg, str)


async def test_logout_then_calls_log_in_again(client: Client, gupshup_server: Any) -> None:
    await client.get_my_groups()
    await client.logout()
    await client.logout()  # idempotent, and no call without a token
    await client.get_my_groups()
    calls = gupshup_server.emulator.calls
    assert calls["users.logout"] == 1
    assert calls["users.login"] == 2
