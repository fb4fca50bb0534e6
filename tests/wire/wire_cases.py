"""Hand-written response bodies for the golden tests, and what they must decode to.

Everything here is literal text written from protocol.md (§2 envelope, §4 records, §5 methods) and
the API reference's error texts; nothing is produced by agupshup. The only composition is
:func:`json_body` / :func:`xml_body`, which wrap a literal inner fragment in the ``response``
envelope, and the f-strings that splice literal record fragments into literal collections.

The expected exception class of every (method, code) pair is this file's own reading of protocol.md
§5 and the tree in ``agupshup/errors.py``; it is deliberately not read from ``wire.METHODS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agupshup import errors as E
from agupshup import wire
from agupshup.models import (
    Challenge,
    ErrorDetail,
    FailedInvite,
    Group,
    InviteResult,
    Message,
    Reply,
    ReplyResult,
    ThrottleTag,
)

JSON_CT = "application/json; charset=UTF-8"
XML_CT = "text/xml; charset=UTF-8"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def json_body(inner: str) -> bytes:
    """``{"response": {<inner>}}``."""
    return ('{"response": {' + inner + "}}").encode()


def xml_body(inner: str) -> bytes:
    """The XML declaration and ``<response><inner></response>``."""
    return (XML_DECL + "<response>" + inner + "</response>").encode()


def body(fmt: str, inner: str) -> bytes:
    return json_body(inner) if fmt == "json" else xml_body(inner)


# -- the 16 calls: literal method names and a request for each -----------------------------------

METHOD_NAMES: dict[str, str] = {
    "get_public_stream": "gupshup.getPublicStream",
    "get_message": "groups.getMessage",
    "get_stream": "groups.getStream",
    "get_info": "groups.getInfo",
    "subscribe": "groups.subscribeGroupToken",
    "confirm_subscription": "groups.subscribeGroupToken",
    "get_challenge": "users.getChallenge",
    "login": "users.login",
    "post_message": "groups.postMessage",
    "get_my_groups": "users.getMyGroups",
    "logout": "users.logout",
    "get_joined_groups": "users.getJoinedGroups",
    "get_joined_groups_stream": "users.getJoinedGroupsStream",
    "post_reply": "groups.postReply",
    "get_replies": "groups.getReplies",
    "invite_friends": "groups.inviteFriends",
}

CHALLENGE = Challenge(salt="k3J9xQ", challenge="8f2c41a7e0")

REQUESTS: dict[str, Callable[[], wire.Request[Any]]] = {
    "get_public_stream": lambda: wire.get_public_stream(0, 10, skip_adult=False),
    "get_message": lambda: wire.get_message("jumpy"),
    "get_stream": lambda: wire.get_stream("jumpy", 0, 10),
    "get_info": lambda: wire.get_info("jumpy"),
    "subscribe": lambda: wire.subscribe("9819535746", "jumpy"),
    "confirm_subscription": lambda: wire.confirm_subscription(
        "9819535746", "jumpy", "85aa39fbcf69e44ff603a2e2391f1b22", "UY9Z"
    ),
    "get_challenge": wire.get_challenge,
    "login": lambda: wire.login("9821107770", "s3cret", CHALLENGE),
    "post_message": lambda: wire.post_message("APICreated", "Test Post"),
    "get_my_groups": lambda: wire.get_my_groups(0, 15),
    "logout": wire.logout,
    "get_joined_groups": lambda: wire.get_joined_groups(0, 2),
    "get_joined_groups_stream": lambda: wire.get_joined_groups_stream(0, 1),
    "post_reply": lambda: wire.post_reply("@grouptwo this is a sample post using api", "groupone"),
    "get_replies": lambda: wire.get_replies("sriharigrp1"),
    "invite_friends": lambda: wire.invite_friends("9876543210,9123456780", "group1"),
}

# -- records (protocol.md §4), in both spellings ---------------------------------------------------

M1_JSON = (
    '{"id": "1289000004521", "groupName": "jumpy", "text": "Practice moved to 7am tomorrow at '
    'Shivaji Park. Bring your own bats & pads!", "sender": "Rahul K", '
    '"timestamp": "1289000004000", "adult": "false"}'
)
M1_XML = (
    "<message><id>1289000004521</id><groupName>jumpy</groupName><text>Practice moved to 7am "
    "tomorrow at Shivaji Park. Bring your own bats &amp; pads!</text><sender>Rahul K</sender>"
    "<timestamp>1289000004000</timestamp><adult>false</adult></message>"
)
M1 = Message(
    id=1289000004521,
    group_name="jumpy",
    text="Practice moved to 7am tomorrow at Shivaji Park. Bring your own bats & pads!",
    sender="Rahul K",
    timestamp=1289000004000,
    adult=False,
)

M2_JSON = (
    '{"id": "1289000004399", "groupName": "cricketfans", "text": "Score: India 287/4 after 45 '
    'overs. He said \\"see you at the ground\\" <3", "sender": "Anil", '
    '"timestamp": "1288999990000", "adult": "false"}'
)
M2_XML = (
    "<message><id>1289000004399</id><groupName>cricketfans</groupName><text>Score: India 287/4 "
    'after 45 overs. He said "see you at the ground" &lt;3</text><sender>Anil</sender>'
    "<timestamp>1288999990000</timestamp><adult>false</adult></message>"
)
M2 = Message(
    id=1289000004399,
    group_name="cricketfans",
    text='Score: India 287/4 after 45 overs. He said "see you at the ground" <3',
    sender="Anil",
    timestamp=1288999990000,
    adult=False,
)

M3_JSON = (
    '{"id": "1288999000001", "groupName": "latenight", "text": "Midnight jokes thread is open, '
    'the usual rules apply: keep it short and keep it funny.", "sender": "Vikram", '
    '"timestamp": "1288990000000", "adult": "true"}'
)
M3_XML = (
    "<message><id>1288999000001</id><groupName>latenight</groupName><text>Midnight jokes thread "
    "is open, the usual rules apply: keep it short and keep it funny.</text><sender>Vikram"
    "</sender><timestamp>1288990000000</timestamp><adult>true</adult></message>"
)
M3 = Message(
    id=1288999000001,
    group_name="latenight",
    text="Midnight jokes thread is open, the usual rules apply: keep it short and keep it funny.",
    sender="Vikram",
    timestamp=1288990000000,
    adult=True,
)

G1_JSON = (
    '{"groupName": "jumpy", "description": "Jump rope club of Pune: meets, tips and events", '
    '"owner": "Priya S", "numPosts": "1342", "numMembers": "587", "private": "false", '
    '"adult": "false", "createdOn": "1230768000000"}'
)
G1_XML = (
    "<group><groupName>jumpy</groupName><description>Jump rope club of Pune: meets, tips and "
    "events</description><owner>Priya S</owner><numPosts>1342</numPosts><numMembers>587"
    "</numMembers><private>false</private><adult>false</adult><createdOn>1230768000000"
    "</createdOn></group>"
)
G1 = Group(
    group_name="jumpy",
    description="Jump rope club of Pune: meets, tips and events",
    owner="Priya S",
    num_posts=1342,
    num_members=587,
    private=False,
    adult=False,
    created_on=1230768000000,
)

G2_JSON = (
    '{"groupName": "APICreated", "description": "Created through the API for testing", '
    '"owner": "Rahul K", "numPosts": "12", "numMembers": "3", "private": "true", '
    '"adult": "false", "createdOn": "1288000000000"}'
)
G2_XML = (
    "<group><groupName>APICreated</groupName><description>Created through the API for testing"
    "</description><owner>Rahul K</owner><numPosts>12</numPosts><numMembers>3</numMembers>"
    "<private>true</private><adult>false</adult><createdOn>1288000000000</createdOn></group>"
)
G2 = Group(
    group_name="APICreated",
    description="Created through the API for testing",
    owner="Rahul K",
    num_posts=12,
    num_members=3,
    private=True,
    adult=False,
    created_on=1288000000000,
)

G3_JSON = (
    '{"groupName": "cricketfans", "description": "Live scores & chatter", "owner": "Anil", '
    '"numPosts": "90210", "numMembers": "15230", "private": "false", "adult": "true", '
    '"createdOn": "1199145600000"}'
)
G3_XML = (
    "<group><groupName>cricketfans</groupName><description>Live scores &amp; chatter"
    "</description><owner>Anil</owner><numPosts>90210</numPosts><numMembers>15230</numMembers>"
    "<private>false</private><adult>true</adult><createdOn>1199145600000</createdOn></group>"
)
G3 = Group(
    group_name="cricketfans",
    description="Live scores & chatter",
    owner="Anil",
    num_posts=90210,
    num_members=15230,
    private=False,
    adult=True,
    created_on=1199145600000,
)

R1_JSON = (
    '{"id": "7700012", "groupName": "grouptwo", "fromGroup": "groupone", '
    '"text": "@grouptwo this is a sample post using api", "sender": "Srihari", '
    '"timestamp": "1289000100000", "hidden": "false"}'
)
R1_XML = (
    "<reply><id>7700012</id><groupName>grouptwo</groupName><fromGroup>groupone</fromGroup>"
    "<text>@grouptwo this is a sample post using api</text><sender>Srihari</sender>"
    "<timestamp>1289000100000</timestamp><hidden>false</hidden></reply>"
)
R1 = Reply(
    id=7700012,
    group_name="grouptwo",
    from_group="groupone",
    text="@grouptwo this is a sample post using api",
    sender="Srihari",
    timestamp=1289000100000,
    hidden=False,
)

R2_JSON = (
    '{"id": "7700009", "groupName": "sriharigrp1", "fromGroup": "jumpy", '
    '"text": "@sriharigrp1 congrats on 500 members, see you at the meetup on Saturday", '
    '"sender": "Priya S", "timestamp": "1288999900000", "hidden": "true"}'
)
R2_XML = (
    "<reply><id>7700009</id><groupName>sriharigrp1</groupName><fromGroup>jumpy</fromGroup>"
    "<text>@sriharigrp1 congrats on 500 members, see you at the meetup on Saturday</text>"
    "<sender>Priya S</sender><timestamp>1288999900000</timestamp><hidden>true</hidden></reply>"
)
R2 = Reply(
    id=7700009,
    group_name="sriharigrp1",
    from_group="jumpy",
    text="@sriharigrp1 congrats on 500 members, see you at the meetup on Saturday",
    sender="Priya S",
    timestamp=1288999900000,
    hidden=True,
)

R3_JSON = (
    '{"id": "7700003", "groupName": "sriharigrp1", "fromGroup": "cricketfans", '
    '"text": "@sriharigrp1 match screening at 7, all welcome", "sender": "Anil", '
    '"timestamp": "1288999000000", "hidden": "false"}'
)
R3_XML = (
    "<reply><id>7700003</id><groupName>sriharigrp1</groupName><fromGroup>cricketfans"
    "</fromGroup><text>@sriharigrp1 match screening at 7, all welcome</text><sender>Anil"
    "</sender><timestamp>1288999000000</timestamp><hidden>false</hidden></reply>"
)
R3 = Reply(
    id=7700003,
    group_name="sriharigrp1",
    from_group="cricketfans",
    text="@sriharigrp1 match screening at 7, all welcome",
    sender="Anil",
    timestamp=1288999000000,
    hidden=False,
)

# -- throttle tags (protocol.md §3) ----------------------------------------------------------------

T_MINUTE_JSON = '{"period": "minute", "count": "26", "warn": "25", "limit": "30"}'
T_MINUTE_XML = (
    "<throttle><period>minute</period><count>26</count><warn>25</warn><limit>30</limit>"
    "</throttle>"
)
T_MINUTE = ThrottleTag(period="minute", count=26, warn=25, limit=30)

T_HOUR_JSON = '{"period": "hour", "count": "995", "warn": "990", "limit": "1000"}'
T_HOUR_XML = (
    "<throttle><period>hour</period><count>995</count><warn>990</warn><limit>1000</limit>"
    "</throttle>"
)
T_HOUR = ThrottleTag(period="hour", count=995, warn=990, limit=1000)

T_DAY_JSON = '{"period": "day", "count": "9991", "warn": "9990", "limit": "10000"}'
T_DAY_XML = (
    "<throttle><period>day</period><count>9991</count><warn>9990</warn><limit>10000</limit>"
    "</throttle>"
)
T_DAY = ThrottleTag(period="day", count=9991, warn=9990, limit=10000)

#: Throttle fragments to append to a success or error body: (json, xml, expected tags).
THROTTLES: dict[str, tuple[str, str, tuple[ThrottleTag, ...]]] = {
    "one": (f', "throttle": {T_MINUTE_JSON}', T_MINUTE_XML, (T_MINUTE,)),
    "two": (f', "throttle": [{T_MINUTE_JSON}, {T_HOUR_JSON}]', T_MINUTE_XML + T_HOUR_XML,
            (T_MINUTE, T_HOUR)),
    "three": (
        f', "throttle": [{T_MINUTE_JSON}, {T_HOUR_JSON}, {T_DAY_JSON}]',
        T_MINUTE_XML + T_HOUR_XML + T_DAY_XML,
        (T_MINUTE, T_HOUR, T_DAY),
    ),
}

# -- success bodies: method → (json inner, xml inner, expected result) ---------------------------

S = '"status": "success", '
SX = "<status>success</status>"

SUCCESS: dict[str, tuple[str, str, Any]] = {
    "get_public_stream": (
        S + f'"messages": [{M1_JSON}, {M2_JSON}, {M3_JSON}]',
        SX + f"<messages>{M1_XML}{M2_XML}{M3_XML}</messages>",
        [M1, M2, M3],
    ),
    "get_message": (S + f'"message": {M1_JSON}', SX + M1_XML, M1),
    "get_stream": (
        S + f'"messages": [{M1_JSON}, {M2_JSON}]',
        SX + f"<messages>{M1_XML}{M2_XML}</messages>",
        [M1, M2],
    ),
    "get_info": (S + f'"group": {G1_JSON}', SX + G1_XML, G1),
    "subscribe": (
        S + '"token": "85aa39fbcf69e44ff603a2e2391f1b22"',
        SX + "<token>85aa39fbcf69e44ff603a2e2391f1b22</token>",
        "85aa39fbcf69e44ff603a2e2391f1b22",
    ),
    "confirm_subscription": (
        S + '"msg": "9819535746 has been subscribed to the group jumpy."',
        SX + "<msg>9819535746 has been subscribed to the group jumpy.</msg>",
        "9819535746 has been subscribed to the group jumpy.",
    ),
    "get_challenge": (
        S + '"salt": "k3J9xQ", "challenge": "8f2c41a7e0"',
        SX + "<salt>k3J9xQ</salt><challenge>8f2c41a7e0</challenge>",
        Challenge(salt="k3J9xQ", challenge="8f2c41a7e0"),
    ),
    "login": (
        S + '"token": "IIQiU1107028137"',
        SX + "<token>IIQiU1107028137</token>",
        "IIQiU1107028137",
    ),
    "post_message": (S + '"id": "1289000005000"', SX + "<id>1289000005000</id>", 1289000005000),
    # a collection with a single child
    "get_my_groups": (S + f'"groups": [{G2_JSON}]', SX + f"<groups>{G2_XML}</groups>", [G2]),
    "logout": ('"status": "success"', SX, None),
    "get_joined_groups": (
        S + f'"groups": [{G1_JSON}, {G3_JSON}]',
        SX + f"<groups>{G1_XML}{G3_XML}</groups>",
        [G1, G3],
    ),
    "get_joined_groups_stream": (
        S + f'"messages": [{M2_JSON}]',
        SX + f"<messages>{M2_XML}</messages>",
        [M2],
    ),
    "post_reply": (
        S + f'"replies": [{R1_JSON}]',
        SX + f"<replies>{R1_XML}</replies>",
        ReplyResult(status="success", replies=(R1,), failed=()),
    ),
    "get_replies": (
        S + f'"replies": [{R2_JSON}, {R3_JSON}]',
        SX + f"<replies>{R2_XML}{R3_XML}</replies>",
        [R2, R3],
    ),
    "invite_friends": (
        S + '"invited": ["919876543210", "919123456780"], "failed": []',
        SX + "<invited><phone>919876543210</phone><phone>919123456780</phone></invited><failed/>",
        InviteResult(status="success", invited=("919876543210", "919123456780"), failed=()),
    ),
}

#: Successes with nothing in them: empty collections, an absent message.
EMPTY: dict[str, tuple[str, str, Any]] = {
    "get_public_stream": (S + '"messages": []', SX + "<messages/>", []),
    "get_message": ('"status": "success"', SX, None),
    "get_stream": (S + '"messages": []', SX + "<messages></messages>", []),
    "get_my_groups": (S + '"groups": []', SX + "<groups/>", []),
    "get_joined_groups": (S + '"groups": []', SX + "<groups>\n  </groups>", []),
    "get_joined_groups_stream": (S + '"messages": []', SX + "<messages/>", []),
    "get_replies": (S + '"replies": []', SX + "<replies/>", []),
    "post_reply": (
        S + '"replies": []',
        SX + "<replies/>",
        ReplyResult(status="success", replies=(), failed=()),
    ),
    "invite_friends": (
        S + '"invited": [], "failed": []',
        SX + "<invited/><failed/>",
        InviteResult(status="success", invited=(), failed=()),
    ),
}

# -- partial successes (157, 162) ----------------------------------------------------------------

MSG_157_GROUPTHREE = (
    'Its a partial success. The reply was not delivered to group "groupthree": This group is '
    "private and only group owner can request this information."
)
MSG_157_NOSUCH = (
    'Its a partial success. The reply was not delivered to group "nosuchgroup": You have '
    "provided an invalid value for group name parameter."
)
MSG_162 = (
    "Invites have been sent to some of your friends. Some phone numbers could not be invited."
)
MSG_161 = "One or more phone numbers are not valid."
MSG_163 = "Invite cannot be sent to your friends."

#: name → (method, json inner, xml inner, expected result)
PARTIAL: dict[str, tuple[str, str, str, Any]] = {
    "postReply one failed": (
        "post_reply",
        f'"status": "partial", "replies": [{R1_JSON}], '
        '"error": {"code": "157", "msg": "Its a partial success. The reply was not delivered '
        'to group \\"groupthree\\": This group is private and only group owner can request this '
        'information."}',
        f"<status>partial</status><replies>{R1_XML}</replies>"
        "<error><code>157</code><msg>Its a partial success. The reply was not delivered to group "
        '"groupthree": This group is private and only group owner can request this information.'
        "</msg></error>",
        ReplyResult(
            status="partial",
            replies=(R1,),
            failed=(ErrorDetail(code=157, msg=MSG_157_GROUPTHREE),),
        ),
    ),
    "postReply two failed": (
        "post_reply",
        '"status": "partial", "replies": [' + R1_JSON + '], "error": ['
        '{"code": "157", "msg": "Its a partial success. The reply was not delivered to group '
        '\\"groupthree\\": This group is private and only group owner can request this '
        'information."}, '
        '{"code": "157", "msg": "Its a partial success. The reply was not delivered to group '
        '\\"nosuchgroup\\": You have provided an invalid value for group name parameter."}]',
        "<status>partial</status><replies>" + R1_XML + "</replies>"
        "<error><code>157</code><msg>Its a partial success. The reply was not delivered to group "
        '"groupthree": This group is private and only group owner can request this information.'
        "</msg></error>"
        "<error><code>157</code><msg>Its a partial success. The reply was not delivered to group "
        '"nosuchgroup": You have provided an invalid value for group name parameter.</msg>'
        "</error>",
        ReplyResult(
            status="partial",
            replies=(R1,),
            failed=(
                ErrorDetail(code=157, msg=MSG_157_GROUPTHREE),
                ErrorDetail(code=157, msg=MSG_157_NOSUCH),
            ),
        ),
    ),
    "inviteFriends one failed": (
        "invite_friends",
        '"status": "partial", "invited": ["919876543210"], '
        '"failed": [{"phone": "12345", "code": "161", '
        '"msg": "One or more phone numbers are not valid."}], '
        '"error": {"code": "162", "msg": "Invites have been sent to some of your friends. '
        'Some phone numbers could not be invited."}',
        "<status>partial</status><invited><phone>919876543210</phone></invited>"
        "<failed><entry><phone>12345</phone><code>161</code>"
        "<msg>One or more phone numbers are not valid.</msg></entry></failed>"
        "<error><code>162</code><msg>Invites have been sent to some of your friends. "
        "Some phone numbers could not be invited.</msg></error>",
        InviteResult(
            status="partial",
            invited=("919876543210",),
            failed=(FailedInvite(phone="12345", code=161, msg=MSG_161),),
        ),
    ),
    "inviteFriends two failed": (
        "invite_friends",
        '"status": "partial", "invited": ["919876543210", "917012345678"], '
        '"failed": [{"phone": "5555555555", "code": "161", '
        '"msg": "One or more phone numbers are not valid."}, '
        '{"phone": "919988776655", "code": "163", "msg": "Invite cannot be sent to your '
        'friends."}], '
        '"error": {"code": "162", "msg": "Invites have been sent to some of your friends. '
        'Some phone numbers could not be invited."}',
        "<status>partial</status><invited><phone>919876543210</phone><phone>917012345678"
        "</phone></invited><failed><entry><phone>5555555555</phone><code>161</code>"
        "<msg>One or more phone numbers are not valid.</msg></entry><entry><phone>919988776655"
        "</phone><code>163</code><msg>Invite cannot be sent to your friends.</msg></entry>"
        "</failed><error><code>162</code><msg>Invites have been sent to some of your friends. "
        "Some phone numbers could not be invited.</msg></error>",
        InviteResult(
            status="partial",
            invited=("919876543210", "917012345678"),
            failed=(
                FailedInvite(phone="5555555555", code=161, msg=MSG_161),
                FailedInvite(phone="919988776655", code=163, msg=MSG_163),
            ),
        ),
    ),
}

# -- error codes: (method, code) → (expected class, msg) -----------------------------------------
# Texts are the reference's, with %0/%1/%s/%<ml> filled in.

MSG_102 = 'The specified response format "yaml" is not supported.'
MSG_107 = (
    'The specified version "2.0" is invalid. Please specify version as "1.0" or leave the '
    "field blank."
)
MSG_108 = 'The specified method "groups.getStreams" is not valid GupShup api.'
MSG_109 = 'The parameter "group" is required. Please resend request.'
MSG_113 = (
    'The API call has not been executed since you have exceeded the throttle minute limit of '
    '"30".'
)
MSG_129 = (
    "There was an internal error and your last action could not be performed. Please resubmit "
    "your last action after some time."
)
MSG_110 = 'The parameter "range" is invalid. The parameter should be of type "integer".'
MSG_111 = 'The parameter "from" is invalid. The parameter should be within a value of "0+".'
MSG_RANGE15 = (
    "The specified range is invalid. Range can be a positive integer with maximum value of 15."
)
MSG_BAD_GROUP = "The specified group name is invalid."
MSG_TOKEN = "The token string specified is invalid."
MSG_131 = "range parameter should be between 1 and 30."
MSG_150 = "from parameter should be 0 or positive integer"
MSG_155 = "This group is private and only group owner can request this information."
MSG_125 = (
    "This message contains non-ASCII characters. Please remove those and resubmit the message."
)
MSG_126 = (
    "This message exceeds the permitted length of 160 characters. Please reduce the length of "
    "the message to within allowed limits and resubmit."
)
MSG_GROUP_NAME_PARAM = (
    "You have provided an invalid value for group name parameter. Please resend request with "
    "the correct value of the parameter."
)

#: The codes every method documents (protocol.md §1/§5 "beyond 102/107/108/109/113").
_COMMON: dict[int, tuple[type[E.APIError], str]] = {
    102: (E.InvalidRequest, MSG_102),
    107: (E.InvalidRequest, MSG_107),
    108: (E.InvalidRequest, MSG_108),
    109: (E.InvalidRequest, MSG_109),
    113: (E.ThrottleLimitExceeded, MSG_113),
}
_SERVER_ERROR = {129: (E.ServerError, MSG_129)}

ERROR_CODES: dict[str, dict[int, tuple[type[E.APIError], str]]] = {
    "get_public_stream": {
        1: (E.InvalidRequest, MSG_RANGE15),
        110: (E.InvalidRequest, MSG_110),
        111: (E.InvalidRequest, MSG_111),
    },
    "get_message": {2: (E.GroupNotFound, MSG_BAD_GROUP)},
    "get_stream": {
        2: (E.GroupNotFound, MSG_BAD_GROUP),
        3: (E.InvalidRequest, MSG_RANGE15),
        110: (E.InvalidRequest, MSG_110),
        111: (E.InvalidRequest, MSG_111),
        112: (
            E.PrivateGroup,
            'You are trying to access a private group. The method "groups.getStream" is only '
            "supported for public groups.",
        ),
    },
    "get_info": {
        2: (E.GroupNotFound, MSG_BAD_GROUP),
        112: (
            E.PrivateGroup,
            'You are trying to access a private group. The method "groups.getInfo" is only '
            "supported for public groups.",
        ),
    },
    "subscribe": {
        1: (E.GroupNotFound, MSG_BAD_GROUP),
        2: (E.InvalidPhone, "The specified phone number is invalid."),
        3: (
            E.PermissionDenied,
            "Due to privacy policy of the parties involved the current action is deemed invalid.",
        ),
        5: (
            E.TooManyAttempts,
            "The specified phone number has 5 unconfirmed actions. All actions to 9819535746 "
            "have now been disabled pending further confirmation.",
        ),
        8: (
            E.AlreadySubscribed,
            'The user "9819535746" has already subscribed to group "jumpy".',
        ),
        10: (E.PrivateGroup, "Subscription action is only supported for public groups."),
    },
    "confirm_subscription": {
        # The phase I token is the method's token; errors.py: InvalidToken is "the method's
        # token-invalid code", and SubscriptionError lists only 5, 7, 8, 9.
        6: (E.InvalidToken, MSG_TOKEN),
        7: (E.InvalidConfirmation, "The confirmation string specified is invalid."),
        9: (
            E.TooManyAttempts,
            "There have been more that 5 attempts. This action has now been disabled.",
        ),
    },
    "get_challenge": {**_SERVER_ERROR},
    "login": {
        2: (
            E.InvalidPhone,
            'You have provided an invalid value for the parameter "phone". Please resend request '
            "with the correct value of the parameter.",
        ),
        120: (
            E.InvalidCountryCode,
            'You have provided an invalid value for the parameter "country code". Please resend '
            "request with the correct value of the parameter.",
        ),
        121: (
            E.WrongPassword,
            "Authentication unsuccessful. This is possibly because of an incorrect password.",
        ),
        122: (
            E.NotActivated,
            "The mobile phone number provided has not been activated yet. Please visit "
            "http://www.smsgupshup.com to activate the mobile phone.",
        ),
        123: (
            E.AccountDisabled,
            "The mobile phone number provided has been disabled. Please email "
            "'support@smsgupshup.com' to reactivate the mobile phone.",
        ),
        **_SERVER_ERROR,
    },
    "post_message": {
        6: (E.InvalidToken, MSG_TOKEN),
        1: (
            E.PermissionDenied,
            'You have provided an invalid value for the parameter "group". Please resend request '
            "with the correct value of the parameter.",
        ),
        124: (
            E.GroupDisabled,
            "This SMS GupShup group has been disabled. Please email 'support@smsgupshup.com' to "
            "re-enable the group.",
        ),
        125: (E.MessageRejected, MSG_125),
        126: (E.MessageRejected, MSG_126),
        127: (
            E.PosterThrottled,
            "You have hit a throttle limit. Please see other accompanying messages for details.",
        ),
        128: (
            E.DuplicateMessage,
            "The last message you submitted is a duplicate of your earlier message. You cannot "
            "send duplicate messages.",
        ),
        **_SERVER_ERROR,
    },
    "get_my_groups": {
        6: (E.InvalidToken, "The token string specified is not valid."),
        110: (E.InvalidRequest, MSG_110),
        111: (E.InvalidRequest, MSG_111),
        **_SERVER_ERROR,
    },
    "logout": {**_SERVER_ERROR},
    "get_joined_groups": {
        1: (E.InvalidToken, MSG_TOKEN),
        131: (E.InvalidRequest, MSG_131),
        150: (E.InvalidRequest, MSG_150),
    },
    "get_joined_groups_stream": {
        1: (E.InvalidToken, MSG_TOKEN),
        131: (E.InvalidRequest, MSG_131),
        150: (E.InvalidRequest, MSG_150),
    },
    "post_reply": {
        6: (E.InvalidToken, MSG_TOKEN),
        # 1 has three meanings here (source group not owned, no @group, unknown destination);
        # the reference's text is about an invalid group name, so: GroupNotFound.
        1: (E.GroupNotFound, MSG_GROUP_NAME_PARAM),
        156: (E.MessageRejected, "The reply message can not be empty."),
        125: (E.MessageRejected, MSG_125),
        126: (E.MessageRejected, MSG_126),
        124: (
            E.GroupDisabled,
            "This SMS GupShup group has been disabled. Please email 'support@smsgupshup.com' to "
            "reenable the group.",
        ),
        155: (E.PrivateGroup, MSG_155),
    },
    "get_replies": {
        1: (E.GroupNotFound, MSG_GROUP_NAME_PARAM),
        153: (E.InvalidToken, MSG_TOKEN),
        154: (E.PermissionDenied, "Only group owner can request this information."),
        155: (E.PrivateGroup, MSG_155),
        131: (E.InvalidRequest, MSG_131),
        150: (E.InvalidRequest, MSG_150),
    },
    "invite_friends": {
        6: (E.InvalidToken, MSG_TOKEN),
        1: (
            E.PermissionDenied,
            "You have provided an invalid value for group name parameter. Please resend request "
            "with the correct value of the parameter.",
        ),
        163: (E.InviteFailed, MSG_163),
        161: (E.InviteFailed, MSG_161),
    },
}
for _codes in ERROR_CODES.values():
    for _code, _expected in _COMMON.items():
        _codes.setdefault(_code, _expected)

#: The throttle tags a 113 carries (a tag for each exceeded period; nothing was counted).
T_MINUTE_FULL_JSON = '{"period": "minute", "count": "30", "warn": "25", "limit": "30"}'
T_MINUTE_FULL_XML = (
    "<throttle><period>minute</period><count>30</count><warn>25</warn><limit>30</limit>"
    "</throttle>"
)
T_MINUTE_FULL = ThrottleTag(period="minute", count=30, warn=25, limit=30)


def error_inner(fmt: str, code: int, msg: str) -> str:
    """One ``error`` tag (plus the throttle tag a 113 carries)."""
    if fmt == "json":
        escaped = msg.replace('"', '\\"')
        inner = f'"error": {{"code": "{code}", "msg": "{escaped}"}}'
        return inner + (f', "throttle": {T_MINUTE_FULL_JSON}' if code == 113 else "")
    inner = f"<error><code>{code}</code><msg>{msg}</msg></error>"
    return inner + (T_MINUTE_FULL_XML if code == 113 else "")


def error_throttle(code: int) -> tuple[ThrottleTag, ...]:
    return (T_MINUTE_FULL,) if code == 113 else ()


def all_bodies() -> list[tuple[str, str, bytes]]:
    """(method, format, body) for every well-formed body above: seeds for the fuzzers."""
    out: list[tuple[str, str, bytes]] = []
    for fmt in ("json", "xml"):
        i = 0 if fmt == "json" else 1
        for key, case in SUCCESS.items():
            out.append((key, fmt, body(fmt, case[i])))
            out.append((key, fmt, body(fmt, case[i] + THROTTLES["two"][i])))
        for key, case in EMPTY.items():
            out.append((key, fmt, body(fmt, case[i])))
        for key, json_inner, xml_inner, _ in PARTIAL.values():
            out.append((key, fmt, body(fmt, json_inner if fmt == "json" else xml_inner)))
        for key, codes in ERROR_CODES.items():
            for code, (_, msg) in codes.items():
                out.append((key, fmt, body(fmt, error_inner(fmt, code, msg))))
    return out
