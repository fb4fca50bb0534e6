"""Every method's success payload, in both formats (protocol.md §4, §5)."""

from __future__ import annotations

import re

import pytest

from agupshup.emulator.seed import ALICE_PHONE, DEMO_PHONE

from .helpers import Api

pytestmark = pytest.mark.parametrize("fmt", ["xml", "json"])

MESSAGE_FIELDS = ["id", "groupName", "text", "sender", "timestamp", "adult"]
GROUP_FIELDS = [
    "groupName",
    "description",
    "owner",
    "numPosts",
    "numMembers",
    "private",
    "adult",
    "createdOn",
]
REPLY_FIELDS = ["id", "groupName", "fromGroup", "text", "sender", "timestamp", "hidden"]


async def test_public_stream(api: Api, fmt: str) -> None:
    resp = await api.call("gupshup.getPublicStream", fmt)
    messages = resp.tree["messages"]
    assert resp.tree["status"] == "success"
    assert len(messages) == 15
    assert all(list(m) == MESSAGE_FIELDS for m in messages)
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(ids, reverse=True)
    assert {m["groupName"] for m in messages} <= {"jumpy", "cricket", "demo-bot"}
    everything: list[dict[str, str]] = []
    for start in range(0, 180, 15):
        page = await api.call(
            "gupshup.getPublicStream", fmt, skipAdult="FALSE", **{"from": str(start)}
        )
        everything += page.tree["messages"]
    groups = {m["groupName"] for m in everything}
    assert groups == {"jumpy", "cricket", "demo-bot", "spicy"}  # not secret, not closed
    assert len(everything) == 175
    assert all(m["adult"] == "true" for m in everything if m["groupName"] == "spicy")


async def test_public_stream_pages_do_not_overlap(api: Api, fmt: str) -> None:
    seen: list[str] = []
    for start in range(0, 180, 15):
        page = await api.call("gupshup.getPublicStream", fmt, **{"from": str(start)})
        seen += [m["id"] for m in page.tree["messages"]]
    assert len(seen) == len(set(seen)) == 170  # jumpy 120 + cricket 40 + demo-bot 10


async def test_get_message(api: Api, fmt: str) -> None:
    resp = await api.call("groups.getMessage", fmt, group="jumpy")
    assert resp.tree["message"]["text"] == "jumpy message 120"
    assert resp.tree["message"]["sender"] == "demo"


async def test_get_stream_newest_first(api: Api, fmt: str) -> None:
    first = await api.call("groups.getStream", fmt, group="jumpy")
    assert [m["text"] for m in first.tree["messages"]][:2] == [
        "jumpy message 120",
        "jumpy message 119",
    ]
    assert len(first.tree["messages"]) == 15
    last = await api.call("groups.getStream", fmt, group="jumpy", range="15", **{"from": "110"})
    assert [m["text"] for m in last.tree["messages"]] == [
        f"jumpy message {n}" for n in range(10, 0, -1)
    ]
    empty = await api.call("groups.getStream", fmt, group="jumpy", **{"from": "120"})
    assert empty.tree["messages"] == []
    if fmt == "xml":
        assert b"<messages/>" in empty.body
    else:
        assert empty.raw["response"]["messages"] == []


async def test_get_info(api: Api, fmt: str) -> None:
    group = (await api.call("groups.getInfo", fmt, group="JUMPY")).tree["group"]
    assert list(group) == GROUP_FIELDS
    assert group == {
        "groupName": "jumpy",
        "description": "The demo user's public group: 120 seeded messages.",
        "owner": "demo",
        "numPosts": "120",
        "numMembers": "1",
        "private": "false",
        "adult": "false",
        "createdOn": "1262304000000",
    }
    cricket = (await api.call("groups.getInfo", fmt, group="cricket")).tree["group"]
    assert cricket["owner"] == "alice"
    assert cricket["numMembers"] == "2"


async def test_challenge_and_login(api: Api, fmt: str) -> None:
    challenge = (await api.call("users.getChallenge", fmt)).tree
    assert challenge["salt"] == "k3J9xQ"
    assert re.fullmatch(r"[A-Za-z]{5}[0-9]{10}", challenge["challenge"])
    token = await api.login(DEMO_PHONE, "gupshup-demo", fmt)
    assert re.fullmatch(r"[A-Za-z]{5}[0-9]{10}", token)


async def test_post_message(api: Api, fmt: str) -> None:
    token = await api.login(DEMO_PHONE, "gupshup-demo")
    resp = await api.call(
        "groups.postMessage", fmt, token=token, groupName="jumpy", text="Test Post"
    )
    assert resp.tree["status"] == "success"
    newest = (await api.call("groups.getMessage", fmt, group="jumpy")).tree["message"]
    assert newest["id"] == resp.tree["id"]
    assert newest["text"] == "Test Post"
    assert int(newest["id"]) > 100180
    assert api.emulator.posts == 1


async def test_my_groups_and_joined(api: Api, fmt: str) -> None:
    token = await api.login(DEMO_PHONE, "gupshup-demo")
    mine = (await api.call("users.getMyGroups", fmt, token=token)).tree["groups"]
    assert [g["groupName"] for g in mine] == ["jumpy", "demo-bot"]
    assert all(list(g) == GROUP_FIELDS for g in mine)
    paged = (
        await api.call("users.getMyGroups", fmt, token=token, range="1", **{"from": "1"})
    ).tree["groups"]
    assert [g["groupName"] for g in paged] == ["demo-bot"]
    joined = (await api.call("users.getJoinedGroups", fmt, token=token)).tree["groups"]
    assert [g["groupName"] for g in joined] == ["cricket"]
    stream = (await api.call("users.getJoinedGroupsStream", fmt, token=token, range="30")).tree[
        "messages"
    ]
    assert [m["text"] for m in stream][:2] == ["cricket score update 40", "cricket score update 39"]
    assert len(stream) == 30
    alice = await api.login(ALICE_PHONE, "alice-pass")
    alice_groups = (await api.call("users.getMyGroups", fmt, token=alice)).tree["groups"]
    assert [g["groupName"] for g in alice_groups] == ["cricket", "secret", "closed", "spicy"]


async def test_logout(api: Api, fmt: str) -> None:
    token = await api.login(DEMO_PHONE, "gupshup-demo")
    resp = await api.call("users.logout", fmt, token=token)
    assert resp.tree == {"status": "success"}
    assert (await api.call("users.getMyGroups", fmt, token=token)).code == 6
    again = await api.call("users.logout", fmt, token=token)
    assert again.tree == {"status": "success"}


async def test_post_reply(api: Api, fmt: str) -> None:
    token = await api.login(ALICE_PHONE, "alice-pass")
    resp = await api.call(
        "groups.postReply",
        fmt,
        token=token,
        groupName="cricket",
        text="@jumpy @demo-bot hello there",
    )
    assert resp.tree["status"] == "success"
    replies = resp.tree["replies"]
    assert [(r["groupName"], r["fromGroup"], r["sender"]) for r in replies] == [
        ("jumpy", "cricket", "alice"),
        ("demo-bot", "cricket", "alice"),
    ]
    assert all(list(r) == REPLY_FIELDS for r in replies)
    default = await api.call("groups.postReply", fmt, token=token, text="@jumpy from default")
    assert default.tree["replies"][0]["fromGroup"] == "cricket"  # alice's first group


async def test_post_reply_partial(api: Api, fmt: str) -> None:
    token = await api.login(DEMO_PHONE, "gupshup-demo")
    resp = await api.call("groups.postReply", fmt, token=token, text="@cricket @nope @secret hi")
    assert resp.tree["status"] == "partial"
    assert [r["groupName"] for r in resp.tree["replies"]] == ["cricket"]
    assert [code for code, _ in resp.errors] == [157, 157]
    assert 'group "nope"' in resp.errors[0][1]
    assert 'group "secret"' in resp.errors[1][1]
    if fmt == "json":
        assert isinstance(resp.raw["response"]["error"], list)


async def test_get_replies(api: Api, fmt: str) -> None:
    visible = (await api.call("groups.getReplies", fmt, groupName="jumpy")).tree["replies"]
    assert [r["text"] for r in visible] == [
        "@jumpy see you at the match",
        "@jumpy bot check-in",
        "@jumpy great stream!",
    ]
    assert all(r["hidden"] == "false" for r in visible)
    token = await api.login(DEMO_PHONE, "gupshup-demo")
    every = (
        await api.call("groups.getReplies", fmt, groupName="jumpy", getAll="true", token=token)
    ).tree["replies"]
    assert len(every) == 4
    assert [r["hidden"] for r in every].count("true") == 1
    paged = (
        await api.call("groups.getReplies", fmt, groupName="jumpy", range="1", **{"from": "1"})
    ).tree["replies"]
    assert [r["text"] for r in paged] == ["@jumpy bot check-in"]


async def test_invite_friends(api: Api, fmt: str) -> None:
    token = await api.login(DEMO_PHONE, "gupshup-demo")
    resp = await api.call(
        "groups.inviteFriends", fmt, token=token, phoneNumbers="9812345678, 919812345679,9812345678"
    )
    assert resp.tree == {
        "status": "success",
        "invited": ["919812345678", "919812345679"],
        "failed": [],
    }
    if fmt == "xml":
        assert b"<failed/>" in resp.body
        assert b"<invited><phone>919812345678</phone><phone>919812345679</phone>" in resp.body
    sms = api.emulator.outbox.for_phone("9812345678")
    assert sms[-1].kind == "invite"
    assert sms[-1].group == "jumpy"
    partial = await api.call(
        "groups.inviteFriends",
        fmt,
        token=token,
        groupName="demo-bot",
        phoneNumbers="9812345670,12345",
    )
    assert partial.tree["status"] == "partial"
    assert partial.tree["invited"] == ["919812345670"]
    assert partial.tree["failed"] == [
        {"phone": "12345", "code": "161", "msg": "One or more phone numbers are not valid."}
    ]
    assert partial.errors == [
        (
            162,
            "Invites have been sent to some of your friends. Some phone "
            "numbers could not be invited.",
        )
    ]


async def test_subscribe_phase_one(api: Api, fmt: str) -> None:
    resp = await api.call("groups.subscribeGroupToken", fmt, phone="9812345678", group="jumpy")
    assert re.fullmatch(r"[0-9a-f]{32}", resp.tree["token"])
    code = api.emulator.outbox.last_code("9812345678")
    assert code is not None
    assert re.fullmatch(r"[A-Z0-9]{4}", code)
    done = await api.call(
        "groups.subscribeGroupToken",
        fmt,
        phone="9812345678",
        group="jumpy",
        token=resp.tree["token"],
        confirm=code.lower(),
    )
    assert done.tree["status"] == "success"
    assert "9812345678" in done.tree["msg"]
    info = (await api.call("groups.getInfo", fmt, group="jumpy")).tree["group"]
    assert info["numMembers"] == "2"


async def test_get_message_of_an_empty_group(fmt: str) -> None:
    from agupshup.emulator import Emulator, EmulatorConfig

    seed = {
        "users": [{"phone": "9123412345", "password": "pw"}],
        "groups": [{"name": "empty", "owner": "9123412345"}],
    }
    emulator = Emulator(EmulatorConfig(seed=seed))
    answer = emulator.request(
        {"method": "groups.getMessage", "v": "1.0", "group": "empty", "format": fmt}
    )
    assert b"message" not in answer.body
    assert b"success" in answer.body
