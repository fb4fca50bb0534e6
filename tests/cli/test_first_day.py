"""A user's first day (issue 24): the CLI keeps its login between runs, so a command costs one
call; a 113 hold reads as a date and a duration and can be dropped with ``quota --forget``;
library log records stay off the terminal without ``-v``."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agupshup import Client, errors
from agupshup.cli.settings import Settings
from agupshup.cli.status import AnswerWatch, WaitStatus
from agupshup.cli.stderr import explain
from agupshup.client import egress_key
from agupshup.clock import SystemClock
from agupshup.emulator import EmulatorConfig, EmulatorThread
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.emulator.throttle import ThrottleConfig
from agupshup.emulator.throttle import Window as ServerWindow
from agupshup.models import ThrottleTag
from agupshup.retry import RetryPolicy
from agupshup.throttle import DEFAULT_WINDOWS, Scheduler, SqliteLedger, ThrottleEvent
from agupshup.transport import MockTransport, RawResponse

from .conftest import ENV_KEYS, Cli
from .test_feedback import Ticks


@pytest.fixture
def disk(tmp_path: Path) -> dict[str, str | None]:
    """The environment of a user with the default kind of ledger: a file kept between runs."""
    return {"GUPSHUP_LEDGER": str(tmp_path / "throttle.sqlite3")}


def calls(emulator: EmulatorThread) -> int:
    return sum(emulator.emulator.calls.values())


def ok(run: Cli, *args: str, env: dict[str, str | None]) -> str:
    result = run(*args, env=env)
    assert result.exit_code == 0, result.output
    return result.stderr


def test_ten_mixed_commands_cost_at_most_twelve_calls(
    run: Cli, emulator: EmulatorThread, disk: dict[str, str | None]
) -> None:
    commands = [("info", "jumpy"), ("stream", "jumpy", "-l", "3"), ("tail", "jumpy", "-n", "2"),
                ("replies", "jumpy"), ("groups",), ("groups", "--joined"),
                ("post", "jumpy", "first day"), ("reply", "@cricket first day", "-g", "jumpy"),
                ("quota",), ("info", "cricket")]
    for command in commands:
        ok(run, *command, env=disk)
    # One login (challenge + login) for the whole day, then one call per command; quota: none.
    assert calls(emulator) == 11, emulator.emulator.calls
    assert emulator.emulator.calls["users.login"] == 1
    assert emulator.emulator.calls["users.logout"] == 0


def test_the_token_file_is_private_and_holds_no_password(
    run: Cli, emulator: EmulatorThread, disk: dict[str, str | None], tmp_path: Path
) -> None:
    ok(run, "groups", env=disk)
    before = calls(emulator)
    ok(run, "groups", env=disk)
    assert calls(emulator) == before + 1  # the kept token: no challenge, no login, no logout
    [tokens] = tmp_path.glob("*tokens*")
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    data = tokens.read_bytes()
    assert DEMO_PASSWORD.encode() not in data
    assert egress_key(run.base_url).encode() in data
    assert DEMO_PHONE.encode() in data


def test_a_kept_token_needs_no_password(
    run: Cli, emulator: EmulatorThread, disk: dict[str, str | None]
) -> None:
    ok(run, "groups", env=disk)
    # No password in the environment and none on stdin: the kept token serves.
    result = run("groups", env={**disk, "GUPSHUP_PASSWORD": None}, input="")
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[0] == "jumpy"


def test_a_dead_token_is_replaced_once_silently(
    run: Cli, emulator: EmulatorThread, disk: dict[str, str | None]
) -> None:
    ok(run, "groups", env=disk)
    emulator.emulator.sessions.expire_all()  # the server forgot it (a restart, an expiry)
    before = calls(emulator)
    stderr = ok(run, "groups", env=disk)
    assert stderr == ""
    # The refused call, a new login (challenge + login), the call again.
    assert calls(emulator) == before + 4
    before = calls(emulator)
    ok(run, "groups", env=disk)
    assert calls(emulator) == before + 1


def test_logout_ends_the_kept_login(
    run: Cli, emulator: EmulatorThread, disk: dict[str, str | None]
) -> None:
    ok(run, "groups", env=disk)
    result = run("logout", env=disk)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"logged out {DEMO_PHONE} from {egress_key(run.base_url)}\n"
    assert emulator.emulator.calls["users.logout"] == 1
    assert emulator.emulator.sessions.tokens_of(DEMO_PHONE) == []
    again = run("logout", env=disk)
    assert again.exit_code == 0
    assert again.stderr.startswith("not logged in to ")
    assert emulator.emulator.calls["users.logout"] == 1
    # Without a kept token the password is needed again: none here, so one clean line.
    result = run("groups", env={**disk, "GUPSHUP_PASSWORD": None}, input="")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no credentials")


def test_memory_ledger_keeps_no_login(run: Cli, emulator: EmulatorThread) -> None:
    ok(run, "groups", env={})
    assert emulator.emulator.calls["users.logout"] == 1
    assert run("logout", env={}).stderr.startswith("not logged in: with --ledger memory")


def _hold_a_day(ledger: Path, base_url: str) -> None:
    """What a day window's 113 leaves in the ledger, as an earlier run would have."""

    async def refused() -> None:
        scheduler = Scheduler(DEFAULT_WINDOWS, clock=SystemClock(),
                              ledger=SqliteLedger(ledger, key=egress_key(base_url)))
        async with scheduler.slot("bulk") as slot:
            slot.learn([ThrottleTag("day", 10001, 9000, 10000)], limited=True)
        await scheduler.aclose()

    asyncio.run(refused())


def test_a_day_hold_reads_as_a_day_and_can_be_forgotten(
    run: Cli, emulator: EmulatorThread, disk: dict[str, str | None], tmp_path: Path
) -> None:
    _hold_a_day(tmp_path / "throttle.sqlite3", run.base_url)
    result = run("quota", env=disk)
    assert result.exit_code == 0, result.output
    day = result.stdout.splitlines()[2]
    assert day.startswith("day "), day
    assert "held 24 h, until " in day, day
    assert "113" in day
    assert result.stderr == ("held: if the server was reset, `agupshup quota --forget` drops "
                             "the hold\n")
    forgot = run("quota", "--forget", env=disk)
    assert forgot.exit_code == 0, forgot.output
    assert all("room now" in line for line in forgot.stdout.splitlines()), forgot.stdout
    assert forgot.stderr.startswith(f"forgot the counts and holds of {egress_key(run.base_url)}")
    before = calls(emulator)
    ok(run, "info", "jumpy", env=disk)  # no wait: the hold is gone
    assert calls(emulator) == before + 1


def test_library_log_records_need_v(run: Cli, disk: dict[str, str | None]) -> None:
    # From the 4th post a minute the poster's throttle tag (limit 5) comes back, which the
    # scheduler matches by name only and logs as a WARNING: not for the terminal without -v.
    for n in range(5):
        result = run("post", "jumpy", f"post {n}", env=disk)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
    loud = run("-v", "info", "jumpy", env=disk)
    assert loud.exit_code == 0
    assert " INFO agupshup.cli: " in loud.stderr


# -- errors that said the wrong thing, or said it late ------------------------------------------


def test_subscribe_with_stdin_closed_says_so(run: Cli, emulator: EmulatorThread) -> None:
    result = run("subscribe", "9812345677", "jumpy", input="")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: no code to confirm with: stdin ended (the code was texted to 9812345677; pipe "
        "it in, or run in a terminal to be asked)")
    assert "interrupted" not in result.stderr


def test_a_base_url_with_the_api_path_is_not_doubled(run: Cli) -> None:
    result = run("info", "jumpy", env={"GUPSHUP_BASE_URL": run.base_url + "/GupshupAPI/rest/"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("jumpy (public)")


def test_https_to_a_plain_http_server_is_one_line_and_no_retry(run: Cli) -> None:
    url = run.base_url.replace("http://", "https://")
    result = run("info", "jumpy", env={"GUPSHUP_BASE_URL": url})
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: TLS handshake with {url}/GupshupAPI/rest failed"), line
    assert line.endswith("the server speaks plain HTTP: use http://"), line

    back_offs: list[float] = []

    async def once() -> None:
        retry = RetryPolicy(on_back_off=back_offs.append)
        async with Client(url, throttle=None, retry=retry) as client:
            with pytest.raises(errors.TLSRefused):
                await client.get_info("jumpy")

    asyncio.run(once())
    assert back_offs == []  # never resent: each attempt would cost a place in the quota


def test_no_base_url_hints_at_the_option_and_the_emulator() -> None:
    fault = errors.ConnectError("Cannot connect to host api.smsgupshup.com:80 "
                                "[Name or service not known]", maybe_sent=False)
    code, line = explain(fault, Settings())
    assert code == 1
    assert line.startswith("cannot reach http://api.smsgupshup.com: no such host (no --base-url")
    assert "agupshup emulator" in line
    assert "--base-url http://127.0.0.1:8080" in line
    _, named = explain(fault, Settings(base_url="http://10.0.0.9:8080"))
    assert "--base-url" not in named


def test_a_113_under_time_scale_says_why_once() -> None:
    out, clock = io.StringIO(), Ticks()
    waits = WaitStatus(Scheduler(clock=clock), clock, out)
    waits.on_113 = "note: the server refused a call (113) although --time-scale 60 ..."
    for _ in range(3):
        waits.on_event(ThrottleEvent("limited", "minute", "holding", 1.0))
    assert out.getvalue().splitlines() == [
        "note: the server refused a call (113) although --time-scale 60 ..."]


def test_a_late_answer_is_said_with_url_elapsed_and_limit() -> None:
    out, clock = io.StringIO(), Ticks()
    never: asyncio.Future[RawResponse] | None = None

    async def hang(fields: object) -> RawResponse:
        assert never is not None
        return await never

    async def scenario() -> None:
        nonlocal never
        never = asyncio.get_running_loop().create_future()
        answers = AnswerWatch(MockTransport(hang), clock, "http://h:1/GupshupAPI/rest", 30.0)
        waits = WaitStatus(Scheduler(clock=clock), clock, out, answers)
        sending = asyncio.ensure_future(answers.send([("method", "groups.getInfo")]))
        await asyncio.sleep(0)
        waits.render(clock.monotonic())
        clock.advance(0.5)
        waits.render(clock.monotonic())  # half a second: silent
        clock.advance(2.0)
        waits.render(clock.monotonic())
        sending.cancel()

    asyncio.run(scenario())
    assert out.getvalue() == ("waiting for an answer from http://h:1/GupshupAPI/rest: gives up "
                              "after 30s (2s so far)\n")


# -- a restarted library Client ---------------------------------------------------------------


def test_a_bot_restarted_twice_within_a_window_sees_no_113(tmp_path: Path) -> None:
    """Three runs of a bot, each a fresh process making 3 calls, against a server that allows
    6 calls in any 10 s: 9 calls in a few seconds. The default Client counts in the per-host
    ledger file, so each run sees the calls of the runs before it and waits instead of earning
    a 113 (before issue 24 its counts lived in memory and died with the process)."""
    windows = (ServerWindow("minute", 6, 10.0, 5),)
    config = EmulatorConfig(random_seed=None, throttle=ThrottleConfig(windows=windows))
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["GUPSHUP_LEDGER"] = str(tmp_path / "throttle.sqlite3")
    bot = Path(__file__).with_name("restart_bot.py")
    with EmulatorThread(config) as server:
        for _ in range(3):
            done = subprocess.run([sys.executable, str(bot), server.base_url, "3"], env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        assert server.emulator.calls["groups.getinfo"] == 9
        assert sum(server.emulator.throttled.values()) == 0


def test_the_widgets_port_in_use_is_a_sentence(run: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("widget", "--read-only", "--port", str(port), "--seconds", "5")
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_demo_refuses_json_rather_than_ignoring_it(run: Cli) -> None:
    result = run("demo", "--json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: demo prints for people only: --json is for")


def test_quota_windows_print_for_people() -> None:
    from datetime import UTC, datetime, timedelta

    from agupshup.models import QuotaWindow, human_duration, human_wall

    assert repr([QuotaWindow("minute", 60.0, 30, 3, 0.0, free_in=-1.32e-06)]) == (
        "[QuotaWindow(minute 3/30 used, room now)]")
    assert [human_duration(s) for s in (0.4, 45, 700, 7500, 86410)] == [
        "0.4s", "45s", "12 min", "2 h 5 min", "24 h"]
    now = datetime(2026, 12, 6, 13, 48, 24, tzinfo=UTC)
    assert human_wall(now + timedelta(seconds=10), now)[-3:] == ":34"  # today: the time only
    tomorrow = human_wall(now + timedelta(hours=24, seconds=10), now)
    assert tomorrow.endswith(" tomorrow") or tomorrow[:3].isalpha(), tomorrow
