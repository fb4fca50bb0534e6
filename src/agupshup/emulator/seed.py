"""Seed data: the users, groups, messages and replies the emulator starts with.

Rules this module enforces:

* The default seed (``default_seed.json``, described in ``docs/emulator.md``) is fixed: other
  tests depend on its phones, passwords, group names and message counts, exported below.
* A seed is a JSON or TOML file (by extension; TOML through :mod:`tomllib`) or a mapping of the
  same structure. Unknown keys are refused, so a typo does not pass silently.
* Messages and replies of every group are stored in timestamp order, so ids grow with time
  across the whole site; a group's ``messages`` is a list of records or a generator
  ``{"count", "text" (with "{n}", 1 = oldest), "start", "step", "adult"}``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agupshup.emulator.state import Group, User, World

__all__ = [
    "ALICE_NAME",
    "ALICE_PASSWORD",
    "ALICE_PHONE",
    "BANNED_PASSWORD",
    "BANNED_PHONE",
    "BLOCKED_PHONE",
    "DEFAULT_SALT",
    "DEMO_NAME",
    "DEMO_PASSWORD",
    "DEMO_PHONE",
    "NEWBIE_PASSWORD",
    "NEWBIE_PHONE",
    "SeedSource",
    "build_world",
    "load_seed",
]

DEMO_PHONE = "9999900000"
DEMO_PASSWORD = "gupshup-demo"
DEMO_NAME = "demo"
ALICE_PHONE = "9888800001"
ALICE_PASSWORD = "alice-pass"
ALICE_NAME = "alice"
NEWBIE_PHONE = "9777700002"
NEWBIE_PASSWORD = "x"
BANNED_PHONE = "9666600003"
BANNED_PASSWORD = "x"
#: Not a user: a phone the ``cricket`` group has blocked (subscribe → 3).
BLOCKED_PHONE = "9555500004"
DEFAULT_SALT = "k3J9xQ"
#: Messages per seeded group.
SEEDED_MESSAGES = {
    "jumpy": 120,
    "demo-bot": 10,
    "cricket": 40,
    "secret": 5,
    "closed": 0,
    "spicy": 5,
}

SeedSource = str | Path | Mapping[str, Any] | None

_TOP_KEYS = {"salt", "users", "groups", "replies"}
_USER_KEYS = {"phone", "password", "name", "activated", "disabled"}
_GROUP_KEYS = {
    "name",
    "owner",
    "description",
    "private",
    "adult",
    "disabled",
    "created_on",
    "members",
    "blocked",
    "messages",
}
_MESSAGE_KEYS = {"text", "timestamp", "adult", "sender"}
_GENERATOR_KEYS = {"count", "text", "start", "step", "adult"}
_REPLY_KEYS = {"to", "from", "text", "sender", "timestamp", "hidden"}


class SeedError(ValueError):
    """The seed data is malformed."""


def load_seed(source: SeedSource = None) -> Mapping[str, Any]:
    """The seed mapping of ``source``: a path (``.json``/``.toml``), a mapping, or the default."""
    if source is None:
        text = resources.files("agupshup.emulator").joinpath("default_seed.json").read_text("utf-8")
        return dict(json.loads(text))
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    if path.suffix.lower() == ".toml":
        return tomllib.loads(path.read_text("utf-8"))
    return dict(json.loads(path.read_text("utf-8")))


def build_world(seed: Mapping[str, Any]) -> tuple[World, str]:
    """A populated :class:`World` and the site-wide salt."""
    _check_keys("seed", seed, _TOP_KEYS)
    world = World()
    for raw in seed.get("users", []):
        world.add_user(_user(raw))
    events: list[tuple[int, int, _Event]] = []
    for raw in seed.get("groups", []):
        group = world.add_group(_group(raw))
        for message in _messages(raw.get("messages", []), group):
            events.append((message.timestamp, len(events), message))
    for raw in seed.get("replies", []):
        reply = _reply(raw, world)
        events.append((reply.timestamp, len(events), reply))
    for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        event.store(world)
    return world, str(seed.get("salt", DEFAULT_SALT))


@dataclass(frozen=True, slots=True)
class _Event:
    """A seeded message (``source`` is None) or reply, waiting to be stored in time order."""

    group: Group
    text: str
    sender: str
    timestamp: int
    adult: bool = False
    source: Group | None = None
    hidden: bool = False

    def store(self, world: World) -> None:
        if self.source is None:
            world.post(self.group, self.text, self.sender, self.timestamp, adult=self.adult)
        else:
            world.reply(
                self.group, self.source, self.text, self.sender, self.timestamp, hidden=self.hidden
            )


def _user(raw: Mapping[str, Any]) -> User:
    _check_keys("user", raw, _USER_KEYS)
    if "password" not in raw:
        # Said by the rule, not as a bare KeyError ('password'): logins check it.
        raise SeedError(f"user {raw['phone']}: no \"password\" (every user needs one to log "
                        "in; e.g. \"password\": \"secret\")")
    return User(
        phone=str(raw["phone"]),
        password=str(raw["password"]),
        name=str(raw.get("name", raw["phone"])),
        activated=bool(raw.get("activated", True)),
        disabled=bool(raw.get("disabled", False)),
    )


def _group(raw: Mapping[str, Any]) -> Group:
    _check_keys("group", raw, _GROUP_KEYS)
    return Group(
        name=str(raw["name"]),
        owner=str(raw["owner"]),
        description=str(raw.get("description", "")),
        private=bool(raw.get("private", False)),
        adult=bool(raw.get("adult", False)),
        disabled=bool(raw.get("disabled", False)),
        created_on=int(raw.get("created_on", 0)),
        members={str(p) for p in raw.get("members", [])},
        blocked={str(p) for p in raw.get("blocked", [])},
    )


def _messages(raw: Any, group: Group) -> list[_Event]:
    if isinstance(raw, Mapping):
        _check_keys("messages generator", raw, _GENERATOR_KEYS)
        start, step = int(raw.get("start", 0)), int(raw.get("step", 60_000))
        template, adult = str(raw["text"]), bool(raw.get("adult", False))
        return [
            _Event(
                group, template.replace("{n}", str(n)), group.owner, start + (n - 1) * step, adult
            )
            for n in range(1, int(raw["count"]) + 1)
        ]
    events = []
    for item in raw:
        _check_keys("message", item, _MESSAGE_KEYS)
        events.append(
            _Event(
                group,
                str(item["text"]),
                str(item.get("sender", group.owner)),
                int(item.get("timestamp", 0)),
                bool(item.get("adult", False)),
            )
        )
    return events


def _reply(raw: Mapping[str, Any], world: World) -> _Event:
    _check_keys("reply", raw, _REPLY_KEYS)
    to, source = world.group(str(raw["to"])), world.group(str(raw["from"]))
    if to is None or source is None:
        raise SeedError(f"reply between unknown groups: {raw!r}")
    return _Event(
        to,
        str(raw["text"]),
        str(raw.get("sender", source.owner)),
        int(raw.get("timestamp", 0)),
        source=source,
        hidden=bool(raw.get("hidden")),
    )


def _check_keys(what: str, raw: Any, allowed: set[str]) -> None:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{what}: expected an object, got {raw!r}")
    unknown = set(raw) - allowed
    if unknown:
        raise SeedError(f"{what}: unknown keys {sorted(unknown)}")
    if what in ("user", "group") and not {"phone" if what == "user" else "name"} <= set(raw):
        raise SeedError(f"{what}: missing key in {raw!r}")
