"""Run the emulator in a separate process, so that its CPU and memory are not the client's."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin_apart() -> tuple[set[int], set[int]] | None:
    """CPU sets for (this process, the server), so that the two never share a core and a
    CPU figure does not depend on where the scheduler happened to put them."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    cores = sorted(os.sched_getaffinity(0))
    return {cores[0]}, set(cores[1:])


@contextlib.contextmanager
def emulator_process(*extra: str, pinned: bool = False) -> Iterator[str]:
    """Yield the base URL of an emulator in a child process (throttle off unless told)."""
    port = free_port()
    args = [sys.executable, "-m", "agupshup.emulator", "--host", "127.0.0.1", "--port", str(port)]
    args += list(extra) or ["--throttle", "off"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sets = pin_apart() if pinned else None
    if sets is not None:
        os.sched_setaffinity(proc.pid, sets[1])
        os.sched_setaffinity(0, sets[0])
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    url = f"{base}/GupshupAPI/rest?method=users.getChallenge&v=1.0"
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("emulator did not start")
