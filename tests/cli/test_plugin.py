"""The pytest plugin's client side: ``gupshup_client`` (logged in, logged out after) and the
test-speed switch, each tried in a pytest run of its own (pytester)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "src" / "agupshup" / "emulator" / "pytest_plugin.py"

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
    """Only the fixtures import the client; the module's own imports stay in the emulator."""
    tree = ast.parse(PLUGIN.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in modules if m.startswith("agupshup")} == set()
