"""The examples, each run as a user runs it: one command, an embedded emulator, a quick end."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import ENV_KEYS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def start(script: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, str(EXAMPLES / script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return out


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="no examples directory")
def test_examples_run_with_one_command(tmp_path: Path) -> None:
    # all three at once: each starts its own emulator on a free port
    out1 = tmp_path / "agg.jsonl"
    bot = start("echo_bot.py", "--seconds", "30", "--limit", "1")
    widget = start("widget.py", "--seconds", "30")
    agg = start("aggregator.py", "--out", str(out1), "--limit", "100", "--seconds", "30")
    try:
        assert widget.stdout is not None
        lines = [widget.stdout.readline() for _ in range(3)]
        url = lines[2].split("embedded:", 1)[1].strip()
        with urllib.request.urlopen(url) as r:
            page = r.read().decode()
        assert "jumpy message 120" in page
        assert '<form class="post"' in page  # runs as the demo user, who owns jumpy
        widget.terminate()
        widget.communicate(timeout=30)

        text = finish(bot)
        assert "(embedded emulator)" in text
        assert "seen     #" in text
        assert "replied  #" in text
        assert "@demo-bot -> @cricket: @cricket echo: over 41" in text

        text = finish(agg)
        assert "aggregating 42 groups" in text
        assert "new checkpoint" in text
        first = [json.loads(x)["id"] for x in out1.read_text().splitlines()]
        assert len(first) == 100
        # a second run resumes from the checkpoint: nothing read twice
        text = finish(start("aggregator.py", "--out", str(out1), "--limit", "100",
                            "--seconds", "30"))
        assert "resuming from" in text
        both = [json.loads(x)["id"] for x in out1.read_text().splitlines()]
        assert len(both) == 200
        assert len(set(both)) == 200
    finally:
        for proc in (bot, widget, agg):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_echo_bot_with_a_wrong_password_fails_early_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(GUPSHUP_PHONE="9999900000", GUPSHUP_PASSWORD="not-the-password")
    done = subprocess.run([sys.executable, str(EXAMPLES / "echo_bot.py"), "--seconds", "30"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""  # not "watching …": nothing is watched
    [line] = done.stderr.splitlines()
    assert line.startswith("error: users.login: error 121"), line


#: What an example may import of agupshup: the documented public API, nothing internal.
PUBLIC = {"agupshup", "agupshup.throttle", "agupshup.session", "agupshup.widget",
          "agupshup.emulator", "agupshup.emulator.seed"}


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_examples_use_the_public_api_only(script: str) -> None:
    tree = ast.parse((EXAMPLES / script).read_text())
    used = {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module}
    used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    internal = {m for m in used if m.split(".")[0] == "agupshup" and m not in PUBLIC}
    assert not internal, f"{script} imports internals: {sorted(internal)}"
