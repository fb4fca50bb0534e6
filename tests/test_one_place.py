"""Each rule lives in one place (issue 16): a name the code spells out is spelled in one module.

Every other module imports the constant, so changing the rule (an environment variable's name,
…) is one edit. Docstrings and messages may mention the names; only string constants that are
exactly the name count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

#: The spelled-out value → the one module allowed to spell it.
HOMES = {
    "GUPSHUP_PHONE": "session.py",
    "GUPSHUP_PASSWORD": "session.py",
    "GUPSHUP_BASE_URL": "client.py",
}


def _spelled(value: str) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC)
        if module.parts[0] == "emulator":  # the second implementation spells its own
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [str(module) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value == value]
    return found


@pytest.mark.parametrize("value", sorted(HOMES))
def test_spelled_in_one_module(value: str) -> None:
    assert _spelled(value) == [HOMES[value]]
