"""Fault injection: which calls go wrong, and how (deterministically).

Rules this module enforces:

* Faults are off until a :class:`FaultSpec` is added. A spec names its kind, the API methods it
  applies to (none = every method), how many matching calls to let through first (``skip``),
  how many times to fire at most (``count``, ``None`` = forever) and a ``probability``.
* The choice is deterministic: one :class:`random.Random` seeded with ``seed`` draws only for
  specs whose probability is below 1, in call order.
* ``when`` says whether the call ran: ``"before"`` means the fault strikes before the call is
  executed (nothing is stored; where a body is still sent it is a 129 envelope), ``"after"`` means
  the call was executed and then its answer was damaged (a post is stored, but the client cannot
  know: the "outcome unknown" case). ``slow`` is the exception: ``before`` sleeps and then runs
  the call normally, ``after`` runs it and stalls half-way through the body.
* Only calls admitted by the throttle can fault; a 113 is always delivered intact.
* Probabilities and counts are checked here, and every field's type (a spec arrives as JSON
  over HTTP: a wrong type is a ``TypeError`` at once, never a 500 at the call it fires on); how
  each kind is delivered over HTTP lives in :mod:`agupshup.emulator.sabotage`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

__all__ = ["FaultKind", "FaultPlan", "FaultSpec"]

FaultKind = Literal[
    "reset",  # the connection is reset (RST), no answer at all
    "http502",  # HTTP 502 with an HTML proxy page
    "truncated",  # the body stops part-way (see ``truncate``)
    "slow",  # the answer is delayed by ``delay`` real seconds
    "oversized",  # a valid envelope padded with whitespace to ``size`` bytes
    "garbage",  # ``size`` bytes of seeded random noise, with the right content type
    "content_type",  # the right body, sent as text/html
    "error129",  # API error 129 (internal error) in the call's format
    "redirect",  # HTTP ``status`` (3xx) to ``location`` (default: the API path itself, a loop)
    "http4xx",  # HTTP ``status`` (4xx) with an HTML page (404 Not Found, 403 Forbidden …)
    "encoding",  # XML answers re-encoded in ``encoding`` (JSON answers are left alone)
    "laughs",  # a billion-laughs XML document in ``encoding``, as HTTP 200 text/xml
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
#: ``encoding`` and ``laughs``: the encodings offered (expat reads UTF-8 and UTF-16; UTF-32 is
#: for clients that decode it themselves).
ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_DEFAULT_STATUS = {"redirect": 307, "http4xx": 404}
_STATUS_RANGE = {"redirect": range(300, 400), "http4xx": range(400, 500)}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault rule."""

    kind: FaultKind
    methods: tuple[str, ...] = ()
    probability: float = 1.0
    count: int | None = None
    skip: int = 0
    when: Literal["before", "after"] = "before"
    #: ``slow``: real seconds to stall.
    delay: float = 1.0
    #: ``oversized``: total body bytes; ``garbage``: bytes of noise.
    size: int = 5_000_000
    #: ``truncated``: ``"length"`` declares the full Content-Length and closes the connection
    #: half-way; ``"cut"`` sends a complete HTTP answer whose body is cut half-way.
    truncate: Literal["length", "cut"] = "length"
    #: ``redirect`` (3xx, default 307) and ``http4xx`` (4xx, default 404): the HTTP status.
    status: int = 0
    #: ``redirect``: the ``Location``; empty is the API path itself, so a client that follows
    #: redirects loops (each hop a new call, counted and faulted again).
    location: str = ""
    #: ``encoding`` and ``laughs``: one of :data:`ENCODINGS`.
    encoding: str = "utf-16-le"
    #: ``encoding`` and ``laughs``: start with a byte-order mark.
    bom: bool = True

    def __post_init__(self) -> None:
        _check_types(self)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if not 0.0 <= self.probability <= 1.0:  # False for NaN too
            raise ValueError("probability must be within 0..1")
        if not math.isfinite(self.delay):
            raise ValueError("delay must be a finite number of seconds")
        if self.when not in ("before", "after") or self.truncate not in ("length", "cut"):
            raise ValueError("when is before|after; truncate is length|cut")
        if min(self.skip, self.delay, self.size, self.count or 0) < 0:
            raise ValueError("skip, count, delay and size must not be negative")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding is one of {ENCODINGS}, not {self.encoding!r}")
        self._check_status()
        object.__setattr__(self, "methods", tuple(_canonical(m) for m in self.methods))

    def _check_status(self) -> None:
        if self.kind not in _STATUS_RANGE:
            return
        if self.status == 0:
            object.__setattr__(self, "status", _DEFAULT_STATUS[self.kind])
        if self.status not in _STATUS_RANGE[self.kind]:
            raise ValueError(f"a {self.kind} fault's status is {_STATUS_RANGE[self.kind]}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSpec:
        """A spec from JSON-ish data (``methods`` may be a string or a list)."""
        fields = dict(data)
        methods = fields.pop("methods", fields.pop("method", ()))
        if isinstance(methods, str):
            methods = (methods,)
        if not isinstance(methods, list | tuple):
            raise TypeError(f"fault field 'methods' is a string or a list, not {methods!r}")
        return cls(methods=tuple(methods), **fields)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["methods"] = list(self.methods)
        return out

    def matches(self, method: str) -> bool:
        return not self.methods or method in self.methods


#: field → the types it accepts (JSON gives ints for floats; a bool is never a number here).
_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "probability": (int, float),
    "count": (int, type(None)),
    "skip": (int,),
    "when": (str,),
    "delay": (int, float),
    "size": (int,),
    "truncate": (str,),
    "status": (int,),
    "location": (str,),
    "encoding": (str,),
    "bom": (bool,),
}


def _check_types(spec: FaultSpec) -> None:
    for name, types in _TYPES.items():
        value = getattr(spec, name)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise TypeError(f"fault field {name!r} has the wrong type: {value!r}")
    if not all(isinstance(m, str) for m in spec.methods):
        raise TypeError(f"fault field 'methods' holds a non-string: {spec.methods!r}")


def _canonical(method: str) -> str:
    name = method.strip().lower()
    return "groups.subscribegrouptoken" if name == "groups.subscribetoken" else name


@dataclass(slots=True)
class _Rule:
    spec: FaultSpec
    seen: int = 0
    fired: int = 0


@dataclass(slots=True)
class FaultPlan:
    """The active fault rules; the first rule that fires wins."""

    seed: int = 0
    _rules: list[_Rule] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    #: Every fault delivered so far, as ``(method, kind)``.
    log: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(self, *specs: FaultSpec) -> None:
        self._rules.extend(_Rule(spec) for spec in specs)

    def set(self, specs: Iterable[FaultSpec]) -> None:
        """Replace every rule."""
        self.clear()
        self.add(*specs)

    def clear(self) -> None:
        """Remove every rule and restart the random sequence."""
        self._rules.clear()
        self._rng = random.Random(self.seed)

    @property
    def specs(self) -> list[FaultSpec]:
        return [rule.spec for rule in self._rules]

    def pick(self, method: str) -> FaultSpec | None:
        """The fault for this call of ``method`` (lower-case canonical name), if any."""
        for rule in self._rules:
            if self._fires(rule, method):
                self.log.append((method, rule.spec.kind))
                return rule.spec
        return None

    def noise(self, size: int) -> bytes:
        """Seeded random bytes for a ``garbage`` body."""
        return self._rng.randbytes(size)

    def _fires(self, rule: _Rule, method: str) -> bool:
        spec = rule.spec
        if not spec.matches(method):
            return False
        if spec.count is not None and rule.fired >= spec.count:
            return False
        rule.seen += 1
        if rule.seen <= spec.skip:
            return False
        if spec.probability < 1.0 and self._rng.random() >= spec.probability:
            return False
        rule.fired += 1
        return True
