"""Every documented error code of every method, in both formats, with its exact text.

Codes shared by all methods (102, 107, 108, 109 for ``v``/``method``) are in test_protocol.py,
113 in test_throttle.py, 129 in test_faults.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from agupshup.emulator.seed import (
    ALICE_PHONE,
    BANNED_PHONE,
    BLOCKED_PHONE,
    DEMO_PHONE,
    NEWBIE_PHONE,
)

from .helpers import Api, leaves

Setup = Callable[[Api, dict[str, str]], Awaitable[None]]

RANGE_15 = (
    "The specified range is invalid. Range can be a positive integer with maximum value of 15."
)
GROUP_INVALID = "The specified group name is invalid."
TOKEN_INVALID = "The token string specified is invalid."
BAD_GROUP = (
    'You have provided an invalid value for the parameter "group". Please resend '
    "request with the correct value of the parameter."
)
BAD_GROUP_NAME = (
    "You have provided an invalid value for group name parameter. Please resend "
    "request with the correct value of the parameter."
)
NON_ASCII = (
    "This message contains non-ASCII characters. Please remove those and resubmit the message."
)
TOO_LONG = (
    "This message exceeds the permitted length of 160 characters. Please reduce the "
    "length of the message to within allowed limits and resubmit."
)
PRIVATE_155 = "This group is private and only group owner can request this information."
FROM_150 = "from parameter should be 0 or positive integer"
RANGE_131 = "range parameter should be between 1 and 30."


def typ(name: str, kind: str = "integer") -> str:
    return f'The parameter "{name}" is invalid. The parameter should be of type "{kind}".'


def within(name: str, bound: str) -> str:
    return (
        f'The parameter "{name}" is invalid. The parameter should be within a value of "{bound}".'
    )


def required(name: str) -> str:
    return f'The parameter "{name}" is required. Please resend request.'


def private_112(method: str) -> str:
    return (
        f'You are trying to access a private group. The method "{method}" is only supported '
        "for public groups."
    )


@dataclass
class Case:
    method: str
    params: dict[str, str]
    code: int
    msg: str
    setup: Setup | None = None
    more: list[tuple[int, str]] = field(default_factory=list)


async def five_posts(api: Api, params: dict[str, str]) -> None:
    for n in range(5):
        resp = await api.call(
            "groups.postMessage",
            "json",
            token=params["token"],
            groupName="jumpy",
            text=f"burst {n}",
        )
        assert resp.tree["status"] == "success"


async def five_tickets(api: Api, params: dict[str, str]) -> None:
    for group in ("jumpy", "demo-bot", "cricket", "spicy", "jumpy"):
        resp = await api.call(
            "groups.subscribeGroupToken", "json", phone=params["phone"], group=group
        )
        assert resp.tree["status"] == "success"


async def open_ticket(api: Api, params: dict[str, str]) -> None:
    resp = await api.call(
        "groups.subscribeGroupToken", "json", phone=params["phone"], group=params["group"]
    )
    params["token"] = resp.tree["token"]


async def five_wrong_codes(api: Api, params: dict[str, str]) -> None:
    await open_ticket(api, params)
    for _ in range(5):
        resp = await api.call("groups.subscribeGroupToken", "json", **params)
        assert resp.code == 7


async def fresh_challenge(api: Api, params: dict[str, str]) -> None:
    resp = await api.call("users.getChallenge", "json")
    params["challenge"] = resp.tree["challenge"]
    password = params.pop("password", "")
    params["rand"] = api.emulator.login_rand(password, params["challenge"])


async def spent_challenge(api: Api, params: dict[str, str]) -> None:
    await fresh_challenge(api, params)
    spent = dict(params, rand="wrong")
    assert (await api.call("users.login", "json", **spent)).code == 121


def login(phone: str, password: str, **extra: str) -> dict[str, str]:
    return {"phone": phone, "countryCode": "91", "password": password, **extra}


CASES: dict[str, Case] = {
    # gupshup.getPublicStream
    "public-range-16": Case("gupshup.getPublicStream", {"range": "16"}, 1, RANGE_15),
    "public-range-0": Case("gupshup.getPublicStream", {"range": "0"}, 1, RANGE_15),
    "public-from-type": Case("gupshup.getPublicStream", {"from": "x"}, 110, typ("from")),
    "public-range-type": Case("gupshup.getPublicStream", {"range": "1.5"}, 110, typ("range")),
    "public-skipadult-type": Case(
        "gupshup.getPublicStream", {"skipAdult": "maybe"}, 110, typ("skipAdult", "boolean")
    ),
    "public-from-negative": Case(
        "gupshup.getPublicStream", {"from": "-1"}, 111, within("from", ">= 0")
    ),
    # groups.getMessage
    "message-missing": Case("groups.getMessage", {}, 109, required("group")),
    "message-unknown": Case("groups.getMessage", {"group": "nope"}, 2, GROUP_INVALID),
    "message-private": Case("groups.getMessage", {"group": "secret"}, 2, GROUP_INVALID),
    "message-disabled": Case("groups.getMessage", {"group": "closed"}, 2, GROUP_INVALID),
    # groups.getStream
    "stream-missing": Case("groups.getStream", {"group": " "}, 109, required("group")),
    "stream-unknown": Case("groups.getStream", {"group": "nope"}, 2, GROUP_INVALID),
    "stream-range": Case("groups.getStream", {"group": "jumpy", "range": "16"}, 3, RANGE_15),
    "stream-type": Case("groups.getStream", {"group": "jumpy", "from": "one"}, 110, typ("from")),
    "stream-from": Case(
        "groups.getStream", {"group": "jumpy", "from": "-5"}, 111, within("from", ">= 0")
    ),
    "stream-private": Case(
        "groups.getStream", {"group": "secret"}, 112, private_112("groups.getStream")
    ),
    # groups.getInfo
    "info-missing": Case("groups.getInfo", {}, 109, required("group")),
    "info-unknown": Case("groups.getInfo", {"group": "nope"}, 2, GROUP_INVALID),
    "info-private": Case(
        "groups.getInfo", {"groupName": "Secret"}, 112, private_112("groups.getInfo")
    ),
    # groups.subscribeGroupToken, phase I
    "sub1-missing-phone": Case(
        "groups.subscribeGroupToken", {"group": "jumpy"}, 109, required("phone")
    ),
    "sub1-group": Case(
        "groups.subscribeGroupToken", {"phone": "9812345678", "group": "nope"}, 1, GROUP_INVALID
    ),
    "sub1-phone": Case(
        "groups.subscribeGroupToken",
        {"phone": "12345", "group": "jumpy"},
        2,
        "The specified phone number is invalid.",
    ),
    "sub1-blocked": Case(
        "groups.subscribeGroupToken",
        {"phone": BLOCKED_PHONE, "group": "cricket"},
        3,
        "Due to privacy policy of the parties involved the current action is deemed invalid.",
    ),
    "sub1-five": Case(
        "groups.subscribeGroupToken",
        {"phone": "9812345678", "group": "demo-bot"},
        5,
        "The specified phone number has 5 unconfirmed actions. All actions to "
        "9812345678 have now been disabled pending further confirmation.",
        five_tickets,
    ),
    "sub1-member": Case(
        "groups.subscribeGroupToken",
        {"phone": DEMO_PHONE, "group": "cricket"},
        8,
        'The user "9999900000" has already subscribed to group "cricket".',
    ),
    "sub1-private": Case(
        "groups.subscribeGroupToken",
        {"phone": "9812345678", "group": "secret"},
        10,
        "Subscription action is only supported for public groups.",
    ),
    # groups.subscribeGroupToken, phase II
    "sub2-missing-confirm": Case(
        "groups.subscribeGroupToken",
        {"phone": "9812345678", "group": "jumpy", "token": "ab"},
        109,
        required("confirm"),
    ),
    "sub2-token": Case(
        "groups.subscribeGroupToken",
        {"phone": "9812345678", "group": "jumpy", "token": "0" * 32, "confirm": "ABCD"},
        6,
        TOKEN_INVALID,
    ),
    "sub2-code": Case(
        "groups.subscribeGroupToken",
        {"phone": "9812345678", "group": "jumpy", "confirm": "!!!!"},
        7,
        "The confirmation string specified is invalid.",
        open_ticket,
    ),
    "sub2-dead": Case(
        "groups.subscribeGroupToken",
        {"phone": "9812345678", "group": "jumpy", "confirm": "!!!!"},
        9,
        "There have been more that 5 attempts. This action has now been disabled.",
        five_wrong_codes,
    ),
    # users.login
    "login-phone-missing": Case(
        "users.login",
        {"countryCode": "91", "challenge": "c", "rand": "r"},
        109,
        'You have not provided the parameter "phone number", which is a '
        "required parameter. Please resend request with the parameter "
        "in place.",
    ),
    "login-country-missing": Case(
        "users.login",
        {"phone": DEMO_PHONE, "challenge": "c", "rand": "r"},
        109,
        'You have not provided the parameter "country code", which is '
        "a required parameter. Please resend request with the "
        "parameter in place.",
    ),
    "login-challenge-missing": Case(
        "users.login",
        {"phone": DEMO_PHONE, "countryCode": "91", "rand": "r"},
        109,
        required("challenge"),
    ),
    "login-phone": Case(
        "users.login",
        login("99999", "gupshup-demo"),
        2,
        'You have provided an invalid value for the parameter "phone". Please '
        "resend request with the correct value of the parameter.",
        fresh_challenge,
    ),
    "login-country": Case(
        "users.login",
        login(DEMO_PHONE, "gupshup-demo", countryCode="1"),
        120,
        'You have provided an invalid value for the parameter "country '
        'code". Please resend request with the correct value of the '
        "parameter.",
        fresh_challenge,
    ),
    "login-password": Case(
        "users.login",
        login(DEMO_PHONE, "wrong"),
        121,
        "Authentication unsuccessful. This is possibly because of an incorrect password.",
        fresh_challenge,
    ),
    "login-unknown-phone": Case(
        "users.login",
        login("9123456789", "x"),
        121,
        "Authentication unsuccessful. This is possibly because of an incorrect password.",
        fresh_challenge,
    ),
    "login-spent": Case(
        "users.login",
        login(DEMO_PHONE, "gupshup-demo"),
        121,
        "Authentication unsuccessful. This is possibly because of an incorrect password.",
        spent_challenge,
    ),
    "login-newbie": Case(
        "users.login",
        login(NEWBIE_PHONE, "x"),
        122,
        "The mobile phone number provided has not been activated yet. Please "
        "visit http://www.smsgupshup.com to activate the mobile phone.",
        fresh_challenge,
    ),
    "login-banned": Case(
        "users.login",
        login(BANNED_PHONE, "x"),
        123,
        "The mobile phone number provided has been disabled. Please email "
        "'support@smsgupshup.com' to reactivate the mobile phone.",
        fresh_challenge,
    ),
    # groups.postMessage
    "post-missing": Case(
        "groups.postMessage", {"token": "@demo", "groupName": "jumpy"}, 109, required("text")
    ),
    "post-token": Case(
        "groups.postMessage",
        {"token": "bogus", "groupName": "jumpy", "text": "hi"},
        6,
        TOKEN_INVALID,
    ),
    "post-unknown-group": Case(
        "groups.postMessage", {"token": "@demo", "groupName": "nope", "text": "hi"}, 1, BAD_GROUP
    ),
    "post-not-owner": Case(
        "groups.postMessage", {"token": "@demo", "groupName": "cricket", "text": "hi"}, 1, BAD_GROUP
    ),
    "post-disabled": Case(
        "groups.postMessage",
        {"token": "@alice", "groupName": "closed", "text": "hi"},
        124,
        "This SMS GupShup group has been disabled. Please email "
        "'support@smsgupshup.com' to re-enable the group.",
    ),
    "post-ascii": Case(
        "groups.postMessage",
        {"token": "@demo", "groupName": "jumpy", "text": "caf\u00e9"},
        125,
        NON_ASCII,
    ),
    "post-long": Case(
        "groups.postMessage",
        {"token": "@demo", "groupName": "jumpy", "text": "x" * 161},
        126,
        TOO_LONG,
    ),
    "post-throttle": Case(
        "groups.postMessage",
        {"token": "@demo", "groupName": "jumpy", "text": "one more"},
        127,
        "You have hit a throttle limit. Please see other accompanying messages for details.",
        five_posts,
        [(127, "You have exceeded the posting limit of 5 messages per 60 seconds.")],
    ),
    "post-duplicate": Case(
        "groups.postMessage",
        {"token": "@demo", "groupName": "jumpy", "text": "jumpy message 120"},
        128,
        "The last message you submitted is a duplicate of your earlier "
        "message. You cannot send duplicate messages.",
    ),
    # users.getMyGroups
    "mine-token": Case(
        "users.getMyGroups", {"token": "bogus"}, 6, "The token string specified is not valid."
    ),
    "mine-missing": Case("users.getMyGroups", {}, 109, required("token")),
    "mine-type": Case("users.getMyGroups", {"token": "@demo", "range": "ten"}, 110, typ("range")),
    "mine-range": Case(
        "users.getMyGroups", {"token": "@demo", "range": "31"}, 111, within("range", "1-30")
    ),
    "mine-from": Case(
        "users.getMyGroups", {"token": "@demo", "from": "-1"}, 111, within("from", ">= 0")
    ),
    # users.logout
    "logout-missing": Case("users.logout", {}, 109, required("token")),
    # users.getJoinedGroups
    "joined-token": Case("users.getJoinedGroups", {"token": "bogus"}, 1, TOKEN_INVALID),
    "joined-range": Case(
        "users.getJoinedGroups", {"token": "@demo", "range": "31"}, 131, RANGE_131
    ),
    "joined-range-type": Case(
        "users.getJoinedGroups", {"token": "@demo", "range": "x"}, 131, RANGE_131
    ),
    "joined-from": Case("users.getJoinedGroups", {"token": "@demo", "from": "-1"}, 150, FROM_150),
    # users.getJoinedGroupsStream
    "jstream-token": Case("users.getJoinedGroupsStream", {"token": "bogus"}, 1, TOKEN_INVALID),
    "jstream-range": Case(
        "users.getJoinedGroupsStream", {"token": "@demo", "range": "0"}, 131, RANGE_131
    ),
    "jstream-from": Case(
        "users.getJoinedGroupsStream", {"token": "@demo", "from": "x"}, 150, FROM_150
    ),
    # groups.postReply
    "reply-token": Case(
        "groups.postReply", {"token": "bogus", "text": "@cricket hi"}, 6, TOKEN_INVALID
    ),
    "reply-no-mention": Case(
        "groups.postReply", {"token": "@demo", "text": "hi"}, 1, BAD_GROUP_NAME
    ),
    "reply-not-owner": Case(
        "groups.postReply",
        {"token": "@demo", "groupName": "cricket", "text": "@jumpy hi"},
        1,
        BAD_GROUP_NAME,
    ),
    "reply-empty": Case(
        "groups.postReply",
        {"token": "@demo", "text": "@cricket  "},
        156,
        "The reply message can not be empty.",
    ),
    "reply-ascii": Case(
        "groups.postReply", {"token": "@demo", "text": "@cricket \u00fcber"}, 125, NON_ASCII
    ),
    "reply-long": Case(
        "groups.postReply", {"token": "@demo", "text": "@cricket " + "y" * 160}, 126, TOO_LONG
    ),
    "reply-dest-unknown": Case(
        "groups.postReply", {"token": "@demo", "text": "@nope hi"}, 1, BAD_GROUP_NAME
    ),
    "reply-dest-disabled": Case(
        "groups.postReply",
        {"token": "@demo", "text": "@closed hi"},
        124,
        "This SMS GupShup group has been disabled. Please email "
        "'support@smsgupshup.com' to reenable the group.",
    ),
    "reply-dest-private": Case(
        "groups.postReply", {"token": "@demo", "text": "@secret hi"}, 155, PRIVATE_155
    ),
    "reply-all-fail": Case(
        "groups.postReply",
        {"token": "@demo", "text": "@nope @secret hi"},
        1,
        BAD_GROUP_NAME,
        more=[(155, PRIVATE_155)],
    ),
    "reply-partial": Case(
        "groups.postReply",
        {"token": "@demo", "text": "@cricket @closed hi"},
        157,
        "Its a partial success. The reply was not delivered to group "
        '"closed": This SMS GupShup group has been disabled. Please email '
        "'support@smsgupshup.com' to reenable the group.",
    ),
    # groups.getReplies
    "replies-unknown": Case("groups.getReplies", {"groupName": "nope"}, 1, BAD_GROUP_NAME),
    "replies-token": Case(
        "groups.getReplies", {"groupName": "jumpy", "token": "bogus"}, 153, TOKEN_INVALID
    ),
    "replies-getall-no-token": Case(
        "groups.getReplies", {"groupName": "jumpy", "getAll": "true"}, 109, required("token")
    ),
    "replies-not-owner": Case(
        "groups.getReplies",
        {"groupName": "jumpy", "getAll": "true", "token": "@alice"},
        154,
        "Only group owner can request this information.",
    ),
    "replies-private": Case("groups.getReplies", {"groupName": "secret"}, 155, PRIVATE_155),
    "replies-range": Case(
        "groups.getReplies", {"groupName": "jumpy", "range": "31"}, 131, RANGE_131
    ),
    "replies-from": Case("groups.getReplies", {"groupName": "jumpy", "from": "-1"}, 150, FROM_150),
    # groups.inviteFriends
    "invite-token": Case(
        "groups.inviteFriends", {"token": "bogus", "phoneNumbers": "9812345678"}, 6, TOKEN_INVALID
    ),
    "invite-missing": Case(
        "groups.inviteFriends", {"token": "@demo"}, 109, required("phoneNumbers")
    ),
    "invite-not-owner": Case(
        "groups.inviteFriends",
        {"token": "@demo", "groupName": "cricket", "phoneNumbers": "9812345678"},
        1,
        BAD_GROUP,
    ),
    "invite-single": Case(
        "groups.inviteFriends",
        {"token": "@demo", "phoneNumbers": "12345"},
        163,
        "Invite cannot be sent to your friends.",
    ),
    "invite-none": Case(
        "groups.inviteFriends",
        {"token": "@demo", "phoneNumbers": "12345,5812345678"},
        161,
        "One or more phone numbers are not valid.",
    ),
    "invite-partial": Case(
        "groups.inviteFriends",
        {"token": "@demo", "phoneNumbers": "9812345678,1"},
        162,
        "Invites have been sent to some of your friends. Some phone numbers could not be invited.",
    ),
}

PHONES = {"@demo": DEMO_PHONE, "@alice": ALICE_PHONE}


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("case_id", list(CASES))
async def test_error(api: Api, case_id: str, fmt: str) -> None:
    case = CASES[case_id]
    params = {
        k: (api.emulator.issue_token(PHONES[v]) if v in PHONES else v)
        for k, v in case.params.items()
    }
    if case.setup is not None:
        await case.setup(api, params)
    resp = await api.call(case.method, fmt, **params)
    assert resp.status == 200
    assert resp.errors == [(case.code, case.msg), *case.more]
    if fmt == "json":
        raw = resp.raw["response"]
        assert all(isinstance(leaf, str) for leaf in leaves(raw))
        several = len(resp.errors) > 1
        assert isinstance(raw["error"], list) is several
        assert ("status" in raw) is (case.code in (157, 162))
    else:
        assert resp.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_every_method_has_error_cases() -> None:
    from agupshup.emulator.methods import METHODS

    covered = {case.method.lower() for case in CASES.values()}
    assert covered | {"users.getchallenge"} == set(METHODS)
