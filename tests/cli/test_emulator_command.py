"""``python -m agupshup.emulator`` / ``agupshup emulator`` on click: start-up errors are one
line each, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agupshup.cli import main as agupshup
from agupshup.emulator.__main__ import main as emulator

from .conftest import ENV_KEYS


def one_line(text: str) -> str:
    assert "Traceback" not in text
    assert text.count("\n") == 1, text
    return text.strip()


@pytest.mark.parametrize(("args", "needle"), [
    (["--port", "99999"], "Invalid value for '--port': 99999 is not in the range"),
    (["--seed", "no-such-seed.json"], "Invalid value for '--seed'"),
    (["--throttle", "sometimes"], "Invalid value for '--throttle'"),
])
def test_bad_options_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = CliRunner().invoke(emulator, args)
    assert result.exit_code == 2
    assert needle in one_line(result.stderr)
    assert result.stdout == ""


def test_a_broken_seed_file_is_one_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text("{not json")
    result = CliRunner().invoke(agupshup, ["emulator", "--seed", str(seed)])
    assert result.exit_code == 1
    assert one_line(result.stderr).startswith(f"Error: --seed {seed}: ")


def test_a_port_in_use_is_one_line_in_a_real_process() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "agupshup.emulator", "--port", str(port)],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert proc.stdout == ""


def test_the_help_is_clicks() -> None:
    result = CliRunner().invoke(agupshup, ["emulator", "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: main emulator [OPTIONS]") or "emulator [OPTIONS]" in \
        result.stdout.splitlines()[0]
    for option in ("--port", "--seed", "--time-scale", "--throttle", "--random-seed", "-v"):
        assert option in result.stdout


def test_a_seed_user_without_password_is_named(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"users": [{"phone": "9888800009"}], "groups": []}')
    result = CliRunner().invoke(agupshup, ["emulator", "--seed", str(seed)])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert line.startswith(f"Error: --seed {seed}: user 9888800009: no \"password\""), line


def test_it_prints_the_demo_account_and_the_next_step() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "agupshup.emulator", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        url = proc.stdout.readline().strip()
        account, step = proc.stderr.readline(), proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert url.startswith("http://127.0.0.1:")
    assert account.startswith("demo user 9999900000 / gupshup-demo (owns jumpy, demo-bot)")
    assert step.startswith(f"next, in another terminal: export GUPSHUP_BASE_URL={url} ")
    assert "agupshup info jumpy" in step
