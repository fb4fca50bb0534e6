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


def _calls_of(attribute: str) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC)
        if module.parts[0] == "emulator":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.Attribute) and node.attr == attribute
               for node in ast.walk(tree)):
            found.append(str(module))
    return found


def test_wire_times_become_datetimes_in_models_only() -> None:
    # clock.readable turns a clock's seconds (not a wire time) into a datetime.
    assert _calls_of("fromtimestamp") == ["clock.py", "models.py"]


def test_the_cli_and_the_widget_show_times_through_format_ms() -> None:
    from agupshup.cli.output import when
    from agupshup.widget.templates import _when

    ms = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
    assert when(ms) == format_ms(ms, "%Y-%m-%d %H:%M:%S") == "2023-11-14 22:13:20"
    assert _when(ms) == "14 Nov 2023, 22:13 UTC"
    assert (when(0), _when(0), format_ms(-1, "%Y", unknown="?")) == ("-", "", "?")


def test_the_group_name_pattern_is_spelled_once() -> None:
    rule = r"[A-Za-z0-9][A-Za-z0-9_.\-]"
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC)
        if module.parts[0] != "emulator":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [str(module) for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)
                      and rule in node.value]
    assert found == ["wire/validate.py"]


def test_the_widget_looks_up_only_names_of_the_wire_s_shape() -> None:
    from agupshup.widget.app import _known_shape

    assert all(map(_known_shape, ["x.y-z_1", "a" * 64]))
    assert not any(map(_known_shape, ["", "-x", ".x", "a b", "a/b", "a" * 65, "é"]))
