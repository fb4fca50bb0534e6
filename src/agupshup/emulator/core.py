"""The emulator without HTTP: one call in, one answer out.

Rules this module enforces:

* Every call received is counted in :attr:`Emulator.calls` under its method's lower-case
  canonical name (the raw lower-cased value for unknown methods, ``""`` when missing), including
  calls the throttle refuses.
* Checks run in protocol.md §1's order: throttle (113) → method (109/108) → ``v`` (107) → ``format``
  (102) → the handler's own checks (required, types, values, token, business rules).
* Errors found before the format is validated are written in the requested format when it is
  valid, else in the method's default (XML when the method is unknown); 102 is always written in
  the method's default.
* A call the throttle admits may be picked for a fault (:mod:`agupshup.emulator.faults`); how the
  fault is delivered is up to the HTTP layer, which asks :meth:`Emulator.execute` for the answer
  when the call is to run and :meth:`Emulator.internal_error` when it is not.
* Nothing secret is logged: only method names, codes and client addresses.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agupshup.emulator.codes import ApiError, Failure, text
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.context import Ctx, Result, Site
from agupshup.emulator.envelope import CONTENT_TYPES, Format, Node, envelope, render, s
from agupshup.emulator.faults import FaultPlan, FaultSpec
from agupshup.emulator.methods import MethodSpec, resolve
from agupshup.emulator.outbox import Outbox
from agupshup.emulator.params import Params
from agupshup.emulator.poster import PosterThrottle
from agupshup.emulator.seed import build_world, load_seed
from agupshup.emulator.sessions import Sessions, login_rand
from agupshup.emulator.state import World
from agupshup.emulator.subscriptions import Subscriptions
from agupshup.emulator.throttle import Tag, Throttle
from agupshup.emulator.timebase import Timebase

__all__ = ["Answer", "Call", "Emulator"]

log = logging.getLogger("agupshup.emulator")


@dataclass(slots=True)
class Call:
    """A received call, before it runs."""

    params: Params
    ip: str
    spec: MethodSpec | None
    key: str
    fmt: Format
    tags: tuple[Tag, ...]
    refused: bool = False
    fault: FaultSpec | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """An API answer: always HTTP 200."""

    body: bytes
    fmt: Format

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


class Emulator:
    """The state and behaviour of one emulated GupShup server."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config = config or EmulatorConfig()
        self.timebase = Timebase(config.clock, config.time_scale)
        world, salt = build_world(load_seed(config.seed))
        rng = random.Random(config.random_seed)
        self.site = Site(
            config=config,
            world=world,
            sessions=Sessions(
                rng,
                salt,
                challenge_ttl=config.challenge_ttl,
                token_idle=config.token_idle,
                token_uses=config.token_uses,
            ),
            subscriptions=Subscriptions(rng, ttl=config.subscription_ttl),
            outbox=Outbox(),
            poster=PosterThrottle(config.poster_limit, config.poster_window),
        )
        self.throttle = Throttle(config.throttle)
        self.faults = FaultPlan(config.fault_seed)
        self.faults.add(*config.faults)
        #: Calls received per method (lower-case canonical name), 113s included.
        self.calls: Counter[str] = Counter()

    # -- state, for tests and tools -------------------------------------------------------

    @property
    def world(self) -> World:
        return self.site.world

    @property
    def sessions(self) -> Sessions:
        return self.site.sessions

    @property
    def outbox(self) -> Outbox:
        return self.site.outbox

    @property
    def stored(self) -> Counter[str]:
        """Items stored through the API, by kind: ``message``, ``reply``, ``invite``."""
        return self.site.stored

    @property
    def posts(self) -> int:
        """Messages stored by ``groups.postMessage``."""
        return self.site.stored["message"]

    @property
    def throttled(self) -> Counter[str]:
        """113s served, per client IP."""
        return self.throttle.refusals

    def reset_counts(self) -> None:
        """Zero the call, store, 113 and fault counters (not the throttle windows)."""
        self.calls.clear()
        self.site.stored.clear()
        self.throttle.refusals.clear()
        self.faults.log.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "stored": dict(self.site.stored),
            "posts": self.posts,
            "throttled": dict(self.throttle.refusals),
            "faults": [{"method": m, "kind": k} for m, k in self.faults.log],
        }

    def login_rand(self, password: str, challenge: str) -> str:
        """The ``rand`` for ``password`` and ``challenge`` under this site's salt."""
        return login_rand(password, self.site.sessions.salt, challenge)

    def issue_token(self, phone: str) -> str:
        """A login token for ``phone`` without the API (no call is counted)."""
        return self.site.sessions.issue_token(phone, self.timebase.now())

    def insert_message(self, group: str, text: str, sender_phone: str | None = None) -> int:
        """Store a message in ``group`` as if its owner (or ``sender_phone``) posted it, without
        a call: for tests and demos that need traffic. Returns the new message's id."""
        target = self.world.group(group)
        if target is None:
            raise KeyError(f"no group {group!r}")
        message = self.world.post(
            target, text, sender_phone or target.owner, self.timebase.now_ms()
        )
        return message.id

    # -- calls ----------------------------------------------------------------------------

    def receive(self, params: Mapping[str, str] | Iterable[tuple[str, str]], ip: str) -> Call:
        """Count the call, pass it through the throttle and pick its fault."""
        p = Params(params)
        raw_method = p.get("method")
        spec = resolve(raw_method)
        key = spec.key if spec else (raw_method or "").lower()
        self.calls[key] += 1
        decision = self.throttle.admit(ip, self.timebase.now())
        call = Call(p, ip, spec, key, _answer_format(p, spec), decision.tags)
        if not decision.admitted:
            call.refused = True
            log.info("113 for %s from %s", key or "-", ip)
        elif spec is not None:
            call.fault = self.faults.pick(key)
        return call

    def execute(self, call: Call) -> Answer:
        """Run the call (unless refused) and write its answer."""
        if call.refused:
            first = call.tags[0]
            return self._answer(call, None, [(113, text(call.key, 113, first.period, first.limit))])
        try:
            result = self._run(call)
        except ApiError as exc:
            log.debug("%s -> %s", call.key or "-", exc)
            return self._answer(call, None, exc.failures)
        return self._answer(call, result, result.errors)

    def internal_error(self, call: Call) -> Answer:
        """A 129 answer for the call, which did not run."""
        return self._answer(call, None, [(129, text(call.key, 129))])

    def request(
        self, params: Mapping[str, str] | Iterable[tuple[str, str]], ip: str = "127.0.0.1"
    ) -> Answer:
        """One call without HTTP; faults other than ``error129`` are ignored."""
        call = self.receive(params, ip)
        if call.fault is not None and call.fault.kind == "error129":
            if call.fault.when == "after":
                self.execute(call)
            return self.internal_error(call)
        return self.execute(call)

    def _run(self, call: Call) -> Result:
        spec, p = call.spec, call.params
        if spec is None:
            raw = p.get("method")
            raise ApiError.of("", 109, "method") if raw is None else ApiError.of("", 108, raw)
        ctx = Ctx(self.site, spec.key, spec.name, p, self.timebase.now())
        if spec.prelude is not None:
            spec.prelude(ctx)
        version = p.raw("v")
        if version is None:
            ctx.fail(109, "v")
        if version.strip() not in ("", "1.0"):
            ctx.fail(107, version)
        requested = (p.get("format") or "").lower()
        if requested not in ("", "xml", "json"):
            ctx.fail(102, p.get("format"))
        return spec.handler(ctx)

    def _answer(self, call: Call, result: Result | None, errors: list[Failure]) -> Answer:
        tags: list[dict[str, Node]] = [
            {"period": t.period, "count": s(t.count), "warn": s(t.warn), "limit": s(t.limit)}
            for t in call.tags
        ]
        tree = envelope(
            status=result.status if result else None,
            payload=result.payload if result else None,
            errors=errors,
            throttle=tags,
        )
        return Answer(render(tree, call.fmt), call.fmt)


def _answer_format(p: Params, spec: MethodSpec | None) -> Format:
    requested = (p.get("format") or "").lower()
    if requested == "xml":
        return "xml"
    if requested == "json":
        return "json"
    return spec.default_format if spec else "xml"
