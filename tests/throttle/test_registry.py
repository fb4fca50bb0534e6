"""The registry on its own: one scheduler per egress, and options that disagree with it are
refused by name while it is in use (one test per option), replaced when it is not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agupshup.clock import FakeClock, SystemClock
from agupshup.errors import ValidationError
from agupshup.throttle import MemoryLedger, Scheduler, ThrottleEvent, Window


def hook(event: ThrottleEvent) -> None:
    """An ``on_event`` hook."""


def other_hook(event: ThrottleEvent) -> None:
    """Another one."""


CLOCK = FakeClock()
TIGHT, WIDE = (Window("minute", 10, 60.0, 10),), (Window("minute", 20, 60.0, 20),)

#: option → (the egress's value, another value), made anew for each test (a ledger serves one
#: scheduler). The clock is compared even when left out.
OPTIONS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "windows": lambda: (TIGHT, WIDE),
    "clock": lambda: (CLOCK, SystemClock()),
    "ledger": lambda: (MemoryLedger(), MemoryLedger()),
    "interactive_reserve": lambda: (0.25, 0.1),
    "pacing": lambda: (True, False),
    "on_event": lambda: (hook, other_hook),
}


@pytest.fixture
async def key() -> AsyncIterator[str]:
    """A fresh egress; its scheduler is closed at the end."""
    name = f"egress-{uuid.uuid4().hex}"
    yield name
    await Scheduler.shared(name, clock=CLOCK).aclose()


def egress_with(key: str, option: str, value: Any) -> Scheduler:
    """The egress's scheduler, made with ``option=value`` (and the fake clock)."""
    kw = {"clock": CLOCK, option: value}
    return Scheduler.shared(key, **kw)


@pytest.mark.parametrize("option", sorted(OPTIONS))
async def test_a_scheduler_in_use_refuses_a_different_option_by_name(
    key: str, option: str
) -> None:
    mine, other = OPTIONS[option]()
    sched = egress_with(key, option, mine).attach()
    assert getattr(sched, option) == (tuple(mine) if option == "windows" else mine)
    with pytest.raises(ValidationError) as refused:
        egress_with(key, option, other)
    assert refused.value.param == option
    assert f"Scheduler.shared: {option}: egress {key!r}: {option} " in str(refused.value)
    assert isinstance(refused.value, ValueError)  # what callers caught before
    assert egress_with(key, option, mine) is sched  # the same value joins
    if option != "clock":
        assert Scheduler.shared(key, clock=CLOCK) is sched  # left out: accepts
    sched.detach()


@pytest.mark.parametrize("option", sorted(OPTIONS))
async def test_an_unused_scheduler_is_replaced_by_other_options(key: str, option: str) -> None:
    mine, other = OPTIONS[option]()
    first = egress_with(key, option, mine)
    second = egress_with(key, option, other)
    assert second is not first
    assert getattr(second, option) == (tuple(other) if option == "windows" else other)
    await first.aclose()  # closing the replaced one leaves its successor registered
    assert Scheduler.shared(key, clock=second.clock) is second
    await second.aclose()


async def test_waiting_or_flying_calls_keep_it_in_use(key: str) -> None:
    sched = Scheduler.shared(key, clock=CLOCK, windows=TIGHT)
    async with sched.slot():
        with pytest.raises(ValidationError, match="windows"):
            Scheduler.shared(key, clock=CLOCK, windows=WIDE)
    assert not sched.in_use


async def test_the_default_ledger_is_made_only_for_a_new_scheduler(key: str) -> None:
    made: list[MemoryLedger] = []

    def default() -> MemoryLedger:
        made.append(MemoryLedger())
        return made[-1]

    sched = Scheduler.shared(key, clock=CLOCK, default_ledger=default).attach()
    assert Scheduler.shared(key, clock=CLOCK, default_ledger=default) is sched
    assert made == [sched.ledger]
    sched.detach()


async def test_a_closed_scheduler_leaves_the_registry(key: str) -> None:
    first = Scheduler.shared(key, clock=CLOCK)
    await first.aclose()
    assert first.closed
    assert Scheduler.shared(key, clock=CLOCK) is not first
