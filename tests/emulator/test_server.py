"""Starting the emulator: the CLI, the thread variant, the server object, seed files."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agupshup.emulator import EmulatorConfig, EmulatorServer, EmulatorThread
from agupshup.emulator.seed import SEEDED_MESSAGES, build_world, load_seed

from .helpers import Api


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_cli_prints_the_base_url_and_serves() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agupshup.emulator",
            "--port",
            "0",
            "--throttle",
            "off",
            "--time-scale",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        answer = fetch(base + "/GupshupAPI/rest?method=users.getChallenge&v=1.0")
        assert answer["response"]["salt"] == "k3J9xQ"
        assert fetch(base + "/_emulator/stats")["calls"] == {"users.getchallenge": 1}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "rand" not in err
    assert "token" not in err


def test_thread_variant() -> None:
    with EmulatorThread() as server:
        answer = fetch(server.url + "?method=groups.getInfo&v=1.0&group=jumpy&format=json")
        assert answer["response"]["group"]["numPosts"] == "120"
        assert server.emulator.calls["groups.getinfo"] == 1
        assert server.base_url.startswith("http://127.0.0.1:")


async def test_server_object() -> None:
    server = EmulatorServer(port=0)
    assert server.port == 0
    async with server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/GupshupAPI/rest"
        with pytest.raises(RuntimeError):
            await server.start()
    await server.close()  # closing twice is harmless


async def test_stats_over_http(api: Api) -> None:
    await api.call("groups.getInfo", group="jumpy")
    await api.call("groups.getInfo", group="jumpy")
    stats = await api.admin("GET", "/_emulator/stats")
    assert stats["calls"] == {"groups.getinfo": 2}
    assert stats["total_calls"] == 2
    assert stats["throttled"] == {}
    reset = await api.admin("DELETE", "/_emulator/stats")
    assert reset["calls"] == {}
    assert api.emulator.calls == {}


CUSTOM: dict[str, Any] = {
    "salt": "pepper",
    "users": [{"phone": "9123412345", "password": "pw", "name": "bob"}],
    "groups": [
        {
            "name": "bobs",
            "owner": "9123412345",
            "messages": [{"text": "old", "timestamp": 1000}, {"text": "new", "timestamp": 2000}],
        },
        {
            "name": "gen",
            "owner": "9123412345",
            "messages": {"count": 3, "text": "g{n}", "start": 1500, "step": 1},
        },
    ],
    "replies": [
        {"to": "bobs", "from": "gen", "text": "@bobs hi", "hidden": True, "timestamp": 3000}
    ],
}

TOML = """
salt = "pepper"

[[users]]
phone = "9123412345"
password = "pw"
name = "bob"

[[groups]]
name = "bobs"
owner = "9123412345"
messages = [{text = "old", timestamp = 1000}, {text = "new", timestamp = 2000}]

[[groups]]
name = "gen"
owner = "9123412345"
messages = {count = 3, text = "g{n}", start = 1500, step = 1}

[[replies]]
to = "bobs"
from = "gen"
text = "@bobs hi"
hidden = true
timestamp = 3000
"""


@pytest.mark.parametrize("kind", ["json", "toml", "mapping"])
async def test_custom_seed(tmp_path: Path, kind: str) -> None:
    source: Any = CUSTOM
    if kind == "json":
        source = tmp_path / "seed.json"
        source.write_text(json.dumps(CUSTOM))
    elif kind == "toml":
        source = tmp_path / "seed.toml"
        source.write_text(TOML)
    async with EmulatorServer(EmulatorConfig(seed=source)) as server:
        emulator = server.emulator
        assert emulator.sessions.salt == "pepper"
        timeline = [(m.id, m.group, m.text) for m in emulator.world.timeline]
        assert timeline == [
            (100001, "bobs", "old"),
            (100002, "gen", "g1"),
            (100003, "gen", "g2"),
            (100004, "gen", "g3"),
            (100005, "bobs", "new"),
        ]
        bobs = emulator.world.group("bobs")
        assert bobs is not None
        assert [r.id for r in bobs.replies] == [100006]
        assert emulator.world.group("jumpy") is None


def test_bad_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        build_world({"users": [{"phone": "1", "password": "x", "nmae": "typo"}]})
    with pytest.raises(ValueError, match="unknown owner"):
        build_world({"groups": [{"name": "g", "owner": "nobody"}]})


def test_default_seed_counts() -> None:
    world, salt = build_world(load_seed())
    assert {name: len(g.messages) for name, g in world.groups.items()} == SEEDED_MESSAGES
    assert salt == "k3J9xQ"
