"""Fixtures of the throttle tests: a private redis-server, and ledgers of every kind."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from throttle_sim import LedgerFactory

from agupshup.clock import FakeClock
from agupshup.throttle import Ledger, MemoryLedger, RedisLedger, SqliteLedger


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence; killed at the end."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def ledger_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LedgerFactory]:
    """Makes ledgers of one kind that share storage (a file, a key); closes them at the end."""
    made: list[Ledger] = []
    kind = request.param
    key = f"test:{uuid.uuid4().hex}"
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    def make() -> Ledger:
        ledger: Ledger
        if kind == "memory":
            ledger = MemoryLedger()
        elif kind == "sqlite":
            ledger = SqliteLedger(tmp_path / "ledger.sqlite3", key=key, lease=3.0)
        else:
            ledger = RedisLedger(url, key=key, lease=3.0, server_time=False)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        await ledger.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
