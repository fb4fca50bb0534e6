"""XML in any encoding: valid answers decode alike, and a DTD is refused whatever the encoding.

The bomb is sized under expat's own amplification guard (about 90× its input, as in issue 13:
0.9 MB became 81 M characters), so only the codec's refusal stops it. Memory, not time, is
asserted: the refused document must never be expanded.
"""

from __future__ import annotations

import tracemalloc

import pytest

from agupshup import errors as E
from agupshup import wire

XML_CT = "text/xml; charset=UTF-8"

#: codec name → how to encode a document declared as ``label``.
ENCODINGS = {
    "utf-8": ("UTF-8", "utf-8"),
    "utf-16 (LE, BOM)": ("UTF-16", "utf-16-le", b"\xff\xfe"),
    "utf-16 (BE, BOM)": ("UTF-16", "utf-16-be", b"\xfe\xff"),
    "utf-16 (LE, no BOM)": ("UTF-16", "utf-16-le", b""),
    "utf-16 (BE, no BOM)": ("UTF-16", "utf-16-be", b""),
    "utf-32 (LE, BOM)": ("UTF-32", "utf-32-le", b"\xff\xfe\x00\x00"),
    "utf-32 (BE, BOM)": ("UTF-32", "utf-32-be", b"\x00\x00\xfe\xff"),
}


def encode(text: str, name: str) -> bytes:
    label, codec, *bom = ENCODINGS[name]
    declared = f'<?xml version="1.0" encoding="{label}"?>\n' + text
    return (bom[0] if bom else b"") + declared.encode(codec)


def bomb() -> str:
    """Entities that expand to 9 M characters from about 100 k of input."""
    decls = ['<!ENTITY e1 "' + "x" * 100 + '">']
    decls += [f'<!ENTITY e{i} "' + f"&e{i - 1};" * 10 + '">' for i in range(2, 6)]
    padding = "<!--" + " pad" * 25_000 + "-->"
    return (
        f"<!DOCTYPE response [{''.join(decls)}]>\n{padding}\n"
        "<response><status>success</status><msg>" + "&e5;" * 9 + "</msg></response>"
    )


PAGE = (
    "<response><status>success</status><messages><message><id>12</id><groupName>jumpy</groupName>"
    "<text>caf\u00e9 \u2014 \U0001f600</text><sender>Asha</sender><timestamp>1700000000000"
    "</timestamp><adult>false</adult></message></messages></response>"
)


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_a_valid_answer_decodes_alike_in_every_encoding(name: str) -> None:
    expected = wire.decode(wire.get_stream("jumpy"), encode(PAGE, "utf-8"), XML_CT).result
    got = wire.decode(wire.get_stream("jumpy"), encode(PAGE, name), XML_CT).result
    assert got == expected
    assert got[0].text == "caf\u00e9 \u2014 \U0001f600"


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_a_dtd_is_refused_in_every_encoding_without_expanding(name: str) -> None:
    body = encode(bomb(), name)
    tracemalloc.start()
    try:
        with pytest.raises(E.DecodeError, match="DTD"):
            wire.decode(wire.METHODS["confirm_subscription"], body, XML_CT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Expanded, the message alone would be 9 M characters; refused, only the body's copies.
    assert peak < 8 * len(body) + 1_000_000


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_an_entity_free_dtd_is_refused_too(name: str) -> None:
    body = encode("<!DOCTYPE response>\n<response><status>success</status></response>", name)
    with pytest.raises(E.DecodeError, match="DTD"):
        wire.decode(wire.get_message("jumpy"), body, XML_CT)


def test_a_dtd_behind_a_long_prolog_is_refused() -> None:
    text = "<!--" + " pad" * 5_000 + "-->\n<!DOCTYPE response>\n<response/>"
    with pytest.raises(E.DecodeError, match="DTD"):
        wire.decode(wire.get_message("jumpy"), encode(text, "utf-16 (LE, BOM)"), XML_CT)


def test_utf32_with_a_broken_character_is_a_decode_error() -> None:
    body = encode(PAGE, "utf-32 (LE, BOM)") + b"\xff\xff\xff\xff"
    with pytest.raises(E.DecodeError, match="utf-32"):
        wire.decode(wire.get_stream("jumpy"), body, XML_CT)
