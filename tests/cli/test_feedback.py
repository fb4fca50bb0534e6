"""The CLI says what it waits for (stderr only), logs with -v, prints JSON Lines, and fails in
one plain line: missing credentials, a URL without scheme, a server nobody answers at."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agupshup.cli.settings import egress, scrub
from agupshup.cli.status import WaitStatus
from agupshup.clock import FakeClock
from agupshup.emulator import EmulatorConfig, EmulatorThread, FaultSpec
from agupshup.emulator.seed import DEMO_PHONE
from agupshup.models import QuotaWindow
from agupshup.retry import RetryPolicy
from agupshup.throttle import Scheduler

from .conftest import BIG, ENV_KEYS, Cli, seed_with_big_group
from .test_commands import assert_clean_error, lines

# -- the wait line, unit by unit (fake clock, no sleeping) ------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Ticks:
    """A clock moved by hand (synchronously: the status only reads it)."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("the status never sleeps on the client's clock")

    def advance(self, seconds: float) -> None:
        self.now += seconds


def status(stream: io.StringIO) -> tuple[WaitStatus, Ticks]:
    clock = Ticks()
    return WaitStatus(Scheduler(clock=clock), clock, stream), clock


def test_a_short_wait_stays_silent() -> None:
    out = io.StringIO()
    waits, clock = status(out)
    with waits.doing("a login"):
        waits.render(clock.monotonic())
        clock.advance(0.5)
        waits.render(clock.monotonic())
    waits.render(clock.monotonic())
    assert out.getvalue() == ""


class HeldScheduler:
    """Just what the status reads of a scheduler: callers wait while ``used`` changes."""

    def __init__(self) -> None:
        self.used = 27
        self.waiting = 1

    def quota(self) -> list[QuotaWindow]:
        return [QuotaWindow(period="minute", length=60.0, limit=30, used=self.used,
                            free_at=105.0, held_until=None)]


def test_a_throttle_wait_is_logged_once_even_as_its_counts_change() -> None:
    out = io.StringIO()
    clock = Ticks()
    held = HeldScheduler()
    waits = WaitStatus(held, clock, out)  # type: ignore[arg-type]
    for used in (27, 26, 28):
        held.used = used
        waits.render(clock.monotonic())
        clock.advance(0.5)
    assert out.getvalue().count("\n") == 1
    assert "minute 27/30 used" in out.getvalue()
    held.waiting = 0
    waits.render(clock.monotonic())  # the wait is over; the next one is logged again
    held.waiting = 1
    waits.render(clock.monotonic())
    assert out.getvalue().count("\n") == 2


def test_a_long_login_is_named_once_in_a_log() -> None:
    out = io.StringIO()
    waits, clock = status(out)
    with waits.doing("a login as 9999900000"):
        for _ in range(8):
            waits.render(clock.monotonic())
            clock.advance(0.5)
    assert out.getvalue() == "waiting for a login as 9999900000 (1s so far)\n"


def test_a_back_off_says_until_when_and_is_erased_on_a_terminal() -> None:
    out = Tty()
    waits, clock = status(out)
    waits.backing_off(3.0)
    waits.render(clock.monotonic())
    clock.advance(1.0)
    waits.render(clock.monotonic())
    clock.advance(2.5)
    waits.render(clock.monotonic())  # over: the line goes
    frames = out.getvalue().split("\r\x1b[K")
    assert frames[0] == ""
    assert frames[1].startswith("waiting for a retry until ")
    assert frames[1].endswith("(3.0s left): back-off after a failed call")
    assert frames[2].endswith("(2.0s left): back-off after a failed call")
    assert frames[3] == ""  # erased
    assert "\n" not in out.getvalue()


async def test_the_retry_policy_reports_each_back_off() -> None:
    seen: list[float] = []
    clock = FakeClock(autojump=True)
    policy = RetryPolicy(on_back_off=seen.append)
    taken = [await policy.back_off(clock, "read", attempt, 0.0) for attempt in range(5)]
    assert taken == [True, True, True, False, False]  # the policy still ends, reporting nothing
    assert len(seen) == 3
    assert clock.monotonic() == pytest.approx(sum(seen))  # what was reported was slept


# -- the wait line, end to end ----------------------------------------------------------------


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Time runs 30x faster (a throttle minute is 2 s); a group of 600 messages; logins slow."""
    return EmulatorConfig(random_seed=None, time_scale=30.0, seed=seed_with_big_group(),
                          faults=(FaultSpec("slow", methods=("users.login",), delay=1.6),))


def test_a_throttle_wait_is_said_on_stderr_only(run: Cli, emulator: EmulatorThread) -> None:
    # windows of 6 s (the server's are 2 s): the wait lasts, even on a busy machine
    result = run("--time-scale", "10", "stream", "big", "--limit", str(BIG))
    assert result.exit_code == 0, result.output
    assert len(lines(result.stdout)) == BIG  # stdout: the records, nothing else
    waits = [x for x in lines(result.stderr) if x.startswith("waiting")]
    assert waits, result.stderr
    assert waits[0].startswith("waiting for the throttle until ")
    # A read-only run fills the whole window: places are kept for posts only while one is around.
    assert waits[0].endswith(": minute 30/30 used"), waits
    assert sum(emulator.emulator.throttled.values()) == 0


def test_a_slow_login_is_said(run: Cli) -> None:
    result = run("groups")
    assert result.exit_code == 0, result.output
    assert f"waiting for a login as {DEMO_PHONE}" in result.stderr
    assert [x.split()[0] for x in lines(result.stdout)] == ["jumpy", "demo-bot"]


# -- logging and JSON Lines -------------------------------------------------------------------


@pytest.mark.parametrize("command", [("info", "jumpy"), ("stream", "jumpy", "-l", "1"),
                                     ("quota",), ("replies", "jumpy")])
def test_verbose_logs_for_every_command(run: Cli, command: tuple[str, ...]) -> None:
    quiet = run(*command)
    loud = run(*command, "-v")
    assert quiet.exit_code == loud.exit_code == 0
    assert quiet.stderr == ""
    assert " INFO agupshup.cli: server http://127.0.0.1:" in loud.stderr
    assert " INFO agupshup.cli: quota used: minute " in loud.stderr
    assert loud.stdout == quiet.stdout  # logs never reach stdout


def test_json_is_json_lines_everywhere(run: Cli) -> None:
    for args in (("quota",), ("post", "jumpy", "one line please"), ("info", "jumpy"),
                 ("stream", "jumpy", "-l", "3")):
        out = run("--json", *args).stdout
        assert out.endswith("\n")
        for line in out.splitlines():
            record = json.loads(line)
            assert isinstance(record, dict)
            # compact, not indented
            assert line == json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    assert len(run("--json", "quota").stdout.splitlines()) == 3


# -- clear failures ---------------------------------------------------------------------------


def test_no_credentials_without_a_terminal_is_a_usage_error(run: Cli) -> None:
    result = run("groups", env={"GUPSHUP_PHONE": None, "GUPSHUP_PASSWORD": None})
    assert_clean_error(result, 2, "GUPSHUP_PHONE", "GUPSHUP_PASSWORD", "--phone")
    only_phone = run("post", "jumpy", "hi", env={"GUPSHUP_PASSWORD": None})
    assert_clean_error(only_phone, 2, "GUPSHUP_PASSWORD")
    assert only_phone.stderr.count("\n") == 1


def test_no_credentials_in_a_real_process(emulator: EmulatorThread) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(GUPSHUP_BASE_URL=emulator.base_url, GUPSHUP_LEDGER="memory",
               GUPSHUP_PHONE=DEMO_PHONE)
    proc = subprocess.run([sys.executable, "-m", "agupshup", "groups"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: no credentials: set GUPSHUP_PHONE and GUPSHUP_PASSWORD")
    assert proc.stderr.count("\n") == 1  # no GetPassWarning, no "Abort"
    assert emulator.emulator.stats()["total_calls"] == 0


@pytest.mark.parametrize("url", ["localhost:8080", "127.0.0.1", "ftp://example.org"])
def test_a_base_url_without_http_scheme_is_a_usage_error(run: Cli, url: str) -> None:
    assert_clean_error(run("info", "jumpy", "--base-url", url), 2, "not an http(s) URL")


def test_an_unreachable_server_in_plain_words(run: Cli) -> None:
    result = run("info", "jumpy", env={"GUPSHUP_BASE_URL": "http://me:hunter2@127.0.0.1:9"})
    assert_clean_error(result, 1, "cannot reach http://127.0.0.1:9", "is the server running?")
    assert "ssl:default" not in result.stderr
    assert "hunter2" not in result.output


def test_an_http_error_never_shows_url_credentials(run: Cli, emulator: EmulatorThread) -> None:
    emulator.emulator.faults.add(FaultSpec("http502", methods=("groups.getInfo",)))
    url = emulator.base_url.replace("http://", "http://me:hunter2@")
    result = run("info", "jumpy", env={"GUPSHUP_BASE_URL": url})
    assert_clean_error(result, 1, "HTTP 502", emulator.base_url)
    assert "hunter2" not in result.output


def test_a_ledger_left_readable_by_an_older_version_is_tightened(
    run: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "agupshup"
    folder.mkdir(mode=0o755)
    (folder / "throttle.sqlite3").touch(mode=0o644)
    folder.chmod(0o755)
    env = {"GUPSHUP_LEDGER": None, "XDG_CACHE_HOME": str(tmp_path)}
    assert run("quota", env=env).exit_code == 0
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "throttle.sqlite3").stat().st_mode) == 0o600


def test_a_named_ledger_is_created_private_and_its_folder_left_alone(
    run: Cli, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    ledger = tmp_path / "new" / "counts.sqlite3"
    assert run("quota", env={"GUPSHUP_LEDGER": str(ledger)}).exit_code == 0
    assert stat.S_IMODE(ledger.parent.stat().st_mode) == 0o700  # created by us
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # not ours: untouched


def test_egress_drops_credentials_even_from_a_malformed_url() -> None:
    assert egress("http://me:pw@host:8080/x?y=1") == "http://host:8080/x?y=1"
    assert egress("me:pw@host:8080") == "host:8080"
    assert egress("https://host") == "https://host"
    assert scrub("HTTP 502 from http://me:pw@host/x", "http://me:pw@host") == \
        "HTTP 502 from http://host/x"


def test_warning_lines_never_show_the_urls_credentials(
    run: Cli, emulator: EmulatorThread
) -> None:
    """A post whose answer is lost is resent with a WARNING (library log lines show with
    ``-v``); its fault names the URL, which must come without ``user:pass@``, and so do the
    CLI's own lines."""
    emulator.emulator.faults.add(
        FaultSpec("http502", methods=("groups.postMessage",), when="after", count=1))
    url = emulator.base_url.replace("http://", "http://me:hunter2@")
    result = run("-v", "post", "jumpy", "resent once", env={"GUPSHUP_BASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.stderr
    assert "resending" in result.stderr
    assert "hunter2" not in result.stderr
    assert "me:" not in result.stderr


# -- the throttle ledger file -----------------------------------------------------------------


def test_the_default_ledger_is_private_and_holds_no_credentials(
    run: Cli, emulator: EmulatorThread, tmp_path: Path
) -> None:
    url = emulator.base_url.replace("http://", "http://me:hunter2@")
    env = {"GUPSHUP_LEDGER": None, "XDG_CACHE_HOME": str(tmp_path), "GUPSHUP_BASE_URL": url}
    assert run("info", "jumpy", env=env).exit_code == 0
    folder = tmp_path / "agupshup"
    ledger = folder / "throttle.sqlite3"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert b"hunter2" not in path.read_bytes()
        assert "hunter2" not in path.name
    with sqlite3.connect(ledger) as db:
        dump = "\n".join(db.iterdump())
    assert "hunter2" not in dump
    assert emulator.base_url.partition("://")[2] in dump  # keyed by the egress's host


def test_on_a_terminal_the_wait_line_counts_down_and_is_erased(emulator: EmulatorThread) -> None:
    """stderr a real terminal (a pty), stdout a pipe: the countdown redraws in place."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(GUPSHUP_BASE_URL=emulator.base_url, GUPSHUP_LEDGER="memory")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            # windows of 6 s (the server's are 2 s): the wait lasts, even on a busy machine
            [sys.executable, "-m", "agupshup", "--time-scale", "10", "stream", "big", "-l",
             str(BIG)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=follower, timeout=120)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the writer is gone and everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == BIG
    text = seen.decode()
    frames = text.split("\r\x1b[K")
    shown = [f for f in frames if f.startswith("waiting for the throttle until ")]
    assert len(shown) >= 2, text  # redrawn, not printed once
    assert all(re.search(r"left\): minute \d+/30 used", f) for f in shown), shown
    assert "\n" not in text.replace("\r\n", "")  # never a new line of its own
    assert text.endswith("\r\x1b[K")  # and erased at the end
