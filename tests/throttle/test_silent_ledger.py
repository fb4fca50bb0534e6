"""A shared ledger that stops answering must not stretch a call past its ``max_wait``.

Redis (or its network) may go silent without closing the connection: a client made without a
socket timeout then waits forever for the script's answer. The scheduler bounds every ledger
round trip a caller waits on by that caller's deadline, on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from agupshup.clock import FakeClock
from agupshup.errors import DeadlineExceeded
from agupshup.throttle import RedisLedger, Scheduler, Window
from agupshup.throttle._scheduler import LEDGER_GRACE

W = [Window("minute", 3, 10.0, 3)]
#: A real-time bound on how long the test waits for something that must happen at once: it
#: only turns a hang into a failure, and is no measure of anything.
HANG = 10.0


class Mute:
    """A TCP proxy to Redis that can stop answering without closing anything."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.silent = False
        self.swallowed = asyncio.Event()  # bytes arrived while silent
        self.server: asyncio.Server | None = None
        self.redis: Redis | None = None
        self.scheduler: Scheduler | None = None
        self.tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> RedisLedger:
        """A ledger through the proxy, on a client without a socket timeout (redis-py's
        default is 5 s; nothing obliges a caller to keep one)."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.redis = Redis.from_url(f"redis://127.0.0.1:{port}", socket_timeout=None)
        return RedisLedger(self.redis, key=f"test:{uuid.uuid4().hex}", server_time=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                                 return_exceptions=True)
        finally:
            for end in (writer, up_writer):
                end.close()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await end.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.silent:
                self.swallowed.set()
                continue  # the request is lost in a network that says nothing
            writer.write(data)
            await writer.drain()

    def scheduled(self, ledger: RedisLedger) -> Scheduler:
        self.scheduler = Scheduler(W, clock=FakeClock(), ledger=ledger)
        return self.scheduler

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.scheduler is not None:
            await asyncio.wait_for(self.scheduler.aclose(), HANG)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.redis.aclose(), HANG)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def mute(redis_url: str) -> AsyncIterator[Mute]:
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    proxy = Mute(host, int(port))
    yield proxy
    await proxy.close()


async def until_swallowed(mute: Mute) -> None:
    await asyncio.wait_for(mute.swallowed.wait(), HANG)


async def test_a_silent_ledger_refuses_at_the_deadline(mute: Mute) -> None:
    sched = mute.scheduled(await mute.start())
    clock = sched.clock
    assert isinstance(clock, FakeClock)
    async with sched.slot(max_wait=1.0):
        pass  # the ledger answers: connected, scripts loaded
    mute.silent = True

    async def call() -> None:
        async with sched.slot(max_wait=1.0):
            raise AssertionError("admitted by a ledger that does not answer")

    task = asyncio.create_task(call())
    await until_swallowed(mute)
    await clock.advance(0.5)
    assert not task.done()  # the deadline has not come
    await clock.advance(0.5)
    done, _ = await asyncio.wait({task}, timeout=HANG)
    assert done, "max_wait ignored: still waiting for the ledger past the deadline"
    with pytest.raises(DeadlineExceeded):
        task.result()

    mute.swallowed.clear()
    at_once = asyncio.create_task(call_now(sched))
    await until_swallowed(mute)
    await clock.advance(LEDGER_GRACE / 2)
    assert not at_once.done()  # a round trip asked at the deadline gets its grace
    await clock.advance(LEDGER_GRACE / 2)
    done, _ = await asyncio.wait({at_once}, timeout=HANG)
    assert done, "max_wait=0 waits for a ledger that does not answer"
    with pytest.raises(DeadlineExceeded):
        at_once.result()


async def call_now(sched: Scheduler) -> None:
    async with sched.slot(max_wait=0):
        raise AssertionError("admitted by a ledger that does not answer")


async def test_a_silent_release_does_not_hold_the_caller_past_its_deadline(mute: Mute) -> None:
    sched = mute.scheduled(await mute.start())
    clock = sched.clock
    assert isinstance(clock, FakeClock)

    async def call() -> str:
        async with sched.slot(max_wait=1.0):
            mute.silent = True  # the answer came; the ledger goes quiet before the release
        return "answered"

    task = asyncio.create_task(call())
    await until_swallowed(mute)
    await clock.advance(1.0)
    done, _ = await asyncio.wait({task}, timeout=HANG)
    assert done, "the caller waits for a release the ledger never confirms"
    assert task.result() == "answered"  # the call itself succeeded; its entry counts on
