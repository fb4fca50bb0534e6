"""The installed entry points as a user runs them: ``agupshup …`` and ``python -m …`` in real
processes, plus ``demo``, ``emulator`` and ``widget`` in-process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

import pytest

from agupshup.emulator import EmulatorThread

from .conftest import ENV_KEYS, Cli

AGUPSHUP = shutil.which("agupshup")
TIMEOUT = 30.0


class Proc:
    """A child process whose stdout and stderr are collected by threads, so a test can wait
    for a prompt that has no newline yet."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.p = subprocess.Popen(
            list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True,  # no controlling terminal: prompts read stdin
        )
        self.out = bytearray()
        self.err = bytearray()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.p.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _pump(stream: object, into: bytearray) -> None:
        read = stream.read1  # type: ignore[attr-defined]
        while chunk := read(4096):
            into.extend(chunk)

    def wait_for(self, text: str, *, err: bool = True, timeout: float = TIMEOUT) -> str:
        buf = self.err if err else self.out
        deadline = time.monotonic() + timeout
        while text.encode() not in buf:
            exited = self.p.poll() is not None and text.encode() not in buf
            if exited or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never came; stdout={bytes(self.out)!r} "
                                     f"stderr={bytes(self.err)!r}")
            time.sleep(0.02)
        return buf.decode()

    def send(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def finish(self, timeout: float = TIMEOUT) -> int:
        code = self.p.wait(timeout)
        self._close(timeout)
        return code

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self._close(TIMEOUT)

    def _close(self, timeout: float) -> None:
        for t in self._readers:
            t.join(timeout)
        for stream in (self.p.stdin, self.p.stdout, self.p.stderr):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.fixture
def child_env(emulator: EmulatorThread) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(GUPSHUP_BASE_URL=emulator.base_url, GUPSHUP_LEDGER="memory",
               PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.mark.skipif(AGUPSHUP is None, reason="the agupshup script is not installed")
def test_subscribe_in_a_real_process(
    emulator: EmulatorThread, child_env: dict[str, str], procs: list[Proc]
) -> None:
    assert AGUPSHUP is not None
    proc = Proc([AGUPSHUP, "subscribe", "9812345678", "cricket"], child_env)
    procs.append(proc)
    proc.wait_for("Code from the SMS: ")
    # the code the phone received, as a test harness reads it: GET /_emulator/sms
    with urllib.request.urlopen(emulator.base_url + "/_emulator/sms?phone=9812345678") as r:
        body = r.read().decode()
    code = emulator.emulator.outbox.last_code("9812345678")
    assert code is not None
    assert code in body
    proc.send(code)
    assert proc.finish() == 0, bytes(proc.err)
    assert bytes(proc.out).decode().startswith("subscribed 9812345678 to cricket")


def test_emulator_command_runs_the_emulator(procs: list[Proc]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    proc = Proc([sys.executable, "-m", "agupshup.cli", "emulator", "--port", "0",
                 "--time-scale", "60"], env)
    procs.append(proc)
    url = proc.wait_for("\n", err=False).strip()
    assert url.startswith("http://127.0.0.1:")
    result = Cli(url)("info", "jumpy")
    assert result.exit_code == 0
    assert "posts:   120" in result.output
    proc.p.send_signal(signal.SIGINT)
    assert proc.finish() == 0


def test_emulator_command_passes_options_through(run: Cli) -> None:
    result = run("emulator", "--help")
    assert result.exit_code == 0
    assert "--time-scale" in result.output
    assert "--throttle" in result.output


def test_python_m_widget(child_env: dict[str, str], procs: list[Proc]) -> None:
    proc = Proc([sys.executable, "-m", "agupshup.widget", "--read-only", "--port", "0",
                 "--seconds", "20"], child_env)
    procs.append(proc)
    text = proc.wait_for("(Ctrl-C stops)")
    url = text.split("widget: ", 1)[1].split()[0]
    with urllib.request.urlopen(url + "embed/jumpy") as r:
        page = r.read().decode()
    assert "jumpy message 120" in page
    assert "<form" not in page
    proc.p.send_signal(signal.SIGINT)
    assert proc.finish() == 0


def test_python_m_widget_serves_only_its_allow_list(
    child_env: dict[str, str], procs: list[Proc], emulator: EmulatorThread
) -> None:
    proc = Proc([sys.executable, "-m", "agupshup.widget", "--read-only", "--port", "0",
                 "--group", "jumpy", "--frame-ancestors", "'self'", "--seconds", "20"],
                child_env)
    procs.append(proc)
    text = proc.wait_for("(Ctrl-C stops)")
    url = text.split("widget: ", 1)[1].split()[0]
    before = sum(emulator.emulator.calls.values())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "embed/cricket")
    assert refused.value.code == 404
    refused.value.close()
    assert sum(emulator.emulator.calls.values()) == before  # not on the list: no call spent
    with urllib.request.urlopen(url + "embed/jumpy") as r:
        assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
        assert "jumpy message 120" in r.read().decode()
    proc.p.send_signal(signal.SIGINT)
    assert proc.finish() == 0


def test_widget_command_stops_by_itself(run: Cli) -> None:
    result = run("widget", "--port", "0", "--seconds", "0.2")
    assert result.exit_code == 0, result.output
    assert "widget: http://127.0.0.1:" in result.stderr


def test_demo_ends_by_itself(run: Cli) -> None:
    # Returning at all proves it: no bound on how long it took (a loaded machine is slower).
    result = run("demo", "--seconds", "6", env={"GUPSHUP_BASE_URL": None})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for needle in ("emulator   GupShup emulator running in-process",
                   "aggregator jumpy", "aggregator following jumpy, cricket, demo-bot",
                   "bot        posted #", "alice      posted #",
                   "aggregator new: cricket", "bot        replied #",
                   "replies    latest replies to cricket", "quota        minute",
                   "refused with 113"):
        assert needle in out, needle
    assert "0 refused with 113" in out


def test_python_m_widget_does_not_load_the_cli() -> None:
    code = ("import sys, agupshup.widget.__main__; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] == ['agupshup', 'cli']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_the_entry_point_names_the_cli_group() -> None:
    from agupshup.cli import main

    assert main.name == "main"
    assert {"info", "emulator", "widget", "export"} <= set(main.commands)
