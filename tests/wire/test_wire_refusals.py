"""Local refusals at the wire level: each builder refuses what the server would refuse
(protocol.md §5) with a ValidationError naming the method and the parameter, and accepts the
edge values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agupshup import wire
from agupshup.errors import GupshupError, ValidationError
from agupshup.models import Challenge

CH = Challenge(salt="k3J9xQ", challenge="8f2c41a7e0")
TOKEN = "85aa39fbcf69e44ff603a2e2391f1b22"
T160 = "Practice moved to 7am tomorrow. " * 5  # 160 characters

#: name → (builder call, method, parameter)
REFUSED: dict[str, tuple[Callable[[], Any], str, str]] = {
    # ranges: 1–15 for the public reads, 1–30 for the user calls
    "public range 16": (lambda: wire.get_public_stream(0, 16), "gupshup.getPublicStream", "range"),
    "public range 0": (lambda: wire.get_public_stream(0, 0), "gupshup.getPublicStream", "range"),
    "public range -1": (lambda: wire.get_public_stream(0, -1), "gupshup.getPublicStream", "range"),
    "public from -1": (lambda: wire.get_public_stream(-1), "gupshup.getPublicStream", "from"),
    "public range str": (
        lambda: wire.get_public_stream(0, "10"), "gupshup.getPublicStream", "range"
    ),
    "public from float": (lambda: wire.get_public_stream(1.5), "gupshup.getPublicStream", "from"),
    "stream range 16": (lambda: wire.get_stream("jumpy", 0, 16), "groups.getStream", "range"),
    "stream range 0": (lambda: wire.get_stream("jumpy", 0, 0), "groups.getStream", "range"),
    "stream range True": (lambda: wire.get_stream("jumpy", 0, True), "groups.getStream", "range"),
    "stream from -1": (lambda: wire.get_stream("jumpy", -1), "groups.getStream", "from"),
    "stream from False": (lambda: wire.get_stream("jumpy", False), "groups.getStream", "from"),
    "my groups range 31": (lambda: wire.get_my_groups(0, 31), "users.getMyGroups", "range"),
    "my groups range 0": (lambda: wire.get_my_groups(0, 0), "users.getMyGroups", "range"),
    "my groups from -1": (lambda: wire.get_my_groups(-1), "users.getMyGroups", "from"),
    "joined range 31": (lambda: wire.get_joined_groups(0, 31), "users.getJoinedGroups", "range"),
    "joined from -1": (lambda: wire.get_joined_groups(-1), "users.getJoinedGroups", "from"),
    "joined stream range 31": (
        lambda: wire.get_joined_groups_stream(0, 31), "users.getJoinedGroupsStream", "range"
    ),
    "joined stream from -7": (
        lambda: wire.get_joined_groups_stream(-7), "users.getJoinedGroupsStream", "from"
    ),
    "replies range 31": (lambda: wire.get_replies("jumpy", 0, 31), "groups.getReplies", "range"),
    "replies range 0": (lambda: wire.get_replies("jumpy", 0, 0), "groups.getReplies", "range"),
    "replies from -1": (lambda: wire.get_replies("jumpy", -1), "groups.getReplies", "from"),
    # groups
    "message empty group": (lambda: wire.get_message(""), "groups.getMessage", "group"),
    "stream blank group": (lambda: wire.get_stream("   "), "groups.getStream", "group"),
    "info empty group": (lambda: wire.get_info(""), "groups.getInfo", "group"),
    "subscribe empty group": (
        lambda: wire.subscribe("9819535746", ""), "groups.subscribeGroupToken", "group"
    ),
    "post empty group": (lambda: wire.post_message("", "hi"), "groups.postMessage", "groupName"),
    "post group with a space": (
        lambda: wire.post_message("my group", "hi"), "groups.postMessage", "groupName"
    ),
    "stream group with a slash": (lambda: wire.get_stream("a/b"), "groups.getStream", "group"),
    "info group starting with a dash": (lambda: wire.get_info("-x"), "groups.getInfo", "group"),
    "replies empty group": (lambda: wire.get_replies(""), "groups.getReplies", "groupName"),
    "reply blank source group": (
        lambda: wire.post_reply("@jumpy hi", " "), "groups.postReply", "groupName"
    ),
    "invite blank group": (
        lambda: wire.invite_friends("9876543210", ""), "groups.inviteFriends", "groupName"
    ),
    # phones
    "subscribe short phone": (
        lambda: wire.subscribe("12345", "jumpy"), "groups.subscribeGroupToken", "phone"
    ),
    "subscribe letters": (
        lambda: wire.subscribe("98765abcde", "jumpy"), "groups.subscribeGroupToken", "phone"
    ),
    "subscribe 11 digits": (
        lambda: wire.subscribe("98765432101", "jumpy"), "groups.subscribeGroupToken", "phone"
    ),
    "subscribe other country": (
        lambda: wire.subscribe("+44 7911 123456", "jumpy"), "groups.subscribeGroupToken", "phone"
    ),
    "subscribe empty phone": (
        lambda: wire.subscribe("", "jumpy"), "groups.subscribeGroupToken", "phone"
    ),
    "confirm bad phone": (
        lambda: wire.confirm_subscription("98195", "jumpy", TOKEN, "UY9Z"),
        "groups.subscribeGroupToken",
        "phone",
    ),
    "login short phone": (lambda: wire.login("98211", "pw", CH), "users.login", "phone"),
    "login phone with letters": (
        lambda: wire.login("98211O7770", "pw", CH), "users.login", "phone"
    ),
    "login country code 1": (
        lambda: wire.login("9821107770", "pw", CH, "1"), "users.login", "countryCode"
    ),
    "login country code +44": (
        lambda: wire.login("9821107770", "pw", CH, "+44"), "users.login", "countryCode"
    ),
    "login country code 091": (
        lambda: wire.login("9821107770", "pw", CH, "091"), "users.login", "countryCode"
    ),
    # subscription code: 4 letters or digits
    "confirm code too short": (
        lambda: wire.confirm_subscription("9819535746", "jumpy", TOKEN, "UY9"),
        "groups.subscribeGroupToken",
        "confirm",
    ),
    "confirm code too long": (
        lambda: wire.confirm_subscription("9819535746", "jumpy", TOKEN, "UY9ZZ"),
        "groups.subscribeGroupToken",
        "confirm",
    ),
    "confirm code punctuation": (
        lambda: wire.confirm_subscription("9819535746", "jumpy", TOKEN, "UY-9"),
        "groups.subscribeGroupToken",
        "confirm",
    ),
    "confirm code non-ASCII digits": (
        lambda: wire.confirm_subscription("9819535746", "jumpy", TOKEN, "\u0661\u0662\u0663\u0664"),
        "groups.subscribeGroupToken",
        "confirm",
    ),
    "confirm code empty": (
        lambda: wire.confirm_subscription("9819535746", "jumpy", TOKEN, ""),
        "groups.subscribeGroupToken",
        "confirm",
    ),
    "confirm without token": (
        lambda: wire.confirm_subscription("9819535746", "jumpy", "", "UY9Z"),
        "groups.subscribeGroupToken",
        "token",
    ),
    # texts
    "post non-ASCII": (
        lambda: wire.post_message("jumpy", "Chai at the caf\u00e9"), "groups.postMessage", "text"
    ),
    "post emoji": (lambda: wire.post_message("jumpy", "great \U0001f600"), "groups.postMessage",
                   "text"),
    "post 161 chars": (lambda: wire.post_message("jumpy", T160 + "!"), "groups.postMessage",
                       "text"),
    "post empty text": (lambda: wire.post_message("jumpy", ""), "groups.postMessage", "text"),
    "reply non-ASCII": (
        lambda: wire.post_reply("@jumpy na\u00efve question"), "groups.postReply", "text"
    ),
    "reply 161 chars": (
        lambda: wire.post_reply("@jumpy " + "x" * 154), "groups.postReply", "text"
    ),
    "reply empty": (lambda: wire.post_reply(""), "groups.postReply", "text"),
    "reply only @group": (lambda: wire.post_reply("@jumpy"), "groups.postReply", "text"),
    "reply only @groups and spaces": (
        lambda: wire.post_reply("  @jumpy   @cricketfans \t"), "groups.postReply", "text"
    ),
    "reply without @group": (
        lambda: wire.post_reply("see you all at six"), "groups.postReply", "text"
    ),
    "reply with a bare @": (lambda: wire.post_reply("meet @ six"), "groups.postReply", "text"),
    # invites
    "invite no valid number": (
        lambda: wire.invite_friends(["12345", "5555555555"]), "groups.inviteFriends",
        "phoneNumbers",
    ),
    "invite landline only": (
        lambda: wire.invite_friends("02224567890"), "groups.inviteFriends", "phoneNumbers"
    ),
    "invite foreign mobile only": (
        lambda: wire.invite_friends("+447911123456"), "groups.inviteFriends", "phoneNumbers"
    ),
    "invite empty list": (lambda: wire.invite_friends([]), "groups.inviteFriends",
                          "phoneNumbers"),
    "invite empty string": (lambda: wire.invite_friends(" , ,"), "groups.inviteFriends",
                            "phoneNumbers"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name: str) -> None:
    build, method, param = REFUSED[name]
    with pytest.raises(GupshupError) as info:
        build()
    exc = info.value
    assert type(exc) is ValidationError
    assert isinstance(exc, ValueError)
    assert (exc.method, exc.param) == (method, param)
    assert str(exc).startswith(f"{method}: {param}: ")
    assert exc.reason


def test_refusals_never_carry_the_password() -> None:
    with pytest.raises(ValidationError) as info:
        wire.login("98211", "hunter2-secret", CH)
    assert "hunter2-secret" not in str(info.value)
    assert "hunter2-secret" not in repr(info.value.args)


def _params(request: wire.Request[Any]) -> dict[str, str]:
    return dict(request.params)


#: name → (builder call, method, expected parameters)
ACCEPTED: dict[str, tuple[Callable[[], Any], str, dict[str, str]]] = {
    "public range 15": (
        lambda: wire.get_public_stream(0, 15),
        "gupshup.getPublicStream",
        {"from": "0", "range": "15", "skipAdult": "true"},
    ),
    "public range 1, adult": (
        lambda: wire.get_public_stream(3, 1, skip_adult=False),
        "gupshup.getPublicStream",
        {"from": "3", "range": "1", "skipAdult": "false"},
    ),
    "stream range 15": (
        lambda: wire.get_stream("jumpy", 0, 15),
        "groups.getStream",
        {"group": "jumpy", "from": "0", "range": "15"},
    ),
    "stream far from": (
        lambda: wire.get_stream(" jumpy ", 10_000, 1),
        "groups.getStream",
        {"group": "jumpy", "from": "10000", "range": "1"},
    ),
    "my groups range 30": (
        lambda: wire.get_my_groups(0, 30), "users.getMyGroups", {"from": "0", "range": "30"}
    ),
    "joined range 30": (
        lambda: wire.get_joined_groups(0, 30), "users.getJoinedGroups", {"from": "0", "range": "30"}
    ),
    "joined stream range 30": (
        lambda: wire.get_joined_groups_stream(29, 30),
        "users.getJoinedGroupsStream",
        {"from": "29", "range": "30"},
    ),
    "replies range 30, hidden": (
        lambda: wire.get_replies("sriharigrp1", 0, 30, include_hidden=True),
        "groups.getReplies",
        {"groupName": "sriharigrp1", "from": "0", "range": "30", "getAll": "true"},
    ),
    "post 160 chars": (
        lambda: wire.post_message("APICreated", T160),
        "groups.postMessage",
        {"groupName": "APICreated", "text": T160},
    ),
    "post one char": (
        lambda: wire.post_message("APICreated", "k"),
        "groups.postMessage",
        {"groupName": "APICreated", "text": "k"},
    ),
    "reply 160 chars": (
        lambda: wire.post_reply("@grouptwo " + "y" * 150),
        "groups.postReply",
        {"text": "@grouptwo " + "y" * 150},
    ),
    "reply from a group": (
        lambda: wire.post_reply("@grouptwo @groupthree this is a sample post", "groupone"),
        "groups.postReply",
        {"groupName": "groupone", "text": "@grouptwo @groupthree this is a sample post"},
    ),
    "subscribe +91 with spaces": (
        lambda: wire.subscribe("+91 98765 43210", "jumpy"),
        "groups.subscribeGroupToken",
        {"phone": "9876543210", "group": "jumpy"},
    ),
    "subscribe 91 prefix, dashes": (
        lambda: wire.subscribe("91-98195-35746", "jumpy"),
        "groups.subscribeGroupToken",
        {"phone": "9819535746", "group": "jumpy"},
    ),
    "confirm lower-case code": (
        lambda: wire.confirm_subscription("+91 98195 35746", "jumpy", TOKEN, " uy9z "),
        "groups.subscribeGroupToken",
        {"phone": "9819535746", "group": "jumpy", "token": TOKEN, "confirm": "UY9Z"},
    ),
    "login +91 with spaces, country +91": (
        lambda: wire.login("+91 98765 43210", "pw", CH, "+91"),
        "users.login",
        {
            "phone": "9876543210",
            "countryCode": "91",
            "challenge": "8f2c41a7e0",
            "rand": wire.compute_rand("pw", "k3J9xQ", "8f2c41a7e0"),
        },
    ),
    "invite +91 with spaces": (
        lambda: wire.invite_friends("+91 98765 43210"),
        "groups.inviteFriends",
        {"phoneNumbers": "919876543210"},
    ),
    "invite mixed list": (
        lambda: wire.invite_friends(["9876543210", " 12345 ", "919123456780"], "group1"),
        "groups.inviteFriends",
        {"groupName": "group1", "phoneNumbers": "919876543210,12345,919123456780"},
    ),
    "invite comma-separated string": (
        lambda: wire.invite_friends("9876543210, +91 70123 45678"),
        "groups.inviteFriends",
        {"phoneNumbers": "919876543210,917012345678"},
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(name: str) -> None:
    build, method, params = ACCEPTED[name]
    request = build()
    assert request.spec.name == method
    assert _params(request) == params


def test_rand_matches_the_2010_client() -> None:
    # base64(md5(base64(md5(password + salt)) + challenge)), worked out by hand with hashlib.
    import base64
    import hashlib

    inner = base64.b64encode(hashlib.md5(b"s3cretk3J9xQ").digest())
    expected = base64.b64encode(hashlib.md5(inner + b"8f2c41a7e0").digest()).decode()
    assert wire.compute_rand("s3cret", "k3J9xQ", "8f2c41a7e0") == expected
    assert len(expected) == 24
    assert expected.endswith("==")


def test_secrets_stay_out_of_repr() -> None:
    request = wire.login("9821107770", "s3cret", CH)
    assert "rand" not in repr(request)
    assert request.spec.http_method == "POST"
    assert wire.get_stream("jumpy").spec.http_method == "GET"


def test_fields_carry_version_and_format() -> None:
    request = wire.get_replies("sriharigrp1", include_hidden=True)
    assert request.needs_token
    assert request.fields("json", "IIQiU1107028137")[:3] == [
        ("method", "groups.getReplies"), ("v", "1.0"), ("format", "json")
    ]
    assert request.fields("xml", "IIQiU1107028137")[-1] == ("token", "IIQiU1107028137")
    assert not wire.get_replies("sriharigrp1").needs_token


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("public_stream", "get_public_stream"),
        ("joined_groups_stream", "get_joined_groups_stream"),
        ("my_groups", "get_my_groups"),
        ("joined_groups", "get_joined_groups"),
    ],
)
def test_builder_names_before_issue_25_warn_and_build_the_same_page(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"wire.{new}"):
        builder = getattr(wire, old)
    assert builder is getattr(wire, new)
    assert old not in wire.__all__
    with pytest.raises(AttributeError):
        wire.no_such_builder  # type: ignore[attr-defined]  # noqa: B018
