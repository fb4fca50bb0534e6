"""Bodies that are not API responses: each is a DecodeError with a short excerpt, nothing else."""

from __future__ import annotations

import pytest
import wire_cases as C

from agupshup import errors as E
from agupshup import wire

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 "
    b"Bad Gateway</h1></center><hr><center>nginx/0.7.65</center></body></html>\n"
)
HTML_NO_DOCTYPE = (
    b"<html><head><title>Service Unavailable</title></head><body><p>The server is "
    b"temporarily unable to service your request.</p></body></html>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    b' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    b' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
    b' <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
    b"]>\n<response><status>&lol4;</status></response>"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<response><status>success</status><token>&xxe;</token></response>"
)
#: The entity declaration hides behind more than 4 KiB of prolog.
LATE_ENTITY = (
    b'<?xml version="1.0"?>\n<!--' + b" padding" * 700 + b' -->\n<!DOCTYPE response [<!ENTITY '
    b'x "y">]><response><status>&x;</status></response>'
)
DEEP_JSON = b'{"response": {"status": "success", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
DEEP_JSON_OBJECTS = b'{"response": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b"}"
DEEP_XML = (
    b"<response><status>success</status><messages><message>" + b"<x>" * 5_000 + b"y"
    + b"</x>" * 5_000 + b"</message></messages></response>"
)
DEEP_XML_TOP = b"<response><status>success</status>" + b"<x>" * 5_000 + b"</x>" * 5_000 + (
    b"</response>"
)
GOOD_JSON = b'{"response": {"status": "success", "messages": []}}'
GOOD_XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status></response>'

#: name → (method, content type, body)
MALFORMED: dict[str, tuple[str, str | None, bytes]] = {
    "truncated json": (
        "get_stream",
        C.JSON_CT,
        b'{"response": {"status": "success", "messages": [{"id": "1289000004521", "groupName": '
        b'"jumpy", "text": "Practice mo',
    ),
    "truncated json, sniffed": ("get_stream", None, b'{"response": {"status": "succ'),
    "truncated json after a complete object": (
        "get_my_groups", C.JSON_CT, b'{"response": {"status": "success", "groups": []}'
    ),
    "json with trailing garbage": ("logout", C.JSON_CT, GOOD_JSON + b"<!-- cache -->"),
    "truncated xml": (
        "get_stream",
        C.XML_CT,
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status><messages>'
        b"<message><id>12890",
    ),
    "truncated xml declaration": ("get_info", C.XML_CT, b'<?xml version="1.0" enc'),
    "xml with trailing garbage": ("get_info", C.XML_CT, GOOD_XML + b"<response/>"),
    "garbage bytes, json": ("login", C.JSON_CT, b"\x00\xff\xfe\x89PNG\r\n\x1a\n garbage"),
    "garbage bytes, xml": ("login", C.XML_CT, b"\x00\xff\xfe\x89PNG\r\n\x1a\n garbage"),
    "garbage bytes, sniffed": ("login", None, b"\x89PNG\r\n\x1a\n\x00\x00"),
    "plain text, json": ("get_challenge", C.JSON_CT, b"Service temporarily unavailable"),
    "plain text, sniffed": ("get_challenge", None, b"OK"),
    "empty body, json": ("logout", C.JSON_CT, b""),
    "empty body, xml": ("logout", C.XML_CT, b""),
    "empty body, sniffed": ("logout", None, b""),
    "whitespace body": ("logout", C.JSON_CT, b" \r\n\t "),
    "html page as text/html": ("get_stream", "text/html; charset=iso-8859-1", HTML_PAGE),
    "html page as text/xml": ("get_stream", C.XML_CT, HTML_PAGE),
    "html page, sniffed": ("get_stream", None, HTML_PAGE),
    "html without doctype as text/xml": ("get_stream", C.XML_CT, HTML_NO_DOCTYPE),
    "html without doctype, sniffed": ("get_stream", None, HTML_NO_DOCTYPE),
    "html page as json": ("post_message", C.JSON_CT, HTML_PAGE),
    "valid json as text/html": ("get_stream", "text/html", GOOD_JSON),
    "valid json as text/plain": ("get_stream", "text/plain; charset=UTF-8", GOOD_JSON),
    "valid xml as application/octet-stream": ("get_info", "application/octet-stream", GOOD_XML),
    "valid xml as json": ("get_info", C.JSON_CT, GOOD_XML),
    "valid json as xml": ("get_stream", C.XML_CT, GOOD_JSON),
    "wrong root, xml": (
        "get_info", C.XML_CT, b'<?xml version="1.0"?><result><status>success</status></result>'
    ),
    "wrong root, namespaced xml": (
        "get_info",
        C.XML_CT,
        b'<response xmlns="urn:x"><status>success</status></response>',
    ),
    "wrong root, json": ("get_info", C.JSON_CT, b'{"result": {"status": "success"}}'),
    "{}": ("get_stream", C.JSON_CT, b"{}"),
    "[]": ("get_stream", C.JSON_CT, b"[]"),
    "null": ("get_stream", C.JSON_CT, b"null"),
    "a json string": ("get_stream", C.JSON_CT, b'"response"'),
    "response is an array": ("get_stream", C.JSON_CT, b'{"response": []}'),
    "response is a string": ("get_stream", C.JSON_CT, b'{"response": "success"}'),
    "response is null": ("get_stream", C.JSON_CT, b'{"response": null}'),
    "response is empty, json": ("get_stream", C.JSON_CT, b'{"response": {}}'),
    "response is empty, xml": ("get_stream", C.XML_CT, b"<response/>"),
    "response has only unknown elements": (
        "logout", C.XML_CT, b"<response><serverTime>1</serverTime></response>"
    ),
    "error list is empty": ("get_stream", C.JSON_CT, b'{"response": {"error": []}}'),
    "error is a string, json": ("get_stream", C.JSON_CT, b'{"response": {"error": "boom"}}'),
    "error is text, xml": ("get_stream", C.XML_CT, b"<response><error>boom</error></response>"),
    "error code not a number": (
        "get_stream", C.JSON_CT, b'{"response": {"error": {"code": "two", "msg": "x"}}}'
    ),
    "billion laughs": ("get_stream", C.XML_CT, BILLION_LAUGHS),
    "billion laughs, sniffed": ("get_stream", None, BILLION_LAUGHS),
    "external entity": ("login", C.XML_CT, XXE),
    "doctype after whitespace": ("get_info", C.XML_CT, b"\n\n  " + BILLION_LAUGHS),
    "entity declaration after a long prolog": ("get_info", C.XML_CT, LATE_ENTITY),
    "unknown xml encoding": (
        "get_info",
        C.XML_CT,
        b'<?xml version="1.0" encoding="x-no-such-codec"?><response><status>success</status>'
        b"</response>",
    ),
    "multi-byte xml encoding": (
        "get_info",
        C.XML_CT,
        b'<?xml version="1.0" encoding="shift_jis"?><response><status>success</status>'
        b"</response>",
    ),
    "invalid utf-8 in json": (
        "get_message", C.JSON_CT, b'{"response": {"status": "succ\xff\xfe"}}'
    ),
    "invalid utf-8 in xml": (
        "get_message", C.XML_CT, b"<response><status>succ\xff</status></response>"
    ),
    "nesting too deep, json arrays": ("get_stream", C.JSON_CT, DEEP_JSON),
    "nesting too deep, json objects": ("get_stream", C.JSON_CT, DEEP_JSON_OBJECTS),
    "nesting too deep, xml record": ("get_stream", C.XML_CT, DEEP_XML),
    "nesting too deep, xml response": ("get_stream", C.XML_CT, DEEP_XML_TOP),
    "message without an id": (
        "get_stream",
        C.JSON_CT,
        b'{"response": {"status": "success", "messages": [{"groupName": "jumpy"}]}}',
    ),
    "message id not a number": (
        "get_stream",
        C.XML_CT,
        b"<response><status>success</status><messages><message><id>abc</id></message>"
        b"</messages></response>",
    ),
    "collection of strings": (
        "get_stream", C.JSON_CT, b'{"response": {"status": "success", "messages": ["a", "b"]}}'
    ),
    "boolean not a boolean": (
        "get_info",
        C.JSON_CT,
        b'{"response": {"status": "success", "group": {"groupName": "jumpy", "private": "maybe"}}}',
    ),
    "number too big": (
        "post_message",
        C.JSON_CT,
        b'{"response": {"status": "success", "id": ' + b"9" * 5000 + b"}}",
    ),
    "group success without a group": ("get_info", C.XML_CT, GOOD_XML),
    "login success without a token": ("login", C.JSON_CT, b'{"response": {"status": "success"}}'),
    "subscribe success without a token": ("subscribe", C.XML_CT, GOOD_XML),
    "challenge success without the challenge": (
        "get_challenge", C.JSON_CT, b'{"response": {"status": "success", "salt": "k3J9xQ"}}'
    ),
    "post success without an id": (
        "post_message", C.JSON_CT, b'{"response": {"status": "success"}}'
    ),
    "long garbage": ("get_stream", C.JSON_CT, b"x" * 20_000),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_body_is_a_decode_error(name: str) -> None:
    key, content_type, body = MALFORMED[name]
    method = C.METHOD_NAMES[key]
    with pytest.raises(E.GupshupError) as info:
        wire.decode(C.REQUESTS[key](), body, content_type)
    exc = info.value
    assert type(exc) is E.DecodeError, f"{type(exc).__name__}: {exc}"
    assert exc.method == method
    assert method in str(exc)
    # a short excerpt of the body, and nothing else; none at all where a token may be in it
    if key in ("login", "subscribe"):
        assert exc.excerpt.startswith("<redacted")
    else:
        assert exc.excerpt == body[:120].decode("utf-8", "replace")[:120]
    assert len(exc.excerpt) <= 120
    assert len(str(exc)) < 600
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


def test_decode_error_is_a_transport_error() -> None:
    # The call may have run: DecodeError says "no API answer could be read", not an API error.
    assert issubclass(E.DecodeError, E.TransportError)
    assert not issubclass(E.DecodeError, E.APIError)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "APPLICATION/JSON; charset=utf-8", "text/json", "text/javascript"],
)
def test_json_content_types(content_type: str) -> None:
    assert wire.decode(wire.get_stream("jumpy"), GOOD_JSON, content_type).result == []


@pytest.mark.parametrize(
    "content_type", ["text/xml", "application/xml", "Text/XML ; charset=UTF-8"]
)
def test_xml_content_types(content_type: str) -> None:
    assert wire.decode(wire.logout(), GOOD_XML, content_type).result is None


@pytest.mark.parametrize("spec", [wire.LOGIN, wire.METHODS["subscribe"]])
def test_a_broken_answer_that_may_hold_a_token_is_never_quoted(spec: wire.MethodSpec[str]) -> None:
    body = b'{"response": {"status": "success", "token": "IIQiU1107028137"'
    with pytest.raises(E.DecodeError) as info:
        wire.decode(spec, body, "application/json")
    assert "IIQiU" not in str(info.value)
    assert "IIQiU" not in info.value.excerpt
