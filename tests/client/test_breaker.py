"""The login breaker on its own: a pure policy, driven with plain times (no server, no session)."""

from __future__ import annotations

import pytest

from agupshup import errors as E
from agupshup import wire
from agupshup.breaker import LoginBreaker

LOGIN = wire.LOGIN.name


def _refused(method: str = LOGIN) -> E.InvalidRequest:
    return E.InvalidRequest(method, 107, "refused")


def test_refusals_of_the_login_open_the_circuit_for_the_cooldown() -> None:
    breaker = LoginBreaker(max_failures=3, cooldown=60.0)
    for now in (0.0, 1.0):
        breaker.failed(_refused(), now)
        breaker.check(now)  # still closed
    breaker.failed(_refused(), 2.0)
    with pytest.raises(E.CircuitOpen) as raised:
        breaker.check(2.0)
    assert "3 login failures" in str(raised.value)
    with pytest.raises(E.CircuitOpen):
        breaker.check(61.9)
    breaker.check(62.0)  # the cooldown is over: one more login may be tried


def test_a_success_closes_the_circuit_and_resets_the_count() -> None:
    breaker = LoginBreaker(max_failures=2, cooldown=60.0)
    breaker.failed(_refused(), 0.0)
    breaker.succeeded()
    breaker.failed(_refused(), 1.0)
    breaker.check(1.0)  # one failure since the success, not two
    breaker.failed(_refused(), 2.0)
    with pytest.raises(E.CircuitOpen):
        breaker.check(2.0)
    breaker.succeeded()
    breaker.check(2.0)


@pytest.mark.parametrize("fault", [
    E.TransportError("reset"),
    E.QuotaExhausted("minute", 60.0),
    E.Closed("closed"),
    E.ThrottleLimitExceeded(LOGIN, 113, "slow down"),
    E.ServerError(LOGIN, 129, "busy"),
    RuntimeError("not the server's"),
])
def test_faults_never_count(fault: Exception) -> None:
    breaker = LoginBreaker(max_failures=1)
    breaker.failed(fault, 0.0)
    breaker.check(0.0)


def test_refusals_of_the_challenge_never_count() -> None:
    breaker = LoginBreaker(max_failures=1)
    breaker.failed(_refused(wire.get_challenge().spec.name), 0.0)
    breaker.check(0.0)


def test_a_terminal_failure_is_remembered_and_raised_as_a_copy() -> None:
    breaker = LoginBreaker(max_failures=3, terminal_cooldown=300.0)
    wrong = E.WrongPassword(LOGIN, 121, "wrong")
    breaker.failed(wrong, 10.0)
    raised = []
    for now in (10.0, 309.9):
        with pytest.raises(E.WrongPassword) as caught:
            breaker.check(now)
        raised.append(caught.value)
    assert raised[0] is not wrong
    assert raised[0] is not raised[1]
    breaker.check(310.0)  # tried again after the terminal cooldown
    breaker.succeeded()
    assert "terminal" not in repr(breaker)


def test_it_refuses_a_circuit_that_can_never_close() -> None:
    with pytest.raises(ValueError):
        LoginBreaker(max_failures=0)
