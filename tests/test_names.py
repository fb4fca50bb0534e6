"""Each public name of the client means one thing (issue 16): defined in one module only.

The emulator is left out on purpose: it is a second implementation that mirrors the client's
names (``Window``, ``MethodSpec``, ``get_stream`` …) without importing them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

#: Names that may recur: entry points, module loggers, and type variables and aliases local to
#: their module.
RECURRING = {"main", "F", "P", "R", "T", "Handler", "log", "logger"}

#: Known collisions still to rename, each with the modules that define it (none left).
PENDING: dict[str, list[str]] = {}


def _defined(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_") and n not in RECURRING]


def test_each_public_name_is_defined_once() -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC)
        if module.parts[0] == "emulator":
            continue
        for name in _defined(ast.parse(path.read_text(encoding="utf-8"))):
            where[name].append(str(module))
    twice = {name: modules for name, modules in where.items() if len(modules) > 1}
    assert twice == PENDING
