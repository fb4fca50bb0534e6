"""Issue 5: N worker processes share one login through a SQLite or Redis token store."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agupshup.clock import FakeClock, SystemClock
from agupshup.emulator import ThrottleConfig
from agupshup.emulator.seed import DEMO_PHONE
from agupshup.tokenstore import LOCK_LEASE, RedisTokenStore, SqliteTokenStore

WORKER = Path(__file__).with_name("token_worker.py")


async def _workers(base_url: str, kind: str, where: str, n: int) -> None:
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, str(WORKER), base_url, kind, where)
        for _ in range(n)
    ]
    codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), timeout=60)
    assert codes == [0] * n


@pytest.mark.gupshup(throttle=ThrottleConfig.off())
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_four_processes_log_in_once(
    gupshup_server: Any, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = (
        str(tmp_path / "tokens.sqlite3")
        if kind == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    if kind == "redis":  # a fresh key space per run
        where = where.rsplit("/", 1)[0] + "/3"
    await _workers(gupshup_server.base_url, kind, where, 4)
    calls = gupshup_server.emulator.calls
    assert calls["users.login"] == 1
    assert calls["users.getmygroups"] == 4
    assert calls["users.logout"] == 0  # the token is shared: leaving one client keeps it
    assert gupshup_server.emulator.sessions.tokens_of(DEMO_PHONE)


async def test_the_token_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "tokens.sqlite3"
    store = SqliteTokenStore(path)
    await store.save("k", "IIQiU1107028137")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert await store.load("k") == "IIQiU1107028137"
    await store.discard("k", "someone-else's")  # not the token named: kept
    assert await store.load("k") == "IIQiU1107028137"
    await store.discard("k", "IIQiU1107028137")
    assert await store.load("k") is None


async def test_accounts_never_share_a_token(gupshup_server: Any, tmp_path: Path) -> None:
    from agupshup import Client
    from agupshup.emulator.seed import ALICE_PASSWORD, ALICE_PHONE, DEMO_PASSWORD
    from agupshup.session import Credentials

    store = SqliteTokenStore(tmp_path / "tokens.sqlite3")
    mine: dict[str, set[str]] = {}
    for phone, password in ((DEMO_PHONE, DEMO_PASSWORD), (ALICE_PHONE, ALICE_PASSWORD)):
        creds = Credentials(phone, password)  # no phone= given: the key comes from these
        async with Client(gupshup_server.base_url, credentials=creds, token_store=store) as c:
            mine[phone] = {g.group_name for g in await c.get_my_groups()}
    assert "jumpy" in mine[DEMO_PHONE]
    assert "cricket" in mine[ALICE_PHONE]
    assert gupshup_server.emulator.calls["users.login"] == 2


def _left_behind(path: Path, key: str, until: float) -> None:
    """The lock row of a process that died while logging in: never renewed, never deleted."""
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO locks VALUES (?, 'dead', ?)", (key, until))


async def test_a_dead_holder_s_lock_expires_on_the_injected_clock(tmp_path: Path) -> None:
    # The lease runs on the store's clock, so a fake clock that jumps through the polls frees
    # a dead worker's lock without a real wait.
    clock = FakeClock(wall=time.time(), autojump=True)
    store = SqliteTokenStore(tmp_path / "tokens.sqlite3", clock=clock)
    await store.load("key")  # the tables exist
    _left_behind(tmp_path / "tokens.sqlite3", "key", clock.time() + LOCK_LEASE)
    started = clock.monotonic()
    async with asyncio.timeout(60):  # a hang guard only: on a real clock this waits 30 s
        async with store.lock("key"):
            pass
    assert started + LOCK_LEASE <= clock.monotonic() <= started + LOCK_LEASE + 1
    await store.aclose()


async def _wait(clock: Any, seconds: float) -> None:
    """``seconds`` on ``clock``; a fake one moves a second at a time, with a real pause for
    the store's thread to answer the renewals and polls due meanwhile."""
    if not isinstance(clock, FakeClock):
        await clock.sleep(seconds)
        return
    for _ in range(int(seconds) or 1):
        await clock.advance(min(1.0, seconds))
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_live_holder_keeps_the_lock_past_its_lease(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A login slower than the lease (back-offs, a throttle wait) keeps the lock: it is renewed
    every third of the lease, so a second process never logs in beside it."""
    # SQLite leases on the injected clock; Redis on its own (real) one, so a short lease.
    clock: Any = FakeClock(wall=time.time()) if kind == "sqlite" else SystemClock()
    lease = LOCK_LEASE if kind == "sqlite" else 0.3
    store: Any
    if kind == "sqlite":
        store = SqliteTokenStore(tmp_path / "tokens.sqlite3", clock=clock)
    else:
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/5"
        store = RedisTokenStore(url, prefix=f"t{time.time_ns()}:", clock=clock, lease=lease)
    order: list[str] = []

    async def second() -> None:
        async with store.lock("key"):
            order.append("second")

    async with asyncio.timeout(30), store.lock("key"):
        waiter = asyncio.ensure_future(second())
        await _wait(clock, 3 * lease)
        order.append("first")
    async with asyncio.timeout(10):
        while not waiter.done():
            await _wait(clock, 0.1)
    assert order == ["first", "second"]
    await store.aclose()
