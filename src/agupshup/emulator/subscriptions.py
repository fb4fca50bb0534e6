"""Two-phase subscription by SMS (``groups.subscribeGroupToken``).

Rules this module enforces:

* Phase I opens a ticket: a 32-hex-digit token for the caller and a 4-character code (A–Z, 0–9)
  texted to the phone. A phone may hold at most ``max_pending`` open tickets (code 5 beyond).
* Phase II must name the ticket's own phone and group, else the token is invalid (6). A wrong
  code is 7; the wrong code after ``max_failures`` wrong ones kills the ticket (9), and a dead
  ticket answers 9 from then on. The right code (case-insensitive) consumes the ticket.
* Tickets not confirmed within ``ttl`` emulator seconds vanish (then 6).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Literal

__all__ = ["SubscribeTicket", "Subscriptions"]

_CODE_ALPHABET = string.ascii_uppercase + string.digits

Verdict = Literal["ok", "token", "code", "dead"]


@dataclass(slots=True)
class SubscribeTicket:
    token: str
    phone: str
    group: str  # lower-case group key
    code: str
    created: float
    failures: int = 0
    dead: bool = False


class Subscriptions:
    """Open phase-I tickets."""

    __slots__ = ("_rng", "_tickets", "max_failures", "max_pending", "ttl")

    def __init__(
        self,
        rng: random.Random,
        *,
        ttl: float = 86400.0,
        max_pending: int = 5,
        max_failures: int = 5,
    ) -> None:
        self._rng = rng
        self.ttl = ttl
        self.max_pending = max_pending
        self.max_failures = max_failures
        self._tickets: dict[str, SubscribeTicket] = {}

    def pending(self, phone: str, now: float) -> int:
        """How many live, unconfirmed tickets ``phone`` holds."""
        self._expire(now)
        return sum(1 for t in self._tickets.values() if t.phone == phone and not t.dead)

    def open(self, phone: str, group: str, now: float) -> SubscribeTicket:
        token = f"{self._rng.getrandbits(128):032x}"
        code = "".join(self._rng.choice(_CODE_ALPHABET) for _ in range(4))
        ticket = SubscribeTicket(token, phone, group.lower(), code, now)
        self._tickets[token] = ticket
        return ticket

    def confirm(self, token: str, phone: str, group: str, code: str, now: float) -> Verdict:
        self._expire(now)
        ticket = self._tickets.get(token.strip().lower())
        if ticket is None or ticket.phone != phone or ticket.group != group.lower():
            return "token"
        if ticket.dead:
            return "dead"
        if code.strip().upper() != ticket.code:
            ticket.failures += 1
            if ticket.failures > self.max_failures:
                ticket.dead = True
                return "dead"
            return "code"
        del self._tickets[ticket.token]
        return "ok"

    def _expire(self, now: float) -> None:
        stale = [k for k, t in self._tickets.items() if now - t.created >= self.ttl]
        for key in stale:
            del self._tickets[key]
