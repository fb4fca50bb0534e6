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
    result.assert_outcomes(passed=3)
