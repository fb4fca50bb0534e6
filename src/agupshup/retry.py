"""When a failed call may be sent again, and after how long.

Rules this module enforces:

* Only reads are retried after a fault (timeouts, resets, 5xx, proxy pages, bad bodies, 129);
  a write whose outcome is unknown is resolved by the client, never resent blindly.
* A 113 is proof the call did not run: any call may be resent, but only through the
  scheduler, which holds it until the window rolls over.
* Backoff is exponential with full jitter, bounded both in attempts and in total time; every
  attempt is admitted by the scheduler, so retries are paid from the same budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from agupshup import errors as E

__all__ = ["RETRYABLE", "RetryPolicy"]

#: Faults after which a read may be resent.
RETRYABLE: tuple[type[E.GupshupError], ...] = (E.TransportError, E.ServerError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` in all (1 = no retry); the delays never add up to more than ``total``."""

    attempts: int = 4
    base: float = 0.25
    cap: float = 8.0
    total: float = 30.0
    #: How many times a call refused with 113 may go back through the scheduler.
    throttle_attempts: int = 3
    #: How many times a post whose outcome is unknown may be resent to resolve it (safe: the
    #: server's duplicate check, 128, proves an earlier attempt landed).
    resolve_attempts: int = 8
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, elapsed: float, attempts: int | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt + 1 >= (self.attempts if attempts is None else attempts):
            return None
        wait = self.rng.uniform(0, min(self.cap, self.base * 2**attempt))
        if elapsed + wait > self.total:
            return None
        return wait


