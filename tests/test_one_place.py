"""Each rule lives in one place (issue 16): a name the code spells out is spelled in one module.

Every other module imports the constant, so changing the rule (an environment variable's name,
…) is one edit. Docstrings and messages may mention the names; only string constants that are
exactly the name count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from agupshup.errors import EXCERPT_CHARS

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

#: The spelled-out value → the one module allowed to spell it.
HOMES = {
    "GUPSHUP_PHONE": "session.py",
    "GUPSHUP_PASSWORD": "session.py",
    "GUPSHUP_BASE_URL": "client.py",
}


#: The modules that quote a server's text in an error, and so cut it to the excerpt length.
QUOTING = ("errors.py", "wire/envelope.py", "wire/redact.py")

#: Still spelling the excerpt length on its own: transport.py (``_EXCERPT``) is being changed
#: on another branch; it should pass nothing and take ``excerpt``'s default.
EXCERPT_PENDING = ["transport.py"]


def _spelled(value: object, modules: Iterable[Path] | None = None) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")) if modules is None else modules:
        module = path.relative_to(SRC)
        if module.parts[0] == "emulator":  # the second implementation spells its own
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [str(module) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and type(node.value) is type(value)
                  and node.value == value]
    return found


@pytest.mark.parametrize("value", sorted(HOMES))
def test_spelled_in_one_module(value: str) -> None:
    assert _spelled(value) == [HOMES[value]]


def test_the_excerpt_length_is_spelled_once() -> None:
    modules = [SRC / m for m in (*QUOTING, *EXCERPT_PENDING)]
    assert _spelled(EXCERPT_CHARS, modules) == ["errors.py", *EXCERPT_PENDING]
