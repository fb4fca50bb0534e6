"""Shared fixtures. The emulator fixture ``gupshup_server`` comes from agupshup's pytest plugin.

Every async test ends with a leak check: no task of the test may outlive it. (Unclosed aiohttp
sessions and connectors are caught too: pytest turns their ResourceWarnings into errors.)
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

# Clients count in the per-host ledger file by default (a restarted bot still counts its last
# minute's calls); tests start servers on reused ports and must not find each other's counts.
# Tests of that default name a file of their own.
os.environ.setdefault("GUPSHUP_LEDGER", "memory")


@pytest_asyncio.fixture(autouse=True)
async def _no_leaked_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if not inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        return
    current = asyncio.current_task()
    for _ in range(5):  # let tasks that are finishing finish
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"tasks outlived the test: {leaked}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence; killed at the end."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is missing: `bash .ci/run` installs it (apt-get)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_redis(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _wait_for_redis(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)
