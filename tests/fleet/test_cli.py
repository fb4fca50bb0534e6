"""``agupshup fleet worker`` and ``fleet status`` as an operator runs them: child processes against
the loopback emulator and a real redis-server; metrics scraped over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import aiohttp

from agupshup.emulator.server import EmulatorServer
from streams.helpers import group_ids

from .conftest import ADDRESSES, GROUPS, SCALE

DEADLINE = 45.0


async def _agupshup(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agupshup.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )


async def test_a_worker_prints_messages_events_and_metrics_and_status_shows_it(
    gupshup_server: EmulatorServer, redis_url: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    ns = f"test:{uuid.uuid4().hex}"
    groups = tmp_path / "groups.txt"
    groups.write_text("\n".join(GROUPS) + "\n")
    common = ["--redis", redis_url, "--prefix", ns, "--feed", f"{ns}:feed"]
    worker = await _agupshup(
        "fleet", "worker", "--base-url", gupshup_server.base_url, "--time-scale", str(SCALE),
        *common, "--local-address", ADDRESSES[0], "--groups", str(groups), "--lease", "2",
        "--metrics-port", str(unused_tcp_port),
    )
    assert worker.stdout is not None
    everything = {i for g in GROUPS for i in group_ids(gupshup_server.emulator, g)}
    try:
        got: set[int] = set()
        async with asyncio.timeout(DEADLINE):
            while got != everything:
                got.add(json.loads(await worker.stdout.readline())["id"])
        status = await _agupshup("fleet", "status", *common)
        out, err = await asyncio.wait_for(status.communicate(), DEADLINE)
        assert status.returncode == 0, err
        assert "members: 1; groups claimed: 12" in out.decode()
        assert f"address={ADDRESSES[0]}" in out.decode()
        assert f"feed {ns}:feed: {len(everything)} entries" in out.decode()
        url = f"http://127.0.0.1:{unused_tcp_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            metrics = await response.text()
        assert f'agupshup_fleet_delivery_delay_seconds_count{{address="{ADDRESSES[0]}"}}' in metrics
        assert 'agupshup_fleet_calls_limit{address="127.0.0.2",window="minute"}' in metrics
    finally:
        worker.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(worker.communicate(), DEADLINE)
    lines = err.decode().splitlines()
    assert worker.returncode == 0, lines
    events = [line.split()[1] for line in lines if line.startswith("fleet:")]
    assert events[:2] == ["joined", "took"]
    assert lines[-1].startswith("fleet: left")
