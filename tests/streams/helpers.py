"""Helpers of the stream tests: seeds with big groups, growing them, in-process calls."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Sequence
from typing import Any

from agupshup import Client, FakeClock
from agupshup.emulator.core import Emulator
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE, load_seed
from agupshup.transport import MockTransport, RawResponse

#: Extra groups of the stream tests: name → seeded messages.
BIG_GROUPS = {"bulk": 1000, "bulk1005": 1005, "bulk1500": 1500, "quiet": 0, "few": 7}


def stream_seed(groups: dict[str, int] | None = None, *, many: int = 0, each: int = 0) -> Any:
    """The default seed plus ``groups`` (name → message count) and ``many`` groups ``g0000``…
    of ``each`` messages, all owned by the demo user."""
    seed = copy.deepcopy(dict(load_seed(None)))
    extra = dict(BIG_GROUPS if groups is None else groups)
    extra.update({f"g{i:04d}": each for i in range(many)})
    for n, (name, count) in enumerate(extra.items()):
        group: dict[str, Any] = {"name": name, "owner": DEMO_PHONE, "created_on": 1262304000000}
        if count:
            group["messages"] = {
                "count": count,
                "text": f"{name} message {{n}}",
                "start": 1275350400000 + n,
                "step": 1000,
            }
        seed["groups"].append(group)
    return seed


def insert(emulator: Emulator, group: str, n: int = 1, text: str = "new") -> list[int]:
    """Post ``n`` messages to ``group`` straight into the emulator's state; their ids."""
    world = emulator.world
    target = world.group(group)
    assert target is not None, group
    now = emulator.timebase.now_ms()
    return [world.post(target, f"{text} {i}", DEMO_PHONE, now).id for i in range(n)]


def group_ids(emulator: Emulator, group: str) -> list[int]:
    """Every message id of ``group``, oldest first."""
    target = emulator.world.group(group)
    assert target is not None
    return [m.id for m in target.messages]


def demo_client(base_url: str, **kw: Any) -> Client:
    kw.setdefault("throttle", None)
    return Client(base_url, phone=DEMO_PHONE, password=DEMO_PASSWORD, **kw)


def direct_transport(
    emulator: Emulator, on_call: Callable[[Sequence[tuple[str, str]]], None] | None = None
) -> MockTransport:
    """A transport that hands each call to ``emulator`` in-process (no sockets, no waiting)."""

    def handler(fields: Sequence[tuple[str, str]]) -> RawResponse:
        if on_call is not None:
            on_call(fields)
        answer = emulator.request(list(fields))
        return RawResponse(200, answer.content_type, answer.body)

    return MockTransport(handler)


def method_of(fields: Sequence[tuple[str, str]]) -> str:
    return dict(fields).get("method", "").lower()


async def settle(rounds: int = 200) -> None:
    """Let every runnable task run (in-process calls complete in a few loop turns)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def run_clock(clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    """Move ``clock`` on by ``seconds`` in ``step``s, letting tasks run after each step."""
    moved = 0.0
    while moved < seconds:
        await clock.advance(step)
        await settle()
        moved += step
