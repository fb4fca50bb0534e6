"""The exception tree drawn in ``errors.py``'s docstring is the code's, and all of it is exported.

Issue 25: exceptions had drifted outside the tree (``FleetUnavailable``, ``UnreadableGroups``).
The drawing is what a user reads to write an ``except``; so every class of ``errors.py`` must
stand in it under its real base (and with its extra builtin base in parentheses), the drawing
must name no class that is not there, and every one is importable as ``agupshup.<Name>``.
An exception class defined anywhere else in the package must be a known internal signal.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import agupshup
from agupshup import errors

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

#: ``├── Name (Extra, Bases)`` or the root at the left margin; the name's column is its depth.
_ENTRY = re.compile(r"(?:^ {4}|[├└]── )(\w+)(?: \(([\w, ]+)\))?")

#: Exception classes defined outside ``errors.py``, none of which reaches a library user.
INTERNAL = {
    "clock.py": {"Overdue"},  # within()'s signal: callers turn it into DeadlineExceeded
    "cli/settings.py": {"UsageError"},  # the CLI's exit code 2, never raised to a library user
    "widget/cache.py": {"Busy", "Limited"},  # answered by the widget's server as 503/429
    "widget/__main__.py": {"CannotListen"},  # the widget command's own exit message
}


def drawn_tree(doc: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """Each class of the drawing → (its parent in the drawing, the extra bases in parentheses)."""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    tree: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    stack: list[tuple[int, str]] = []  # (column, name) of the open ancestors
    for line in block.splitlines():
        match = _ENTRY.search(line)
        if match is None:  # a description's second line
            continue
        column = match.start(1)
        while stack and stack[-1][0] >= column:
            stack.pop()
        name, extra = match[1], tuple(b.strip() for b in (match[2] or "").split(",") if b)
        assert name not in tree, f"{name} is drawn twice"
        tree[name] = (stack[-1][1] if stack else None, extra)
        stack.append((column, name))
    return tree


def defined_exceptions() -> dict[str, type[BaseException]]:
    return {
        name: value for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }


def _names_an_exception(base: ast.expr) -> bool:
    """Whether a base, as written, is an exception: a builtin one or a class of errors.py."""
    text = ast.unparse(base)
    return bool(re.search(r"Error|Exception|Warning", text)) or (
        text.rsplit(".", 1)[-1] in defined_exceptions()
    )


def test_the_parser_reads_a_small_tree() -> None:
    doc = """x::

    Root                     base
    ├── A (ValueError)       first line
    │   │                    second line
    │   └── B                   under A
    └── C                    last

after"""
    assert drawn_tree(doc) == {
        "Root": (None, ()), "A": ("Root", ("ValueError",)), "B": ("A", ()), "C": ("Root", ()),
    }


def test_the_drawing_names_exactly_the_classes_of_errors_py() -> None:
    drawn = drawn_tree(errors.__doc__ or "")
    assert sorted(drawn) == sorted(defined_exceptions())


@pytest.mark.parametrize("name", sorted(defined_exceptions()))
def test_each_class_is_drawn_under_its_real_bases(name: str) -> None:
    parent, extra = drawn_tree(errors.__doc__ or "")[name]
    bases = tuple(base.__name__ for base in defined_exceptions()[name].__bases__)
    if parent is None:
        assert bases == ("Exception", *extra)
    else:
        assert bases == (parent, *extra)


@pytest.mark.parametrize("name", sorted(defined_exceptions()))
def test_each_class_is_exported(name: str) -> None:
    assert name in errors.__all__
    assert name in agupshup.__all__
    assert getattr(agupshup, name) is defined_exceptions()[name]


def test_no_public_exception_lives_outside_errors_py() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = str(path.relative_to(SRC))
        if module == "errors.py" or module.startswith("emulator/"):
            continue  # the emulator is the second implementation: its own errors
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                map(_names_an_exception, node.bases)
            ):
                found.setdefault(module, set()).add(node.name)
    assert found == INTERNAL
