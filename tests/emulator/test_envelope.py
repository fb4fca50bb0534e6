"""The envelope's two spellings (protocol.md §2), without HTTP."""

from __future__ import annotations

import json

from agupshup.emulator.envelope import Items, Many, Node, envelope, render


def test_success_json_and_xml() -> None:
    tree = envelope(status="success", payload={"salt": "k3J9xQ", "challenge": "8f2c41a7e0"})
    assert json.loads(render(tree, "json")) == {
        "response": {"status": "success", "salt": "k3J9xQ", "challenge": "8f2c41a7e0"}
    }
    assert render(tree, "xml") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response><status>success</status>'
        b"<salt>k3J9xQ</salt><challenge>8f2c41a7e0</challenge></response>"
    )


def test_one_error_is_an_object_several_an_array() -> None:
    one = envelope(errors=[(109, 'The parameter "group" is required. Please resend request.')])
    assert json.loads(render(one, "json")) == {
        "response": {
            "error": {
                "code": "109",
                "msg": 'The parameter "group" is required. Please resend request.',
            }
        }
    }
    assert render(one, "xml").endswith(
        b'<response><error><code>109</code><msg>The parameter "group" is required. Please '
        b"resend request.</msg></error></response>"
    )
    two = envelope(errors=[(127, "a"), (127, "b")])
    assert json.loads(render(two, "json"))["response"]["error"] == [
        {"code": "127", "msg": "a"},
        {"code": "127", "msg": "b"},
    ]
    assert b"<error><code>127</code><msg>a</msg></error><error><code>127</code>" in render(
        two, "xml"
    )


def test_collections_are_arrays_even_when_empty_or_single() -> None:
    tree = envelope(
        status="success",
        payload={
            "messages": Items("message", []),
            "invited": Items("phone", ["919812345678"]),
        },
    )
    assert json.loads(render(tree, "json"))["response"] == {
        "status": "success",
        "messages": [],
        "invited": ["919812345678"],
    }
    xml = render(tree, "xml")
    assert b"<messages/>" in xml
    assert b"<invited><phone>919812345678</phone></invited>" in xml


def test_throttle_tags_follow_errors() -> None:
    tag: dict[str, Node] = {"period": "minute", "count": "26", "warn": "25", "limit": "30"}
    tree = envelope(status="success", payload={"id": "1"}, throttle=[tag])
    assert json.loads(render(tree, "json"))["response"]["throttle"] == tag
    assert render(tree, "xml").endswith(
        b"<id>1</id><throttle><period>minute</period><count>26</count><warn>25</warn>"
        b"<limit>30</limit></throttle></response>"
    )
    assert isinstance(Many([tag]), Many)


def test_xml_escapes_text_and_drops_what_xml_cannot_carry() -> None:
    tree = envelope(errors=[(102, 'The specified response format "<a&b>\x01" is not supported.')])
    xml = render(tree, "xml")
    assert b"&lt;a&amp;b&gt;" in xml
    assert b"\x01" not in xml
    assert json.loads(render(tree, "json"))["response"]["error"]["msg"].count("\x01") == 1
