"""A client and an in-process emulator on one virtual clock, for the aggregator tests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agupshup import Client
from agupshup.aggregate import Follower, follow_groups
from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.core import Emulator
from agupshup.emulator.traffic import READER_PASSWORD, READER_PHONE, many_groups_seed
from agupshup.models import Message
from agupshup.retry import RetryPolicy
from agupshup.transport import MockTransport, RawResponse
from agupshup.virtualclock import VirtualClock, run_virtual

T = TypeVar("T")


@dataclass
class Sim:
    """Groups owned by one user; the reader joined ``joined``; ``private`` are private."""

    groups: list[str]
    joined: Iterable[str] = ()
    private: Iterable[str] = ()
    clock: VirtualClock = field(default_factory=VirtualClock)
    emulator: Emulator = field(init=False)
    posted: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seed = many_groups_seed(self.groups, joined=self.joined, private=self.private)
        self.emulator = Emulator(EmulatorConfig(clock=self.clock, seed=seed))

    #: Called with each call's method before the emulator sees it: an exception to raise
    #: instead (an outage, a fault), or None.
    fault: Callable[[str], Exception | None] | None = None

    def client(self) -> Client:
        # A seeded back-off: a run is then the same run every time (Hypothesis replays it).
        return Client(
            "http://emulator.invalid", phone=READER_PHONE, password=READER_PASSWORD,
            clock=self.clock, transport=MockTransport(self._handle),
            retry=RetryPolicy(rng=random.Random(0)),
        )

    #: Virtual seconds each call takes (0: answered at once).
    latency: float = 0.0

    def _handle(self, fields: Sequence[tuple[str, str]]) -> Awaitable[RawResponse]:
        return self._answer(list(fields))

    async def _answer(self, fields: list[tuple[str, str]]) -> RawResponse:
        method = dict(fields).get("method", "")
        exc = self.fault(method) if self.fault is not None else None
        if exc is not None:
            raise exc
        if self.latency:
            await self.clock.sleep(self.latency)
        answer = self.emulator.request(fields)
        return RawResponse(200, answer.content_type, answer.body)

    @asynccontextmanager
    async def follow(self, groups: Iterable[str], **kw: Any) -> AsyncIterator[Follower]:
        """A follower of ``groups`` through a fresh client, both closed on the way out."""
        async with self.client() as client, follow_groups(client, groups, **kw) as follower:
            yield follower

    def post(self, group: str, n: int = 1) -> list[int]:
        ids = [self.emulator.insert_message(group, f"{group} {len(self.posted)}")
               for _ in range(n)]
        for ident in ids:
            self.posted[ident] = group
        return ids

    def calls(self, method: str) -> int:
        return self.emulator.calls[method]

    def run(self, main: Callable[[], Awaitable[T]], limit: float = 86_400.0) -> T:
        """Run ``main`` in virtual time; fail if it is not done within ``limit`` virtual seconds
        (a follower waiting for nothing would otherwise run virtual time on forever)."""

        async def go() -> T:
            task = asyncio.ensure_future(main())
            timer = asyncio.ensure_future(self.clock.sleep(limit))
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
            timer.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise AssertionError(f"not done within {limit} virtual seconds")
            return task.result()

        return asyncio.run(run_virtual(self.clock, go()))


async def take(follower: Follower, n: int) -> list[Message]:
    """The next ``n`` messages (bounded: a follower that stalls leaves the virtual clock
    running, which the caller's virtual deadline ends)."""
    return [await anext(follower) for _ in range(n)]
