"""Bytes → the response envelope (:class:`Body`), for JSON and XML alike.

Rules this module enforces:

* JSON takes the fast path: one prebuilt msgspec decoder fills :class:`Envelope` straight from
  bytes. Only when a lenient server bends protocol.md (a number where a string was expected, a lone
  object where an array was) does it fall back to the slow path below.
* XML is parsed once, by the C ElementTree parser (expat), into plain dicts of strings, and
  converted with the same Structs. A DTD (hence any ENTITY declaration) is refused by expat
  itself, so in whatever encoding expat reads the document (UTF-8, UTF-16 with or without BOM):
  a second expat parser reads the prolog (up to the root element) with a doctype handler that
  stops it, before ElementTree sees a byte, so entity-expansion bombs never expand. A document
  with a UTF-16 or UTF-32 byte-order mark is decoded by Python first (expat cannot read UTF-32).
* The records of a collection are flat, so each is read in one pass (falling back to the
  general walk when it is not); children of a collection other than its item tag are unknown
  elements, and ignored.
* Both slow paths normalise to one shape: every leaf a string, every collection a list (the
  XML walk yields that shape directly).
* Whatever the body, the result is an :class:`Envelope` or a :class:`DecodeError`; nothing else
  escapes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

import msgspec

from agupshup.errors import DecodeError
from agupshup.models import ErrorDetail, FailedInvite, Group, Message, Reply, ThrottleTag

__all__ = [
    "Body",
    "Envelope",
    "RawError",
    "decode_json",
    "decode_xml",
    "format_of",
    "is_api_envelope",
    "sniff_format",
]

#: Collection element → the tag of its children in XML (protocol.md §4).
COLLECTIONS: dict[str, str] = {
    "messages": "message",
    "groups": "group",
    "replies": "reply",
    "invited": "phone",
    "failed": "entry",
}
_COLLECTION_TAGS = frozenset(COLLECTIONS)
#: Tags that may repeat: an object for one and an array for several (protocol.md §2).
REPEATABLE = frozenset({"error", "throttle"})


class RawError(msgspec.Struct, frozen=True, gc=False):
    """An ``error`` tag as sent: ``code``/``msg`` or their aliases ``errorCode``/``errorString``."""

    code: int | None = None
    msg: str | None = None
    errorCode: int | None = None
    errorString: str | None = None

    def detail(self) -> ErrorDetail:
        code = self.code if self.code is not None else self.errorCode
        msg = self.msg if self.msg is not None else self.errorString
        return ErrorDetail(code=code if code is not None else 0, msg=msg or "")


class Body(msgspec.Struct, frozen=True, gc=False):
    """The ``response`` element: every field any method may send, all optional."""

    status: str | None = None
    error: RawError | list[RawError] | None = None
    throttle: ThrottleTag | list[ThrottleTag] | None = None
    messages: list[Message] | None = None
    message: Message | None = None
    group: Group | None = None
    groups: list[Group] | None = None
    replies: list[Reply] | None = None
    invited: list[str] | None = None
    failed: list[FailedInvite] | None = None
    token: str | None = None
    salt: str | None = None
    challenge: str | None = None
    id: int | None = None
    msg: str | None = None

    def errors(self) -> tuple[ErrorDetail, ...]:
        raw = self.error
        if raw is None:
            return ()
        if isinstance(raw, RawError):
            return (raw.detail(),)
        return tuple(e.detail() for e in raw)

    def throttle_tags(self) -> tuple[ThrottleTag, ...]:
        raw = self.throttle
        if raw is None:
            return ()
        return (raw,) if isinstance(raw, ThrottleTag) else tuple(raw)


class Envelope(msgspec.Struct, frozen=True, gc=False):
    response: Body


_json_decoder = msgspec.json.Decoder(Envelope, strict=False)


def sniff_format(body: bytes) -> str | None:
    """``"json"`` or ``"xml"`` from the first significant byte, for bodies with no content type."""
    head = body.lstrip()[:1]
    return {b"{": "json", b"<": "xml"}.get(head)


def decode_json(body: bytes) -> Body:
    try:
        return _json_decoder.decode(body).response
    except msgspec.ValidationError:
        pass  # shape bent by a lenient server: take the slow path below
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # msgspec reports invalid UTF-8 in a string and excessive nesting with builtins
        raise DecodeError(f"malformed JSON ({exc})", excerpt=body) from None
    try:
        tree = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # pragma: no cover
        raise DecodeError(f"malformed JSON ({exc})", excerpt=body) from None
    return _convert(tree, body)


def decode_xml(body: bytes) -> Body:
    doc = _xml_document(body)
    refuse_dtd(doc)
    try:
        root = ET.fromstring(doc)
    except (ET.ParseError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise DecodeError(f"malformed XML ({exc})", excerpt=body) from None
    if root.tag != "response":
        raise DecodeError(f"root element is <{root.tag}>, not <response>", excerpt=body)
    try:
        # The walk already yields the normalised shape: no ``normalise`` pass.
        tree = {"response": _element_fields(root)}
        return msgspec.convert(tree, Envelope, strict=False).response
    except msgspec.ValidationError as exc:
        raise DecodeError(f"unexpected response shape ({exc})", excerpt=body) from None
    except RecursionError:
        raise DecodeError("elements nested too deeply", excerpt=body) from None


#: Byte-order marks, longest first (a UTF-32-LE BOM begins like a UTF-16-LE one).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _xml_document(body: bytes) -> bytes | str:
    """What expat is given: the stripped bytes of an 8-bit document; the text of one with a
    UTF-16/32 byte-order mark (expat cannot read UTF-32; given text, it reads UTF-8 whatever the
    declaration says); other wide documents as they are (stripping bytes would split a
    character; expat detects their encoding)."""
    if b"\x00" not in body[:4] and body[:1] not in (b"\xff", b"\xfe"):
        return body.strip()
    for bom, codec in _BOMS:
        if body.startswith(bom):
            try:
                return body.decode(codec).strip()
            except UnicodeDecodeError as exc:
                reason = f"malformed {codec} ({exc.reason})"
                raise DecodeError(reason, excerpt=body) from None
    return body


class _Refused(Exception):
    pass


def _doctype(*_: object) -> None:
    raise _Refused


#: The prolog is read in growing slices, so that expat stops soon after the root element
#: starts, where a DTD can no longer begin.
_PROLOG_SLICE = 64


def refuse_dtd(doc: bytes | str) -> None:
    """Raise :class:`DecodeError` when the document declares a DTD or an entity.

    Expat reads the prolog, decoding it exactly as ElementTree's expat will; the doctype
    handler raising stops expat at once, so nothing declared is ever expanded.
    """
    parser = expat.ParserCreate(namespace_separator="}")  # ElementTree's setting
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _doctype
    started: dict[str, object] = {}
    # A C method, so no Python frame per element: it only records that the root has begun.
    parser.StartElementHandler = started.setdefault
    at, step = 0, _PROLOG_SLICE
    try:
        while not started and at < len(doc):
            parser.Parse(doc[at : at + step], False)
            at, step = at + step, step * 2
    except _Refused:
        raise DecodeError("XML with a DTD or entities is refused", excerpt=doc) from None
    except (expat.ExpatError, ValueError, LookupError) as exc:
        raise DecodeError(f"malformed XML ({exc})", excerpt=doc) from None


def format_of(content_type: str) -> str | None:
    """``"json"`` or ``"xml"`` for an API content type, else None."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in ("application/json", "text/json", "text/javascript", "application/javascript"):
        return "json"
    if mime in ("text/xml", "application/xml"):
        return "xml"
    return None


def is_api_envelope(body: bytes, content_type: str | None) -> bool:
    """True when ``body`` is an API answer with ``error`` tags (a server may send one with a
    4xx status; it is then the API's answer, not an HTTP refusal)."""
    fmt = format_of(content_type) if content_type else sniff_format(body)
    try:
        if fmt == "json":
            return decode_json(body).error is not None
        return fmt == "xml" and decode_xml(body).error is not None
    except DecodeError:
        return False


def _convert(tree: Any, body: bytes) -> Body:
    if not isinstance(tree, dict) or not isinstance(tree.get("response"), dict):
        raise DecodeError("no <response> object", excerpt=body)
    try:
        return msgspec.convert(
            {"response": normalise(tree["response"])}, Envelope, strict=False
        ).response
    except msgspec.ValidationError as exc:
        raise DecodeError(f"unexpected response shape ({exc})", excerpt=body) from None
    except RecursionError:
        raise DecodeError("values nested too deeply", excerpt=body) from None


def normalise(node: dict[str, Any]) -> dict[str, Any]:
    """Bring a lenient response tree to protocol.md's shape: string leaves, list collections."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in COLLECTIONS:
            out[key] = [_leaves(v) for v in _as_list(_unwrap(value, COLLECTIONS[key]))]
        elif key in REPEATABLE and isinstance(value, list):
            out[key] = [_leaves(v) for v in value]
        else:
            out[key] = _leaves(value)
    return out


def _unwrap(value: Any, child: str) -> Any:
    # XML, and JSON written the XML way, wrap a collection's items in a child element.
    if isinstance(value, dict) and set(value) <= {child}:
        return value.get(child)
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaves(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _element_fields(elem: ET.Element) -> dict[str, Any]:
    """An element's children as a dict; a tag that repeats becomes a list."""
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in elem:
        tag, value = child.tag, _element_value(child)
        if tag not in out:
            out[tag] = value
        elif tag in repeated:
            out[tag].append(value)
        else:
            out[tag] = [out[tag], value]
            repeated.add(tag)
    return out


def _element_value(elem: ET.Element) -> Any:
    item = COLLECTIONS.get(elem.tag)
    if item is not None:
        return _collection(elem, item)
    if len(elem) == 0:
        return elem.text or ""
    return _element_fields(elem)


def _collection(elem: ET.Element, item: str) -> list[Any]:
    """A collection's items. Children other than ``item`` are unknown elements, and ignored.

    Records are flat (protocol.md §4): when one C-level count over the container shows no field with
    children, each record is read in a single pass; a record with a repeated or collection-named
    field, or any nesting, takes the general walk, which gives the same result.
    """
    if len(list(elem.iter())) != 1 + len(elem) + sum(map(len, elem)):
        return [_element_value(c) for c in elem if c.tag == item]
    out: list[Any] = []
    for record in elem:
        if record.tag != item:
            continue
        fields: dict[str, Any] = {}
        for field in record:
            fields[field.tag] = field.text or ""
        if len(fields) != len(record) or not _COLLECTION_TAGS.isdisjoint(fields):
            out.append(_element_fields(record))
        else:
            out.append(fields or record.text or "")
    return out
