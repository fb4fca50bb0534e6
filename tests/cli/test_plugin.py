"""The pytest plugins' client side (:mod:`agupshup.testing`): ``gupshup_client`` (logged in,
logged out after), the test-speed switch, and loading the plugins with autoloading off, each
tried in a pytest run of its own (pytester)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "src" / "agupshup" / "testing.py"

CONFTEST = '''
import pytest

CALLS = {}


@pytest.fixture
def spy(request, gupshup_server):
    yield
    # torn down after gupshup_client (set up later): the logout is in
    CALLS[request.node.name] = dict(gupshup_server.emulator.calls)
'''

TESTS = '''
import pytest
from conftest import CALLS


async def test_logged_in(spy, gupshup_client, gupshup_server, gupshup_fast):
    assert gupshup_server.emulator.calls["users.login"] == 1
    assert gupshup_fast is False
    assert gupshup_server.emulator.throttle.config.mode == "sliding"
    assert gupshup_client.quota() != []  # throttled like production


@pytest.mark.gupshup(fast=True, time_scale=2.0)
async def test_fast(spy, gupshup_client, gupshup_server, gupshup_config):
    assert gupshup_server.emulator.throttle.config.mode == "off"
    assert gupshup_server.emulator.config.time_scale == 2.0  # other fields still apply
    assert gupshup_client.quota() == []  # no client throttle
    assert gupshup_client.poll_policy.min_interval == 0.05
    for _ in range(35):  # more than a minute's 30: none refused, none held
        await gupshup_client.get_info("jumpy")


def test_every_client_logged_out():
    assert CALLS["test_logged_in"]["users.logout"] == 1
    assert CALLS["test_fast"]["users.logout"] == 1
    assert CALLS["test_fast"]["groups.getinfo"] == 35
'''


def test_gupshup_client_and_the_fast_switch(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_it=TESTS)
    monkeypatch.setenv("PYTHONPATH", f"{ROOT / 'src'}:{pytester.path}")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=3)


def test_the_ini_switch(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\ngupshup_fast = true\n")
    pytester.makepyfile(test_it='''
import pytest

async def test_on(gupshup_server, gupshup_fast):
    assert gupshup_fast and gupshup_server.emulator.throttle.config.mode == "off"

@pytest.mark.gupshup(fast=False)
async def test_off_for_one(gupshup_server, gupshup_fast):
    assert not gupshup_fast and gupshup_server.emulator.throttle.config.mode == "sliding"
''')
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=2)


def test_the_plugin_imports_no_client_module_at_import_time() -> None:
    """Only the fixture imports the client; at import time the plugin needs only the
    emulator's plugin."""
    tree = ast.parse(PLUGIN.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in modules if m.startswith("agupshup")} == {"agupshup.emulator"}


BOTH = '''
async def test_both(gupshup_client, gupshup_server):
    assert gupshup_server.emulator.calls["users.login"] == 1
'''


def _without_autoload(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                      *plugins: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_it=BOTH)
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    loads = [a for p in ("pytest_asyncio.plugin", *plugins) for a in ("-p", p)]
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", *loads, timeout=300)


def test_without_autoload_the_client_plugin_brings_the_servers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_autoload(pytester, monkeypatch, "agupshup.testing").assert_outcomes(passed=1)


def test_without_autoload_both_named_is_fine(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _without_autoload(pytester, monkeypatch, "agupshup.emulator.pytest_plugin",
                               "agupshup.testing")
    result.assert_outcomes(passed=1)


def test_the_emulator_plugin_alone_says_where_the_client_went(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line users had before ``gupshup_client`` moved: the server still comes, and the
    client fixture fails saying what to add."""
    result = _without_autoload(pytester, monkeypatch, "agupshup.emulator.pytest_plugin")
    result.assert_outcomes(errors=1)  # at the fixture's setup
    result.stdout.fnmatch_lines(["*gupshup_client comes from the agupshup.testing plugin*"])
