"""The login circuit breaker: when a login may be tried at all, given how the last ones ended.

Rules this module enforces:

* Terminal login failures (wrong password, not activated, disabled, bad phone or country code,
  a local validation error) are remembered: until ``terminal_cooldown`` has passed, every
  caller gets a copy of the same error without another attempt.
* Other refusals of ``users.login`` itself open the circuit after ``max_failures`` in a row,
  for ``cooldown`` seconds (:class:`~agupshup.errors.CircuitOpen`).
* Faults (transport errors, 129, 113, a full quota, a closed client) and refusals of the
  challenge say nothing about the credentials: they never count.
* A login that succeeds closes the circuit and forgets the terminal error.
* Pure: no I/O, no clock of its own. Every method takes ``now`` (the session's
  ``clock.monotonic()``), so a test drives it with plain numbers or a fake clock.
"""

from __future__ import annotations

import copy

from agupshup import errors as E
from agupshup import wire
from agupshup.retry import RETRYABLE

__all__ = ["LoginBreaker"]

_TERMINAL: tuple[type[E.GupshupError], ...] = (
    E.WrongPassword,
    E.NotActivated,
    E.AccountDisabled,
    E.InvalidCountryCode,
    E.InvalidPhone,
    E.ValidationError,
)
#: Login failures that say nothing about the credentials: they never open the circuit.
_TRANSIENT: tuple[type[E.GupshupError], ...] = (
    *RETRYABLE,
    E.ThrottleLimitExceeded,
    E.QuotaExhausted,
    E.LedgerError,
    E.Closed,
)


class LoginBreaker:
    """Counts how logins end, and refuses to start one while the circuit is open."""

    __slots__ = ("_cooldown", "_failures", "_max_failures", "_open_until", "_terminal",
                 "_terminal_cooldown")

    def __init__(
        self, *, max_failures: int = 3, cooldown: float = 60.0, terminal_cooldown: float = 300.0
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self._max_failures = max_failures
        self._cooldown = cooldown
        self._terminal_cooldown = terminal_cooldown
        self._failures = 0
        self._open_until = float("-inf")
        self._terminal: E.GupshupError | None = None

    def check(self, now: float) -> None:
        """Raise the remembered terminal error, or :class:`~agupshup.errors.CircuitOpen`, while
        the circuit is open at ``now``."""
        if now >= self._open_until:
            return
        if self._terminal is not None:
            # A copy for each caller: one shared object would gather every caller's traceback
            # and context, and a caller changing it would change it for all.
            raise copy.copy(self._terminal)
        raise E.CircuitOpen(self._open_until, f"{self._failures} login failures in a row")

    def succeeded(self) -> None:
        self._failures, self._terminal = 0, None
        self._open_until = float("-inf")

    def failed(self, failure: BaseException, now: float) -> None:
        """A login ended in ``failure`` at ``now``: remember it, count it, or ignore it."""
        if isinstance(failure, _TERMINAL):
            self._terminal = failure
            self._open_until = now + self._terminal_cooldown
        elif isinstance(failure, _TRANSIENT) or not isinstance(failure, E.APIError):
            return
        elif failure.method == wire.LOGIN.name:  # a refused challenge says nothing either
            self._failures += 1
            if self._failures >= self._max_failures:
                self._open_until = now + self._cooldown

    @property
    def open_until(self) -> float:
        """When the circuit closes again (in the past while it is closed)."""
        return self._open_until

    def __repr__(self) -> str:
        state = "terminal" if self._terminal is not None else f"{self._failures} failures"
        return f"LoginBreaker({state}, open_until={self._open_until:.3f})"
