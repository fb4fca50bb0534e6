"""What a method handler sees: the site's state and one call's parameters.

Rules this module enforces:

* Handlers read parameters only through :class:`Ctx`, whose helpers raise the method's own code
  with the method's own text (:mod:`agupshup.emulator.codes`).
* A handler returns a :class:`Result` (``success`` or ``partial``) or raises
  :class:`~agupshup.emulator.codes.ApiError`; it never renders anything.
* ``ctx.now`` is read once per call, so one call sees one instant.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NoReturn

from agupshup.emulator.codes import ApiError, Failure
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.envelope import Node
from agupshup.emulator.outbox import Outbox
from agupshup.emulator.params import Params, parse_bool, parse_int
from agupshup.emulator.poster import PosterThrottle
from agupshup.emulator.sessions import Sessions
from agupshup.emulator.state import Group, World
from agupshup.emulator.subscriptions import Subscriptions

__all__ = ["Ctx", "Result", "Site"]


@dataclass(slots=True)
class Site:
    """Everything handlers may read or change."""

    config: EmulatorConfig
    world: World
    sessions: Sessions
    subscriptions: Subscriptions
    outbox: Outbox
    poster: PosterThrottle
    #: Stored items by kind: ``message``, ``reply``, ``invite``.
    stored: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Result:
    """A successful (or partly successful) answer's payload."""

    payload: dict[str, Node]
    status: str = "success"
    errors: list[Failure] = field(default_factory=list)


@dataclass(slots=True)
class Ctx:
    """One call being executed."""

    site: Site
    method: str  # canonical lower-case name, the key of code texts
    name: str  # canonical name as documented, e.g. "groups.getStream"
    params: Params
    now: float
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def now_ms(self) -> int:
        return int(self.now * 1000)

    def fail(self, code: int, *args: object) -> NoReturn:
        raise ApiError.of(self.method, code, *args)

    def require(self, *names: str) -> None:
        """109 for the first of ``names`` that is missing or blank."""
        for name in names:
            if self.params.get(name) is None:
                self.fail(109, name)

    def value(self, name: str) -> str:
        """A required parameter's stripped value (call :meth:`require` first)."""
        value = self.params.get(name)
        if value is None:
            self.fail(109, name)
        return value

    def text_value(self, name: str) -> str:
        """A required free-text parameter, not stripped (call :meth:`require` first)."""
        raw = self.params.raw(name)
        if raw is None or not raw.strip():
            self.fail(109, name)
        return raw

    def integer(self, name: str, default: int, code: int = 110, *args: object) -> int:
        """An optional integer; ``code`` (110 by default) when it is not one."""
        raw = self.params.get(name)
        if raw is None:
            return default
        value = parse_int(raw)
        if value is None:
            self.fail(code, *(args or (name, "integer")))
        return value

    def list_window(self) -> tuple[int, int]:
        """``from`` and ``range`` of the 30-a-page list methods (150 and 131, not 110/111)."""
        start = self.integer("from", 0, 150)
        count = self.integer("range", 15, 131, 30)
        if start < 0:
            self.fail(150)
        if not 1 <= count <= 30:
            self.fail(131, 30)
        return start, count

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.params.get(name)
        if raw is None:
            return default
        value = parse_bool(raw)
        if value is None:
            self.fail(110, name, "boolean")
        return value

    def token_phone(self, code: int, name: str = "token") -> str:
        """The phone of the call's token; ``code`` when the token is dead or unknown."""
        phone = self.site.sessions.check_token(self.value(name), self.now)
        if phone is None:
            self.fail(code)
        return phone

    def group(self, name: str, code: int, *, visible_only: bool = False) -> Group:
        """The group named by parameter ``name``; ``code`` when unknown (or disabled)."""
        group = self.site.world.group(self.value(name))
        if group is None or (visible_only and group.disabled):
            self.fail(code)
        return group
