"""The response envelope and its two spellings, JSON and XML (protocol.md §2).

Rules this module enforces:

* A response is a tree of :data:`Node`: strings (leaves), dicts (elements, in order),
  :class:`Items` (collections: always a JSON array; an XML container with repeated children) and
  :class:`Many` (repeatable tags such as ``error`` and ``throttle``: a JSON object for one, an
  array for several; repeated XML elements).
* Every leaf is a string in both formats; callers convert numbers and booleans with :func:`s`.
* XML is written by hand: text is escaped, and characters XML 1.0 cannot carry are dropped.
* Bodies are UTF-8; the content types are fixed here. :func:`reencode_xml` and
  :func:`billion_laughs` serve the ``encoding`` and ``laughs`` faults: the same document in
  UTF-16/32 (its declaration and charset saying so), and an entity bomb in any of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

__all__ = [
    "CONTENT_TYPES",
    "Format",
    "Items",
    "Many",
    "Node",
    "billion_laughs",
    "envelope",
    "reencode_xml",
    "render",
    "s",
]

Format = Literal["xml", "json"]

CONTENT_TYPES: dict[str, str] = {
    "xml": "text/xml; charset=UTF-8",
    "json": "application/json; charset=UTF-8",
}

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class Items:
    """A collection: ``<tag><child>…</child>…</tag>`` / ``"tag": [...]``."""

    child: str
    items: list[Node]


@dataclass(frozen=True, slots=True)
class Many:
    """A repeatable tag: one object or an array in JSON, repeated elements in XML."""

    items: list[Node]


Node = str | dict[str, "Node"] | Items | Many


def s(value: object) -> str:
    """A leaf: booleans as ``true``/``false``, everything else as ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def envelope(
    *,
    status: str | None = None,
    payload: dict[str, Node] | None = None,
    errors: list[tuple[int, str]] | None = None,
    throttle: list[dict[str, Node]] | None = None,
) -> dict[str, Node]:
    """The ``response`` element: status, payload, errors, then throttle tags."""
    body: dict[str, Node] = {}
    if status is not None:
        body["status"] = status
    if payload:
        body.update(payload)
    if errors:
        body["error"] = Many([{"code": s(code), "msg": msg} for code, msg in errors])
    if throttle:
        body["throttle"] = Many(list(throttle))
    return {"response": body}


def render(tree: dict[str, Node], fmt: Format) -> bytes:
    """The body bytes of ``tree`` in ``fmt``."""
    if fmt == "json":
        return msgspec.json.encode(_plain(tree))
    out: list[str] = [XML_DECLARATION]
    for tag, node in tree.items():
        _xml(out, tag, node)
    return "".join(out).encode("utf-8")


def _plain(node: Node) -> Any:
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, Items):
        return [_plain(item) for item in node.items]
    if len(node.items) == 1:
        return _plain(node.items[0])
    return [_plain(item) for item in node.items]


def _xml(out: list[str], tag: str, node: Node) -> None:
    if isinstance(node, str):
        out.append(f"<{tag}>{escape(node)}</{tag}>")
    elif isinstance(node, dict):
        out.append(f"<{tag}>")
        for child_tag, child in node.items():
            if isinstance(child, str):  # the common case, inlined
                out.append(f"<{child_tag}>{escape(child)}</{child_tag}>")
            else:
                _xml(out, child_tag, child)
        out.append(f"</{tag}>")
    elif isinstance(node, Many):
        for item in node.items:
            _xml(out, tag, item)
    elif node.items:
        out.append(f"<{tag}>")
        for item in node.items:
            _xml(out, node.child, item)
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}/>")


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NEEDS_WORK = re.compile("[&<>]|[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """``text`` as XML character data."""
    if not _NEEDS_WORK.search(text):
        return text
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _label(encoding: str) -> str:
    """``utf-16-le`` → ``UTF-16``: the name a declaration and a charset give."""
    return encoding.upper()[:6]


def _encode(text: str, encoding: str, bom: bool) -> bytes:
    return (("\ufeff" + text) if bom else text).encode(encoding)


def reencode_xml(body: bytes, encoding: str, bom: bool) -> tuple[bytes, str]:
    """A UTF-8 XML answer in ``encoding``, and its content type."""
    text = body.decode("utf-8").replace('encoding="UTF-8"', f'encoding="{_label(encoding)}"', 1)
    return _encode(text, encoding, bom), f"text/xml; charset={_label(encoding)}"


def billion_laughs(encoding: str, bom: bool, depth: int = 9) -> tuple[bytes, str]:
    """An entity bomb: ``depth`` levels of ten references each (10⁹ × "lol" at 9) in a small
    document, and its content type."""
    decls = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">' for i in range(1, depth + 1)
    ]
    text = (
        f'<?xml version="1.0" encoding="{_label(encoding)}"?>\n'
        f"<!DOCTYPE response [{''.join(decls)}]>\n"
        f"<response><status>success</status><msg>&lol{depth};</msg></response>"
    )
    return _encode(text, encoding, bom), f"text/xml; charset={_label(encoding)}"
