"""docs/testing.md works as written: its files, taken from the doc itself, make a fresh project
whose tests pass in a pytest of their own (pytester, in a subprocess)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
BLOCK = re.compile(r"```(?:python|ini)\n# file: (?P<name>\S+)\n(?P<body>.*?)```", re.S)


def files() -> dict[str, str]:
    found = {m["name"]: m["body"] for m in BLOCK.finditer(DOC.read_text())}
    assert {"pytest.ini", "echobot.py", "test_echobot.py", "test_offline.py"} <= set(found)
    return found


def test_the_testing_doc_builds_a_passing_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, body in files().items():
        (pytester.path / name).write_text(body)
    # This checkout's agupshup (and its plugin), whatever an installed copy elsewhere is.
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=3, warnings=0)  # no deprecation from pytest-asyncio either
    # The page's last run says what this one says.
    assert "3 passed" in DOC.read_text().rpartition("```console")[2].partition("```")[0]


def test_the_testing_doc_gives_its_install_line() -> None:
    text = DOC.read_text()
    assert "python -m pip install pytest pytest-asyncio" in text


def test_without_pytest_asyncio_the_client_fixture_says_what_is_missing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = pytester.mkdir("shim")
    (shim / "pytest_asyncio.py").write_text("raise ImportError('not installed')\n")
    pytester.makepyfile(test_bot="def test_it(gupshup_client):\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", f"{shim}:{ROOT / 'src'}")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
                                           timeout=300)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*gupshup_client needs pytest-asyncio*"])
