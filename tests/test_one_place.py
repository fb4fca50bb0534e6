"""Each rule lives in one place (issue 16): what the code spells out is spelled in one module.

Every other module imports the constant or calls the function, so changing the rule (an
environment variable's name, the excerpt length, how a time is shown, what a group name looks
like) is one edit. Docstrings and messages may mention the names; only constants count. The
emulator is left out: the second implementation spells its own.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agupshup.errors import EXCERPT_CHARS
from agupshup.models import format_ms

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

#: The spelled-out value → the one module allowed to spell it.
HOMES = {
    "GUPSHUP_PHONE": "session.py",
    "GUPSHUP_PASSWORD": "session.py",
    "GUPSHUP_BASE_URL": "client.py",
}

#: The modules that quote a server's text in an error, and so cut it to the excerpt length.
QUOTING = ("errors.py", "wire/envelope.py", "wire/redact.py")

#: Modules that once spelled the excerpt length on their own (they take ``excerpt``'s default).
EXCERPT_PENDING: list[str] = []


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC)
        if module.parts[0] != "emulator":
            yield str(module), ast.parse(path.read_text(encoding="utf-8"))


def _where(match: Callable[[ast.AST], bool]) -> list[str]:
    """The modules (in path order, once each) with a node that ``match`` accepts."""
    return [module for module, tree in _modules() if any(map(match, ast.walk(tree)))]


def _constant(value: object) -> Callable[[ast.AST], bool]:
    return lambda node: (isinstance(node, ast.Constant) and type(node.value) is type(value)
                         and node.value == value)


@pytest.mark.parametrize("value", sorted(HOMES))
def test_spelled_in_one_module(value: str) -> None:
    assert _where(_constant(value)) == [HOMES[value]]


def test_the_excerpt_length_is_spelled_once() -> None:
    found = [m for m in _where(_constant(EXCERPT_CHARS)) if m in (*QUOTING, *EXCERPT_PENDING)]
    assert found == ["errors.py", *EXCERPT_PENDING]


def test_wire_times_become_datetimes_in_models_only() -> None:
    # clock.readable turns a clock's seconds (not a wire time) into a datetime.
    def converts(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "fromtimestamp"

    assert _where(converts) == ["clock.py", "models.py"]


def test_the_cli_and_the_widget_show_times_through_format_ms() -> None:
    from agupshup.cli.output import when
    from agupshup.widget.templates import _when

    ms = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
    assert when(ms) == format_ms(ms, "%Y-%m-%d %H:%M:%S") == "2023-11-14 22:13:20"
    assert _when(ms) == "14 Nov 2023, 22:13 UTC"
    assert (when(0), _when(0), format_ms(-1, "%Y", unknown="?")) == ("-", "", "?")


def test_the_group_name_pattern_is_spelled_once() -> None:
    rule = r"[A-Za-z0-9][A-Za-z0-9_.\-]"

    def spells(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and rule in node.value

    assert _where(spells) == ["wire/validate.py"]


def test_the_widget_looks_up_only_names_of_the_wire_s_shape() -> None:
    from agupshup.widget.app import _known_shape

    assert all(map(_known_shape, ["x.y-z_1", "a" * 64]))
    assert not any(map(_known_shape, ["", "-x", ".x", "a b", "a/b", "a" * 65, "é"]))
