"""Helpers of the emulator tests: a fake clock, a plain aiohttp client, body parsers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import aiohttp

from agupshup.emulator import EmulatorServer

START = 1_700_000_000.0

COLLECTIONS = {
    "messages": "message",
    "groups": "group",
    "replies": "reply",
    "invited": "phone",
    "failed": "entry",
}
REPEATABLE = {"error", "throttle"}


class FakeTime:
    """A clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Resp:
    status: int
    content_type: str
    body: bytes
    fmt: str  # "json" or "xml", from the content type

    @property
    def raw(self) -> Any:
        """The JSON document as sent (only for JSON answers)."""
        assert self.fmt == "json"
        return json.loads(self.body)

    @property
    def tree(self) -> dict[str, Any]:
        """The ``response`` element, normalised: collections and repeatables are lists."""
        if self.fmt == "json":
            tree: dict[str, Any] = normalise_json(json.loads(self.body)["response"])
            return tree
        root = ET.fromstring(self.body.strip())
        assert root.tag == "response"
        parsed: dict[str, Any] = xml_to_tree(root)
        return parsed

    @property
    def errors(self) -> list[tuple[int, str]]:
        return [(int(e["code"]), e["msg"]) for e in self.tree.get("error", [])]

    @property
    def code(self) -> int:
        errors = self.errors
        assert errors, f"expected an error, got {self.body!r}"
        return errors[0][0]

    @property
    def msg(self) -> str:
        return self.errors[0][1]


def normalise_json(node: Any, name: str = "") -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in REPEATABLE and not isinstance(value, list):
                value = [value]
            out[key] = normalise_json(value, key)
        return out
    if isinstance(node, list):
        return [normalise_json(item) for item in node]
    return node


def xml_to_tree(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        if element.tag in COLLECTIONS:
            return []
        return element.text or ""
    if element.tag in COLLECTIONS:
        assert all(c.tag == COLLECTIONS[element.tag] for c in children)
        return [xml_to_tree(c) for c in children]
    out: dict[str, Any] = {}
    for child in children:
        value = xml_to_tree(child)
        if child.tag in REPEATABLE:
            out.setdefault(child.tag, []).append(value)
        else:
            assert child.tag not in out, f"repeated <{child.tag}>"
            out[child.tag] = value
    return out


def leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in leaves(value)]
    return [node]


class Api:
    """Plain HTTP calls to one emulator."""

    def __init__(self, session: aiohttp.ClientSession, server: EmulatorServer) -> None:
        self.session = session
        self.server = server

    @property
    def emulator(self) -> Any:
        return self.server.emulator

    async def call(
        self,
        method: str | None,
        fmt: str | None = None,
        *,
        verb: str = "GET",
        v: str | None = "1.0",
        **params: str,
    ) -> Resp:
        query: dict[str, str] = dict(params)
        if method is not None:
            query["method"] = method
        if v is not None:
            query["v"] = v
        if fmt is not None:
            query["format"] = fmt
        if verb == "GET":
            request = self.session.get(self.server.url, params=query)
        else:
            request = self.session.post(self.server.url, data=query)
        async with request as response:
            body = await response.read()
            ctype = response.headers.get("Content-Type", "")
        kind = "json" if ctype.startswith("application/json") else "xml"
        return Resp(response.status, ctype, body, kind)

    async def login(self, phone: str, password: str, fmt: str | None = None) -> str:
        challenge = (await self.call("users.getChallenge", "json")).tree
        rand = self.emulator.login_rand(password, challenge["challenge"])
        resp = await self.call(
            "users.login",
            fmt,
            phone=phone,
            countryCode="91",
            challenge=challenge["challenge"],
            rand=rand,
        )
        return str(resp.tree["token"])

    async def admin(self, verb: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(verb, self.server.base_url + path, **kwargs) as response:
            assert response.status == 200, await response.text()
            return await response.json()
