"""When a failed call may be sent again, and after how long.

Rules this module enforces:

* Only reads are retried after a fault (timeouts, resets, 5xx, proxy pages, bad bodies, 129);
  a write whose outcome is unknown is resolved by the client, never resent blindly.
* A 113 is proof the call did not run: any call may be resent, but only through the
  scheduler, which holds it until the window rolls over.
* Backoff is exponential with full jitter, bounded both in attempts and in total time; every
  attempt is admitted by the scheduler, so retries are paid from the same budget.
* The login path (``users.getChallenge``, ``users.login``) is retried like a read; a login whose
  outcome is unknown is redone with a fresh challenge, since the old one is spent either way.
* A dead token is replaced as often as other calls make progress with the tokens that follow
  (``relogins`` bounds the replacements without progress, ``token_refusals`` all of them).
* Nothing waits past a call's deadline (``max_wait``): a back-off that would end after it is
  not taken.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from agupshup import errors as E
from agupshup.clock import Clock

__all__ = ["RETRYABLE", "RetryPolicy"]

log = logging.getLogger("agupshup.retry")

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
    #: How many pages (15 messages) of a group's head may be read to find a post whose outcome
    #: is unknown, before giving up with :class:`~agupshup.errors.OutcomeUnknown`.
    resolve_pages: int = 20
    #: Seconds of slack when deciding that a message is older than a post's first attempt: the
    #: bound is taken on the server's own clock, so this only covers the server's clock steps.
    clock_tolerance: float = 60.0
    #: Seconds after an attempt's answer was lost (timeout, reset, a proxy's 5xx) during which
    #: the server may still store it: it may run a request after we stopped waiting. A post
    #: is proven absent only by a read of the group that starts after that; the throttle keeps
    #: such a call's place as long (a shortest window).
    late_landing: float = 60.0
    #: Token refusals a call may meet in a row with no call of this client succeeding between
    #: them (a server whose fresh tokens never work).
    relogins: int = 3
    #: Token refusals a call may meet in all (each costs one call).
    token_refusals: int = 24
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    #: Told the seconds of each back-off before it is slept (the CLI's wait line).
    on_back_off: Callable[[float], None] | None = field(default=None, compare=False, repr=False)

    def delay(
        self,
        attempt: int,
        elapsed: float,
        attempts: int | None = None,
        left: float | None = None,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up (also when the
        wait would outlast ``left``, the seconds to the call's deadline)."""
        if attempt + 1 >= (self.attempts if attempts is None else attempts):
            return None
        wait = self.rng.uniform(0, min(self.cap, self.base * 2**attempt))
        if elapsed + wait > self.total or (left is not None and wait >= left):
            return None
        return wait

    async def back_off(
        self,
        clock: Clock,
        what: str,
        attempt: int,
        elapsed: float,
        *,
        attempts: int | None = None,
        left: float | None = None,
    ) -> bool:
        """Sleep on ``clock`` before attempt ``attempt + 1`` of ``what`` (see :meth:`delay`);
        False, at once, when the policy or the deadline leaves no further attempt."""
        wait = self.delay(attempt, elapsed, attempts, left)
        if wait is None:
            return False
        log.info("%s; attempt %d in %.2fs", what, attempt + 2, wait)
        if self.on_back_off is not None:
            self.on_back_off(wait)
        await clock.sleep(wait)
        return True
