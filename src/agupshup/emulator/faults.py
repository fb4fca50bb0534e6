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
* Probabilities and counts are checked here; how each kind is delivered over HTTP lives in
  :mod:`agupshup.emulator.sabotage`.
"""

from __future__ import annotations

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
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


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

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if self.when not in ("before", "after") or self.truncate not in ("length", "cut"):
            raise ValueError("when is before|after; truncate is length|cut")
        object.__setattr__(self, "methods", tuple(_canonical(m) for m in self.methods))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSpec:
        """A spec from JSON-ish data (``methods`` may be a string or a list)."""
        fields = dict(data)
        methods = fields.pop("methods", fields.pop("method", ()))
        if isinstance(methods, str):
            methods = (methods,)
        return cls(methods=tuple(methods), **fields)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["methods"] = list(self.methods)
        return out

    def matches(self, method: str) -> bool:
        return not self.methods or method in self.methods


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
