"""Hypothesis strategies for fuzzing ``wire.decode``, shared by the CI test and the long run in
``benchmarks/fuzz_decoders.py``.

Bodies come from five generators: mutated valid envelopes (the golden bodies of
``wire_cases.py``), truncations of them, random JSON trees of dicts/lists/scalars, random XML
element trees, and random bytes; plus pathological nesting. :func:`check` decodes one body and
returns the outcome's name; anything but a result model or a typed agupshup error escapes.
"""

from __future__ import annotations

import copy
import json
import random
import string
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import wire_cases as C
from hypothesis import strategies as st

from agupshup import errors as E
from agupshup import models, wire

SEEDS: list[bytes] = [b for _, _, b in C.all_bodies()]
JSON_SEEDS = [b for b in SEEDS if b.lstrip().startswith(b"{")]
XML_SEEDS = [b for b in SEEDS if not b.lstrip().startswith(b"{")]

#: Every name the wire uses, so random trees hit the real converters.
KEYS = [
    "response", "status", "error", "throttle", "messages", "message", "group", "groups",
    "replies", "reply", "invited", "failed", "entry", "phone", "token", "salt", "challenge",
    "id", "msg", "code", "errorCode", "errorString", "period", "count", "warn", "limit",
    "groupName", "text", "sender", "timestamp", "adult", "description", "owner", "numPosts",
    "numMembers", "private", "createdOn", "fromGroup", "hidden",
]
LEAVES = [
    "success", "partial", "true", "false", "TRUE", "0", "1", "-1", "15", "113", "127", "157",
    "162", "1289000004521", "99999999999999999999999", "1e3", "", " ", "null", "minute",
]

SPECS = sorted(wire.METHODS.items())

# -- random JSON trees ---------------------------------------------------------------------------

# Leaves are mostly drawn from pools: cheap to generate, and close to what the wire carries.
small_text = st.text(max_size=6)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.sampled_from([0.5, -0.0, 1e300, float("inf"), float("nan")]),
    st.sampled_from(LEAVES),
    st.sampled_from(LEAVES),
    small_text,
)
json_keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), small_text)
json_trees = st.recursive(
    json_scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(json_keys, kids, max_size=4),
    ),
    max_leaves=10,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """JSON text: usually ``{"response": {...}}`` with wire keys, sometimes anything at all."""
    inner = draw(st.dictionaries(json_keys, json_trees, max_size=4))
    if draw(st.booleans()):
        inner["status"] = draw(st.sampled_from(["success", "partial", "failure", 1, None]))
    if draw(st.integers(0, 3)) == 0:
        inner["error"] = draw(
            st.one_of(
                st.fixed_dictionaries(
                    {"code": st.one_of(st.integers(-5, 200), st.sampled_from(LEAVES)),
                     "msg": small_text}
                ),
                st.lists(st.dictionaries(st.sampled_from(KEYS), json_scalars), max_size=3),
            )
        )
    tree: Any = draw(st.sampled_from(["envelope", "envelope", "envelope", "bare"]))
    tree = {"response": inner} if tree == "envelope" else draw(json_trees)
    text = json.dumps(tree, ensure_ascii=draw(st.booleans()))
    pad = draw(st.sampled_from(["", " ", "\n", "\r\n\t "]))
    return (pad + text + pad).encode("utf-8", "surrogatepass")


# -- random XML trees ----------------------------------------------------------------------------

xml_tags = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(KEYS),
    st.sampled_from(["x", "a:b", "xmlns", "1bad", "", "re sponse", "_u", "\u00e9t\u00e9"]),
)
xml_texts = st.one_of(
    st.sampled_from(LEAVES),
    st.sampled_from(LEAVES),
    small_text.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")),
    small_text,  # raw: may be malformed
    st.sampled_from(["&amp;", "&#65;", "&#x1F600;", "&#0;", "&nope;", "<![CDATA[<x>&]]>",
                     "<!-- c -->", "<?pi x?>", "]]>"]),
)


def _element(tag: str, content: str, attrs: str = "") -> str:
    if content == "" and attrs == " ":
        return f"<{tag}{attrs}/>"
    return f"<{tag}{attrs}>{content}</{tag}>"


xml_elements = st.recursive(
    st.builds(_element, xml_tags, xml_texts),
    lambda kids: st.builds(
        _element,
        xml_tags,
        st.lists(kids, max_size=3).map("".join),
        st.sampled_from(["", "", " ", ' a="1"', " b='&amp;'", ' c="<"']),
    ),
    max_leaves=12,
)


@st.composite
def xml_bodies(draw: st.DrawFn) -> bytes:
    """An XML document, usually rooted at ``<response>``, with a random prolog."""
    children = "".join(draw(st.lists(xml_elements, max_size=4)))
    root = draw(st.sampled_from(["response", "response", "response", "result", "html"]))
    doc = f"<{root}>{children}</{root}>"
    prolog = draw(
        st.sampled_from(
            [
                "",
                '<?xml version="1.0" encoding="UTF-8"?>\n',
                "\n<?xml version='1.0'?>",
                '<?xml version="1.0" encoding="ISO-8859-1"?>',
                '<?xml version="1.0" encoding="utf-16"?>',
                '<?xml version="1.0" encoding="nope"?>',
                "<!-- hi -->",
                '<!DOCTYPE response [<!ENTITY e "x">]>',
            ]
        )
    )
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    return (prolog + doc).encode(encoding, "replace")


# -- mutations of valid envelopes ----------------------------------------------------------------

MUTATION_TOKENS = [
    b"{", b"}", b"[", b"]", b'"', b",", b":", b"<", b">", b"/", b"&", b"\x00", b"\xff",
    b"null", b"true", b"1e999", b"-0", b"99999999999999999999999", b"<!DOCTYPE x>",
    b"<!ENTITY", b"]]>", b"\\u0000", b"\\ud800", b"<x>", b"</messages>", b'{"a":', b"\xc3",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid body with one to four byte-level edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "replace", "swap"]))
        n = len(data)
        i = draw(st.integers(0, max(n - 1, 0)))
        j = min(n, i + draw(st.integers(0, 32)))
        if op == "flip" and n:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[i:j]
        elif op == "insert":
            data[i:i] = draw(st.one_of(st.sampled_from(MUTATION_TOKENS), st.binary(max_size=8)))
        elif op == "duplicate":
            data[i:i] = data[i:j]
        elif op == "replace":
            data[i:j] = draw(st.sampled_from(MUTATION_TOKENS))
        elif op == "swap" and n > 2:
            k = draw(st.integers(0, n - 1))
            data[i], data[k] = data[k], data[i]
    return bytes(data)


@st.composite
def truncated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    seed = draw(st.sampled_from(seeds))
    return seed[: draw(st.integers(0, max(len(seed) - 1, 0)))]


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    """Pathological nesting, in either syntax."""
    n = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["json-array", "json-object", "xml-record", "xml-top"]))
    if kind == "json-array":
        return b'{"response": {"status": "success", "x": ' + b"[" * n + b"]" * n + b"}}"
    if kind == "json-object":
        return b'{"response": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}"
    if kind == "xml-record":
        return (b"<response><status>success</status><messages><message>" + b"<x>" * n
                + b"</x>" * n + b"</message></messages></response>")
    return b"<response><status>success</status>" + b"<x>" * n + b"</x>" * n + b"</response>"


def bodies(kind: str) -> st.SearchStrategy[bytes]:
    """Bodies aimed at one decoder (``json``, ``xml``), or at either (``any``)."""
    seeds = {"json": JSON_SEEDS, "xml": XML_SEEDS, "any": SEEDS}[kind]
    structured = {
        "json": [json_bodies()],
        "xml": [xml_bodies()],
        "any": [json_bodies(), xml_bodies()],
    }[kind]
    reshaped = st.integers(min_value=0, max_value=2**32).map(lambda n: _Gen(n).reshape(seeds))
    return st.one_of(
        mutated(seeds),
        mutated(seeds),
        reshaped,
        truncated(seeds),
        *structured,
        *structured,
        st.binary(max_size=200),
        deep(),
    )


# -- the same families, generated by plain Python from one Hypothesis-drawn seed ----------------
# Hypothesis spends about a millisecond on every example here, and several on a rich tree, so
# the long run draws one integer per body and grows the body with ``random.Random(seed)``: the
# same five families, a hundred times cheaper per draw (but shrinking only the seed).

_ODD_TAGS = ["x", "a:b", "xmlns", "1bad", "", "re sponse", "_u", "\u00e9t\u00e9"]
_XML_SPECIALS = ["&amp;", "&#65;", "&#x1F600;", "&#0;", "&nope;", "<![CDATA[<x>&]]>",
                 "<!-- c -->", "<?pi x?>", "]]>"]
_PROLOGS = [
    "",
    '<?xml version="1.0" encoding="UTF-8"?>\n',
    "\n<?xml version='1.0'?>",
    '<?xml version="1.0" encoding="ISO-8859-1"?>', '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.0" encoding="nope"?>', "<!-- hi -->", '<!DOCTYPE response [<!ENTITY e "x">]>',
]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def text(self, n: int = 6) -> str:
        r = self.r
        pools = (string.printable, "\u00e9\u2014\u0661\U0001f600\ud800\x00\x7f", "<&>\"'")
        return "".join(r.choice(r.choice(pools)) for _ in range(r.randint(0, n)))

    def scalar(self) -> Any:
        r = self.r
        k = r.randrange(8)
        if k == 0:
            return None
        if k == 1:
            return r.random() < 0.5
        if k == 2:
            return r.choice([0, 1, -1, 15, 113, 2**63, -(2**63) - 1, 10**25, r.randint(-999, 999)])
        if k == 3:
            return r.choice([0.5, -0.0, 1e300, float("inf"), float("nan"), 26.0])
        if k in (4, 5):
            return r.choice(LEAVES)
        return self.text()

    def key(self) -> str:
        return self.r.choice(KEYS) if self.r.random() < 0.85 else self.text(4)

    def tree(self, depth: int = 0) -> Any:
        r = self.r
        if depth > 3 or r.random() < 0.4:
            return self.scalar()
        if r.random() < 0.4:
            return [self.tree(depth + 1) for _ in range(r.randint(0, 3))]
        return {self.key(): self.tree(depth + 1) for _ in range(r.randint(0, 4))}

    def json_body(self) -> bytes:
        r = self.r
        inner = {self.key(): self.tree(1) for _ in range(r.randint(0, 4))}
        if r.random() < 0.5:
            inner["status"] = r.choice(["success", "partial", "failure", 1, None])
        if r.random() < 0.3:
            inner["error"] = (
                {"code": r.choice([r.randint(-5, 200), *LEAVES]), "msg": self.text()}
                if r.random() < 0.6
                else [{r.choice(KEYS): self.scalar() for _ in range(r.randint(0, 3))}
                      for _ in range(r.randint(0, 3))]
            )
        tree = {"response": inner} if r.random() < 0.75 else self.tree()
        text = json.dumps(tree, ensure_ascii=r.random() < 0.5)
        pad = r.choice(["", " ", "\n", "\r\n\t "])
        return (pad + text + pad).encode("utf-8", "surrogatepass")

    def xml_text(self) -> str:
        r = self.r
        k = r.randrange(6)
        if k < 2:
            return r.choice(LEAVES)
        if k == 2:
            return self.text().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if k == 3:
            return self.text()
        return r.choice(_XML_SPECIALS)

    def xml_element(self, depth: int = 0) -> str:
        r = self.r
        tag = r.choice(KEYS) if r.random() < 0.85 else r.choice(_ODD_TAGS)
        attrs = r.choice(["", "", "", ' a="1"', " b='&amp;'", ' c="<"'])
        if depth > 3 or r.random() < 0.45:
            content = self.xml_text()
        else:
            content = "".join(self.xml_element(depth + 1) for _ in range(r.randint(0, 4)))
        if content == "" and r.random() < 0.5:
            return f"<{tag}{attrs}/>"
        return f"<{tag}{attrs}>{content}</{tag}>"

    def xml_body(self) -> bytes:
        r = self.r
        root = r.choice(["response", "response", "response", "result", "html"])
        children = "".join(self.xml_element(1) for _ in range(r.randint(0, 5)))
        doc = r.choice(_PROLOGS) + f"<{root}>{children}</{root}>"
        return doc.encode(r.choice(["utf-8", "latin-1"]), "replace")

    def mutate(self, seeds: list[bytes]) -> bytes:
        r = self.r
        data = bytearray(r.choice(seeds))
        for _ in range(r.randint(1, 4)):
            n = len(data)
            i = r.randrange(n) if n else 0
            j = min(n, i + r.randint(0, 32))
            op = r.randrange(6)
            if op == 0 and n:
                data[i] ^= 1 << r.randrange(8)
            elif op == 1:
                del data[i:j]
            elif op == 2:
                data[i:i] = r.choice(MUTATION_TOKENS) if r.random() < 0.7 else r.randbytes(8)
            elif op == 3:
                data[i:i] = data[i:j]
            elif op == 4:
                data[i:j] = r.choice(MUTATION_TOKENS)
            elif n > 2:
                k = r.randrange(n)
                data[i], data[k] = data[k], data[i]
        return bytes(data)

    def reshape(self, seeds: list[bytes]) -> bytes:
        """A valid body, parsed, bent at a few nodes (leaf types, shapes, unknown or lost keys)
        and written out again: mostly still decodable, so the converters see the odd shapes."""
        seed = self.r.choice(seeds)
        if seed.lstrip().startswith(b"{"):
            tree = json.loads(seed)
            for _ in range(self.r.randint(1, 3)):
                tree = self._bend(tree)
            return json.dumps(tree).encode()
        root = ET.fromstring(seed.strip())
        for _ in range(self.r.randint(1, 3)):
            self._bend_xml(root)
        return ET.tostring(root, encoding="utf-8")

    def _bend(self, node: Any) -> Any:
        r = self.r
        if isinstance(node, dict) and node and r.random() < 0.75:
            key = r.choice(list(node))
            op = r.randrange(5)
            if op == 0:
                del node[key]
            elif op == 1:
                node[self.key()] = self.tree(2)
            else:
                node[key] = self._bend(node[key])
            return node
        if isinstance(node, list) and node and r.random() < 0.75:
            i = r.randrange(len(node))
            op = r.randrange(4)
            if op == 0:
                del node[i]
            elif op == 1:
                node.append(node[i])
            else:
                node[i] = self._bend(node[i])
            return node
        op = r.randrange(6)
        if op == 0:
            return [node]
        if op == 1 and isinstance(node, list) and len(node) == 1:
            return node[0]
        if op == 2 and isinstance(node, str) and node.lstrip("-").isdigit():
            return int(node)
        if op == 3 and node in ("true", "false"):
            return node == "true"
        return self.scalar()

    def _bend_xml(self, root: ET.Element) -> None:
        r = self.r
        elems = list(root.iter())
        elem = r.choice(elems)
        op = r.randrange(6)
        if op == 0 and len(elem):
            elem.remove(r.choice(list(elem)))
        elif op == 1 and len(elem):
            elem.append(copy.deepcopy(r.choice(list(elem))))
        elif op == 2:
            ET.SubElement(elem, r.choice(KEYS)).text = self.xml_text_plain()
        elif op == 3 and elem is not root:
            elem.tag = r.choice(KEYS)
        elif op == 4:
            elem.text = self.xml_text_plain()
        else:
            elem.set("x", self.text(3).replace("\x00", ""))

    def xml_text_plain(self) -> str:
        """Character data ElementTree can write (it escapes; XML 1.0 can't carry every char)."""
        text = str(self.scalar()) if self.r.random() < 0.5 else self.r.choice(LEAVES)
        return "".join(c for c in text if c in "\t\n\r" or " " <= c < "\ud800")

    def truncate(self, seeds: list[bytes]) -> bytes:
        seed = self.r.choice(seeds)
        return seed[: self.r.randrange(max(len(seed), 1))]

    def deep(self) -> bytes:
        n = self.r.randint(1, 3000)
        kind = self.r.randrange(4)
        if kind == 0:
            return b'{"response": {"status": "success", "x": ' + b"[" * n + b"]" * n + b"}}"
        if kind == 1:
            return b'{"response": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}"
        if kind == 2:
            return (b"<response><status>success</status><messages><message>" + b"<x>" * n
                    + b"</x>" * n + b"</message></messages></response>")
        return b"<response><status>success</status>" + b"<x>" * n + b"</x>" * n + b"</response>"


FAMILIES = ("mutated", "reshaped", "truncated", "tree", "bytes", "deep")
#: How often each family comes up in the long run, out of 20.
_WEIGHTS = {"mutated": 5, "reshaped": 5, "truncated": 2, "tree": 6, "bytes": 1, "deep": 1}


def generate(kind: str, seed: int) -> tuple[str, bytes]:
    """(family, body) for ``seed``: the fast twin of :func:`bodies`."""
    g = _Gen(seed)
    seeds = {"json": JSON_SEEDS, "xml": XML_SEEDS, "any": SEEDS}[kind]
    family = g.r.choices(FAMILIES, weights=[_WEIGHTS[f] for f in FAMILIES])[0]
    if family == "mutated":
        return family, g.mutate(seeds)
    if family == "reshaped":
        return family, g.reshape(seeds)
    if family == "truncated":
        return family, g.truncate(seeds)
    if family == "tree":
        use_json = kind == "json" or (kind == "any" and g.r.random() < 0.5)
        return family, g.json_body() if use_json else g.xml_body()
    if family == "bytes":
        return family, g.r.randbytes(g.r.randint(0, 200))
    return family, g.deep()


def fast_bodies(kind: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """(family, body), grown from one drawn seed."""
    return st.integers(min_value=0, max_value=2**64 - 1).map(lambda seed: generate(kind, seed))


# -- the oracle ----------------------------------------------------------------------------------

def _result_ok(key: str, result: Any) -> bool:
    if key in ("get_public_stream", "get_stream", "get_joined_groups_stream"):
        return isinstance(result, list) and all(isinstance(m, models.Message) for m in result)
    if key in ("get_my_groups", "get_joined_groups"):
        return isinstance(result, list) and all(isinstance(g, models.Group) for g in result)
    if key == "get_replies":
        return isinstance(result, list) and all(isinstance(r, models.Reply) for r in result)
    if key == "get_message":
        return result is None or isinstance(result, models.Message)
    if key == "get_info":
        return isinstance(result, models.Group)
    if key in ("subscribe", "confirm_subscription", "login"):
        return isinstance(result, str)
    if key == "get_challenge":
        return isinstance(result, models.Challenge)
    if key == "post_message":
        return isinstance(result, int) and not isinstance(result, bool)
    if key == "logout":
        return result is None
    if key == "post_reply":
        return isinstance(result, models.ReplyResult)
    if key == "invite_friends":
        return isinstance(result, models.InviteResult)
    return False


def check(key: str, body: bytes, content_type: str | None) -> str:
    """Decode ``body`` for ``key``'s method; the outcome's name. Anything untyped escapes."""
    spec = wire.METHODS[key]
    error: E.APIError | E.DecodeError | None = None
    try:
        response = wire.decode(spec, body, content_type)
    except (E.APIError, E.DecodeError) as exc:
        error = exc
    if isinstance(error, E.APIError):
        assert error.method == spec.name
        assert isinstance(error.code, int)
        assert error.errors
        assert error.errors[0].code == error.code
        assert all(isinstance(t, models.ThrottleTag) for t in error.throttle)
        return type(error).__name__
    if isinstance(error, E.DecodeError):
        assert error.method == spec.name
        assert len(error.excerpt) <= 120
        return "DecodeError"
    assert isinstance(response, wire.Response)
    assert _result_ok(key, response.result), (key, response.result)
    assert all(isinstance(t, models.ThrottleTag) for t in response.throttle)
    assert isinstance(response.status, str)
    return "partial" if response.status == "partial" else "ok"


class Tally:
    """Outcome counts per decoder."""

    def __init__(self) -> None:
        self.bodies = 0
        self.outcomes: Counter[str] = Counter()

    def add(self, outcome: str) -> None:
        self.bodies += 1
        self.outcomes[outcome] += 1


__all__ = ["SPECS", "Tally", "bodies", "check", "fast_bodies", "generate"]
