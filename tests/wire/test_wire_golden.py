"""Golden tests: every call × format × outcome, decoded from hand-written bodies (protocol.md).

Bodies and expectations live in ``wire_cases.py`` (literal text); the aliases and odd shapes
protocol.md says to accept are written out in full below.
"""

from __future__ import annotations

from typing import Any

import pytest
import wire_cases as C

from agupshup import errors as E
from agupshup import wire
from agupshup.models import (
    Challenge,
    ErrorDetail,
    FailedInvite,
    Group,
    InviteResult,
    Message,
    ReplyResult,
    ThrottleTag,
)

FORMATS = ("json", "xml")
#: Each body is decoded with its real content type, and with none (the first byte decides).
CONTENT_TYPES = {"json": (C.JSON_CT, None), "xml": (C.XML_CT, None)}


def _decode(key: str, body: bytes, content_type: str | None) -> wire.Response[Any]:
    request = C.REQUESTS[key]()
    assert request.spec.name == C.METHOD_NAMES[key]
    return wire.decode(request, body, content_type)


def _inner(case: tuple[str, str, Any], fmt: str) -> str:
    return case[0] if fmt == "json" else case[1]


def _api_error(
    key: str, body: bytes, content_type: str | None, cls: type[E.APIError]
) -> E.APIError:
    with pytest.raises(E.APIError) as info:
        _decode(key, body, content_type)
    exc = info.value
    assert type(exc) is cls, f"{C.METHOD_NAMES[key]}: got {type(exc).__name__}"
    assert exc.method == C.METHOD_NAMES[key]
    return exc


# -- the method table itself ---------------------------------------------------------------------


def test_every_call_has_a_case() -> None:
    assert set(wire.METHODS) == set(C.METHOD_NAMES) == set(C.SUCCESS) == set(C.ERROR_CODES)
    for key, spec in wire.METHODS.items():
        assert spec.name == C.METHOD_NAMES[key]


@pytest.mark.parametrize("key", sorted(C.METHOD_NAMES))
def test_default_formats(key: str) -> None:
    # protocol.md §5: the public reads and subscription default to XML, the user calls to JSON.
    xml_default = {"get_public_stream", "get_message", "get_stream", "get_info", "subscribe",
                   "confirm_subscription"}
    expected = "xml" if key in xml_default else "json"
    assert wire.METHODS[key].default_format == expected


# -- success -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ct", [0, 1], ids=["content-type", "sniffed"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", sorted(C.SUCCESS))
def test_success(key: str, fmt: str, ct: int) -> None:
    case = C.SUCCESS[key]
    response = _decode(key, C.body(fmt, _inner(case, fmt)), CONTENT_TYPES[fmt][ct])
    assert response.result == case[2]
    assert response.throttle == ()
    assert response.status == "success"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", sorted(C.EMPTY))
def test_success_empty(key: str, fmt: str) -> None:
    case = C.EMPTY[key]
    response = _decode(key, C.body(fmt, _inner(case, fmt)), CONTENT_TYPES[fmt][0])
    assert response.result == case[2]
    assert response.status == "success"


@pytest.mark.parametrize("shape", sorted(C.THROTTLES))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", sorted(C.SUCCESS))
def test_success_with_throttle_tags(key: str, fmt: str, shape: str) -> None:
    case = C.SUCCESS[key]
    extra = C.THROTTLES[shape]
    body = C.body(fmt, _inner(case, fmt) + (extra[0] if fmt == "json" else extra[1]))
    response = _decode(key, body, CONTENT_TYPES[fmt][0])
    assert response.result == case[2]
    assert response.throttle == extra[2]
    assert response.status == "success"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(C.PARTIAL))
def test_partial(name: str, fmt: str) -> None:
    key, json_inner, xml_inner, expected = C.PARTIAL[name]
    body = C.body(fmt, json_inner if fmt == "json" else xml_inner)
    response = _decode(key, body, CONTENT_TYPES[fmt][0])
    assert response.result == expected
    assert response.result.partial
    assert response.status == "partial"
    assert response.throttle == ()


@pytest.mark.parametrize("fmt", FORMATS)
def test_partial_with_throttle(fmt: str) -> None:
    key, json_inner, xml_inner, expected = C.PARTIAL["inviteFriends one failed"]
    inner = json_inner + C.THROTTLES["one"][0] if fmt == "json" else xml_inner + C.T_MINUTE_XML
    response = _decode(key, C.body(fmt, inner), CONTENT_TYPES[fmt][0])
    assert response.result == expected
    assert response.throttle == (C.T_MINUTE,)


# -- errors --------------------------------------------------------------------------------------

ERROR_CASES = [
    (key, code) for key, codes in sorted(C.ERROR_CODES.items()) for code in sorted(codes)
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("key", "code"), ERROR_CASES)
def test_error_code(key: str, code: int, fmt: str) -> None:
    cls, msg = C.ERROR_CODES[key][code]
    body = C.body(fmt, C.error_inner(fmt, code, msg))
    exc = _api_error(key, body, CONTENT_TYPES[fmt][0], cls)
    assert exc.code == code
    assert exc.msg == msg
    assert exc.errors == (ErrorDetail(code=code, msg=msg),)
    assert exc.throttle == C.error_throttle(code)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", sorted(C.METHOD_NAMES))
def test_error_with_throttle_tags(key: str, fmt: str) -> None:
    # An error response carries the warn tags like a success does (protocol.md §3).
    code = 109
    json_extra, xml_extra, tags = C.THROTTLES["two"]
    inner = C.error_inner(fmt, code, C.MSG_109) + (json_extra if fmt == "json" else xml_extra)
    exc = _api_error(key, C.body(fmt, inner), CONTENT_TYPES[fmt][1], E.InvalidRequest)
    assert exc.code == 109
    assert exc.throttle == tags


def test_api_errors_are_typed_and_pickle() -> None:
    import pickle

    cls, msg = C.ERROR_CODES["post_message"][127]
    body = C.body("json", C.error_inner("json", 127, msg) + C.THROTTLES["one"][0])
    exc = _api_error("post_message", body, C.JSON_CT, cls)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is E.PosterThrottled
    assert (again.method, again.code, again.msg, again.errors, again.throttle) == (
        exc.method, exc.code, exc.msg, exc.errors, exc.throttle
    )


# -- aliases and lenient shapes (protocol.md §2) ---------------------------------------------------

MSG_127 = "You have hit a throttle limit. Please see other accompanying messages for details."
MSG_127_DETAIL = "You have exceeded the posting limit of 5 messages per 60 seconds."
MSG_1_REPLY = C.MSG_GROUP_NAME_PARAM

#: name → (method, content type, body, expected result)
LENIENT: dict[str, tuple[str, str | None, bytes, Any]] = {
    "json numbers and booleans in messages": (
        "get_stream",
        C.JSON_CT,
        b'{"response": {"status": "success", "messages": [{"id": 1289000004521, '
        b'"groupName": "jumpy", "text": "Practice moved to 7am tomorrow at Shivaji Park. Bring '
        b'your own bats & pads!", "sender": "Rahul K", "timestamp": 1289000004000, '
        b'"adult": false}, {"id": 1288999000001, "groupName": "latenight", "text": "Midnight '
        b'jokes thread is open, the usual rules apply: keep it short and keep it funny.", '
        b'"sender": "Vikram", "timestamp": 1288990000000, "adult": true}]}}',
        [C.M1, C.M3],
    ),
    "json numbers and booleans in a group": (
        "get_info",
        C.JSON_CT,
        b'{"response": {"status": "success", "group": {"groupName": "jumpy", "description": '
        b'"Jump rope club of Pune: meets, tips and events", "owner": "Priya S", "numPosts": 1342, '
        b'"numMembers": 587, "private": false, "adult": false, "createdOn": 1230768000000}}}',
        C.G1,
    ),
    "json number for a string leaf (token)": (
        "login",
        C.JSON_CT,
        b'{"response": {"status": "success", "token": 1107028137}}',
        "1107028137",
    ),
    "json number for a string leaf (challenge)": (
        "get_challenge",
        C.JSON_CT,
        b'{"response": {"status": "success", "salt": "k3J9xQ", "challenge": 8123456789}}',
        Challenge(salt="k3J9xQ", challenge="8123456789"),
    ),
    "json number for a string leaf (group name, sender)": (
        "get_joined_groups_stream",
        C.JSON_CT,
        b'{"response": {"status": "success", "messages": [{"id": "5", "groupName": 2010, '
        b'"text": "New year plans?", "sender": 42, "timestamp": "1262304000000", '
        b'"adult": "false"}]}}',
        [Message(id=5, group_name="2010", text="New year plans?", sender="42",
                 timestamp=1262304000000, adult=False)],
    ),
    "json numeric post id": (
        "post_message",
        C.JSON_CT,
        b'{"response": {"status": "success", "id": 1289000005000}}',
        1289000005000,
    ),
    "json numeric invited phones and failed code": (
        "invite_friends",
        C.JSON_CT,
        b'{"response": {"status": "partial", "invited": [919876543210], "failed": [{"phone": '
        b'5555555555, "code": 161, "msg": "One or more phone numbers are not valid."}], '
        b'"error": {"code": 162, "msg": "Invites have been sent to some of your friends. Some '
        b'phone numbers could not be invited."}}}',
        InviteResult(
            status="partial",
            invited=("919876543210",),
            failed=(FailedInvite(phone="5555555555", code=161, msg=C.MSG_161),),
        ),
    ),
    "json numeric throttle tag": (
        "logout",
        C.JSON_CT,
        b'{"response": {"status": "success", "throttle": {"period": "minute", "count": 26, '
        b'"warn": 25, "limit": 30}}}',
        None,
    ),
    "xml single message in a collection": (
        "get_stream",
        C.XML_CT,
        (C.XML_DECL + "<response><status>success</status><messages>" + C.M3_XML
         + "</messages></response>").encode(),
        [C.M3],
    ),
    "xml single phone and entry": (
        "invite_friends",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status>'
        b"<invited><phone>919876543210</phone></invited><failed/></response>",
        InviteResult(status="success", invited=("919876543210",), failed=()),
    ),
    "xml empty collection spelled open-close with whitespace": (
        "get_public_stream",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status>'
        b"<messages>\n  \n</messages></response>",
        [],
    ),
    "xml newline before the declaration": (
        "get_info",
        C.XML_CT,
        ("\n" + C.XML_DECL + "<response><status>success</status>" + C.G1_XML
         + "</response>\n").encode(),
        C.G1,
    ),
    "xml spaces, tabs and CRLF before the declaration": (
        "login",
        C.XML_CT,
        b' \t\r\n<?xml version="1.0" encoding="UTF-8"?><response><status>success</status>'
        b"<token>IIQiU1107028137</token></response>\r\n",
        "IIQiU1107028137",
    ),
    "xml whitespace, sniffed": (
        "subscribe",
        None,
        b'\n\n<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status>'
        b"<token>85aa39fbcf69e44ff603a2e2391f1b22</token></response>",
        "85aa39fbcf69e44ff603a2e2391f1b22",
    ),
    "xml without a declaration": (
        "get_challenge",
        C.XML_CT,
        b"<response><status>success</status><salt>k3J9xQ</salt><challenge>8f2c41a7e0"
        b"</challenge></response>",
        Challenge(salt="k3J9xQ", challenge="8f2c41a7e0"),
    ),
    "xml pretty-printed": (
        "get_joined_groups_stream",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<response>\n"
        b"  <status>success</status>\n"
        b"  <messages>\n"
        b"    <message>\n"
        b"      <id>5</id>\n"
        b"      <groupName>jumpy</groupName>\n"
        b"      <text>See you at 6</text>\n"
        b"      <sender>Priya S</sender>\n"
        b"      <timestamp>1262304000000</timestamp>\n"
        b"      <adult>false</adult>\n"
        b"    </message>\n"
        b"  </messages>\n"
        b"</response>\n",
        [Message(id=5, group_name="jumpy", text="See you at 6", sender="Priya S",
                 timestamp=1262304000000, adult=False)],
    ),
    "xml CDATA and character references": (
        "get_message",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status><message>'
        b"<id>77</id><groupName>jumpy</groupName><text><![CDATA[Bats & pads <required>]]> "
        b"&#8212; &quot;ok&quot;</text><sender>Rahul K</sender><timestamp>1289000004000"
        b"</timestamp><adult>false</adult></message></response>",
        Message(id=77, group_name="jumpy", text='Bats & pads <required> \u2014 "ok"',
                sender="Rahul K", timestamp=1289000004000, adult=False),
    ),
    "json unicode escape and raw UTF-8": (
        "get_message",
        C.JSON_CT,
        b'{"response": {"status": "success", "message": {"id": "78", "groupName": "jumpy", '
        b'"text": "Chai at 5 \\u2014 usual spot, caf\xc3\xa9 next door", "sender": "Rahul K", '
        b'"timestamp": "1289000004000", "adult": "false"}}}',
        Message(id=78, group_name="jumpy", text="Chai at 5 \u2014 usual spot, caf\u00e9 next door",
                sender="Rahul K", timestamp=1289000004000, adult=False),
    ),
    "json leading and trailing whitespace": (
        "logout",
        C.JSON_CT,
        b'\r\n  {"response": {"status": "success"}}\n\n',
        None,
    ),
    "json unknown elements ignored": (
        "get_stream",
        C.JSON_CT,
        b'{"response": {"serverTime": "1289000005123", "status": "success", '
        b'"meta": {"build": [1, 2.5, {"x": null}], "beta": true}, "messages": [{"id": '
        b'"1289000004399", "groupName": "cricketfans", "text": "Score: India 287/4 after 45 '
        b'overs. He said \\"see you at the ground\\" <3", "sender": "Anil", "mood": "happy", '
        b'"likes": 3, "tags": ["cricket"], "timestamp": "1288999990000", "adult": "false"}], '
        b'"nextFrom": 1}}',
        [C.M2],
    ),
    "xml unknown elements ignored": (
        "get_stream",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><serverTime>1289000005123'
        b"</serverTime><status>success</status><meta><build>1</build><build>2</build></meta>"
        b"<messages><total>2</total><message><id>1289000004399</id><groupName>cricketfans"
        b"</groupName><mood>happy</mood><text>Score: India 287/4 after 45 overs. He said "
        b'"see you at the ground" &lt;3</text><tags><tag>a</tag><tag>b</tag></tags><sender>Anil'
        b"</sender><timestamp>1288999990000</timestamp><adult>false</adult></message>"
        b"</messages><nextFrom>1</nextFrom></response>",
        [C.M2],
    ),
    "xml attributes ignored": (
        "get_info",
        C.XML_CT,
        ('<?xml version="1.0" encoding="UTF-8"?>\n<response version="1.0"><status code="0">'
         "success</status>" + C.G1_XML.replace("<group>", '<group kind="public">')
         + "</response>").encode(),
        C.G1,
    ),
    "xml comments ignored": (
        "get_my_groups",
        C.XML_CT,
        ('<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated 2010-11-05 -->\n<response>'
         "<status>success</status><!-- 1 group --><groups>" + C.G2_XML
         + "</groups></response>").encode(),
        [C.G2],
    ),
    "xml in ISO-8859-1": (
        "confirm_subscription",
        C.XML_CT,
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<response><status>success</status>'
        b"<msg>Bienvenue \xe0 jumpy</msg></response>",
        "Bienvenue \u00e0 jumpy",
    ),
}


@pytest.mark.parametrize("name", sorted(LENIENT))
def test_lenient_shapes(name: str) -> None:
    key, content_type, body, expected = LENIENT[name]
    response = _decode(key, body, content_type)
    assert response.result == expected


def test_numeric_throttle_tag_values() -> None:
    key, content_type, body, _ = LENIENT["json numeric throttle tag"]
    assert _decode(key, body, content_type).throttle == (C.T_MINUTE,)


#: name → (method, content type, body, class, code, msg, errors, throttle)
LENIENT_ERRORS: dict[str, tuple[str, str | None, bytes, type[E.APIError], int, str,
                                tuple[ErrorDetail, ...], tuple[ThrottleTag, ...]]] = {
    "json errorCode/errorString": (
        "get_stream",
        C.JSON_CT,
        b'{"response": {"error": {"errorCode": "2", "errorString": "The specified group name '
        b'is invalid."}}}',
        E.GroupNotFound, 2, C.MSG_BAD_GROUP, (ErrorDetail(code=2, msg=C.MSG_BAD_GROUP),), (),
    ),
    "xml errorCode/errorString": (
        "get_info",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><error><errorCode>112</errorCode>'
        b'<errorString>You are trying to access a private group. The method "groups.getInfo" '
        b"is only supported for public groups.</errorString></error></response>",
        E.PrivateGroup, 112, C.ERROR_CODES["get_info"][112][1],
        (ErrorDetail(code=112, msg=C.ERROR_CODES["get_info"][112][1]),), (),
    ),
    "json numeric code": (
        "post_message",
        C.JSON_CT,
        b'{"response": {"error": {"code": 6, "msg": "The token string specified is invalid."}}}',
        E.InvalidToken, 6, C.MSG_TOKEN, (ErrorDetail(code=6, msg=C.MSG_TOKEN),), (),
    ),
    "json error as a one-element array": (
        "login",
        C.JSON_CT,
        b'{"response": {"error": [{"code": "121", "msg": "Authentication unsuccessful. This is '
        b'possibly because of an incorrect password."}]}}',
        E.WrongPassword, 121, C.ERROR_CODES["login"][121][1],
        (ErrorDetail(code=121, msg=C.ERROR_CODES["login"][121][1]),), (),
    ),
    "json 127 with its second error": (
        "post_message",
        C.JSON_CT,
        b'{"response": {"error": [{"code": "127", "msg": "You have hit a throttle limit. Please '
        b'see other accompanying messages for details."}, {"code": "127", "msg": "You have '
        b'exceeded the posting limit of 5 messages per 60 seconds."}]}}',
        E.PosterThrottled, 127, MSG_127,
        (ErrorDetail(code=127, msg=MSG_127), ErrorDetail(code=127, msg=MSG_127_DETAIL)), (),
    ),
    "xml 127 with its second error and a throttle tag": (
        "post_message",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><error><code>127</code><msg>You '
        b"have hit a throttle limit. Please see other accompanying messages for details.</msg>"
        b"</error><error><code>127</code><msg>You have exceeded the posting limit of 5 messages "
        b"per 60 seconds.</msg></error><throttle><period>minute</period><count>26</count>"
        b"<warn>25</warn><limit>30</limit></throttle></response>",
        E.PosterThrottled, 127, MSG_127,
        (ErrorDetail(code=127, msg=MSG_127), ErrorDetail(code=127, msg=MSG_127_DETAIL)),
        (C.T_MINUTE,),
    ),
    "json postReply: every destination failed": (
        "post_reply",
        C.JSON_CT,
        b'{"response": {"error": [{"code": "1", "msg": "You have provided an invalid value for '
        b'group name parameter. Please resend request with the correct value of the '
        b'parameter."}, {"code": "155", "msg": "This group is private and only group owner can '
        b'request this information."}]}}',
        E.GroupNotFound, 1, MSG_1_REPLY,
        (ErrorDetail(code=1, msg=MSG_1_REPLY), ErrorDetail(code=155, msg=C.MSG_155)), (),
    ),
    "xml postReply: every destination failed": (
        "post_reply",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><error><code>155</code><msg>This '
        b"group is private and only group owner can request this information.</msg></error>"
        b"<error><code>124</code><msg>This SMS GupShup group has been disabled. Please email "
        b"'support@smsgupshup.com' to reenable the group.</msg></error><error><code>1</code>"
        b"<msg>You have provided an invalid value for group name parameter. Please resend "
        b"request with the correct value of the parameter.</msg></error></response>",
        E.PrivateGroup, 155, C.MSG_155,
        (
            ErrorDetail(code=155, msg=C.MSG_155),
            ErrorDetail(code=124, msg=C.ERROR_CODES["post_reply"][124][1]),
            ErrorDetail(code=1, msg=MSG_1_REPLY),
        ),
        (),
    ),
    "json 113 with every exceeded period": (
        "get_stream",
        C.JSON_CT,
        b'{"response": {"error": {"code": "113", "msg": "The API call has not been executed '
        b'since you have exceeded the throttle minute limit of \\"30\\"."}, "throttle": '
        b'[{"period": "minute", "count": "30", "warn": "25", "limit": "30"}, {"period": "hour", '
        b'"count": "1000", "warn": "990", "limit": "1000"}]}}',
        E.ThrottleLimitExceeded, 113, C.MSG_113, (ErrorDetail(code=113, msg=C.MSG_113),),
        (C.T_MINUTE_FULL, ThrottleTag(period="hour", count=1000, warn=990, limit=1000)),
    ),
    "xml 113 with every exceeded period": (
        "get_public_stream",
        None,
        b'\n<?xml version="1.0" encoding="UTF-8"?>\n<response><error><code>113</code><msg>The '
        b'API call has not been executed since you have exceeded the throttle minute limit of '
        b'"30".</msg></error><throttle><period>minute</period><count>30</count><warn>25</warn>'
        b"<limit>30</limit></throttle><throttle><period>day</period><count>10000</count>"
        b"<warn>9990</warn><limit>10000</limit></throttle></response>",
        E.ThrottleLimitExceeded, 113, C.MSG_113, (ErrorDetail(code=113, msg=C.MSG_113),),
        (C.T_MINUTE_FULL, ThrottleTag(period="day", count=10000, warn=9990, limit=10000)),
    ),
    "json error alongside a success status": (
        "get_info",
        C.JSON_CT,
        b'{"response": {"status": "success", "error": {"code": "2", "msg": "The specified '
        b'group name is invalid."}}}',
        E.GroupNotFound, 2, C.MSG_BAD_GROUP, (ErrorDetail(code=2, msg=C.MSG_BAD_GROUP),), (),
    ),
    "xml error with unknown siblings": (
        "get_joined_groups",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><requestId>a1b2</requestId><error>'
        b"<code>1</code><detail>expired</detail><msg>The token string specified is invalid."
        b"</msg></error></response>",
        E.InvalidToken, 1, C.MSG_TOKEN, (ErrorDetail(code=1, msg=C.MSG_TOKEN),), (),
    ),
    "unlisted code: the base class": (
        "get_message",
        C.JSON_CT,
        b'{"response": {"error": {"code": "999", "msg": "Something new."}}}',
        E.APIError, 999, "Something new.", (ErrorDetail(code=999, msg="Something new."),), (),
    ),
}


@pytest.mark.parametrize("name", sorted(LENIENT_ERRORS))
def test_lenient_errors(name: str) -> None:
    key, content_type, body, cls, code, msg, errors, throttle = LENIENT_ERRORS[name]
    exc = _api_error(key, body, content_type, cls)
    assert (exc.code, exc.msg, exc.errors, exc.throttle) == (code, msg, errors, throttle)


# -- models: derived values ---------------------------------------------------------------------


def test_times_are_utc() -> None:
    assert C.M1.time.isoformat() == "2010-11-05T23:33:24+00:00"
    assert C.G1.created.isoformat() == "2009-01-01T00:00:00+00:00"
    assert Group(group_name="x").created.year == 1970


def test_partial_flags() -> None:
    assert not ReplyResult(status="success").partial
    assert InviteResult(status="partial").partial

