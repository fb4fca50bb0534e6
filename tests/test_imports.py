"""Imports run one way (docs/architecture.md), and importing the emulator stays cheap.

A module may import its own layer or lower ones, never a higher one, and never a pair named
in ``FORBIDDEN``. Every import counts: those under ``if TYPE_CHECKING:`` (a type from above is
a dependency on it too) and relative ones. ``agupshup.emulator`` imports nothing from the rest
of agupshup: it is the second, independent implementation of the protocol, so it sits at the
bottom (layer 0) and anything may use it. The one exemption is named in ``BRIDGES``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import agupshup

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

#: The top-level module (or package) of agupshup → its layer. Unknown modules fail the test:
#: a new module takes its place here, and in docs/architecture.md.
LAYERS = {
    "emulator": 0,
    "models": 0,
    "clock": 0,
    "virtualclock": 0,
    "errors": 1,
    "stores": 1,
    "wire": 2,
    "transport": 3,
    "throttle": 3,
    "tokenstore": 3,
    "session": 3,
    "breaker": 3,
    "retry": 3,
    "paging": 3,
    "polling": 3,
    "checkpoint": 3,
    "streams": 3,
    "planner": 3,
    "aggregate": 3,
    "client": 4,
    "demo": 5,
    "fleet": 5,
    "fleet_follow": 5,
    "fleet_metrics": 5,
    "widget": 5,
    "cli": 6,
    "__main__": 7,
}

#: Same-layer (or lower) imports that would still cross a boundary.
FORBIDDEN = {
    ("throttle", "wire"),
    ("throttle", "transport"),
    ("wire", "transport"),
    ("streams", "transport"),
    ("paging", "transport"),
    ("polling", "transport"),
    ("checkpoint", "transport"),
    ("session", "transport"),
    ("transport", "throttle"),
    ("widget", "cli"),
}

#: The pytest plugin is the one bridge: its ``gupshup_client`` fixture builds a Client, so it
#: imports the client inside the fixture, never at module level (loading the plugin stays cheap
#: and the emulator itself stays independent).
BRIDGES = {"agupshup.emulator.pytest_plugin"}

#: Heavy or client-side modules that ``import agupshup.emulator`` must not load.
NOT_FOR_THE_EMULATOR = ("agupshup.client", "agupshup.transport", "agupshup.throttle",
                        "agupshup.session", "agupshup.streams", "agupshup.wire",
                        "aiohttp", "anyio", "aiolimiter")


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(pkg)"


def _imports(
    tree: ast.Module, module: str = "agupshup.x", *, bridge: bool = False
) -> list[tuple[str, list[str]]]:
    """(module, names) for every import: ``TYPE_CHECKING`` blocks and relative imports
    included (``module`` resolves those). A ``bridge`` module's imports inside functions and
    under ``TYPE_CHECKING`` are left out: that is where it reaches across, on purpose."""
    found: list[tuple[str, list[str]]] = []
    package = module.split(".")

    def visit(node: ast.AST) -> None:
        if bridge and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if bridge and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.append((name, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(module: str, names: list[str]) -> set[str]:
    """The agupshup top-level modules an import statement reaches."""
    if module == "agupshup":
        # ``from agupshup import errors`` or ``from agupshup import Client`` (lazy re-export)
        homes = agupshup._HOME
        return {homes.get(n, n) for n in names}
    return {_top(module)} if module.startswith("agupshup.") else set()


def _edges() -> list[tuple[str, str, str]]:
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module == "agupshup.__init__":
            continue
        tree = ast.parse(path.read_text())
        for imported, names in _imports(tree, module, bridge=module in BRIDGES):
            for target in _targets(imported, names):
                edges.append((module, _top(module), target))
    return edges


EDGES = _edges()


def test_every_module_has_a_layer() -> None:
    tops = {source for _, source, _ in EDGES} | {target for _, _, target in EDGES}
    assert tops <= set(LAYERS), sorted(tops - set(LAYERS))


def _wrong(edges: list[tuple[str, str, str]]) -> list[str]:
    return [
        f"{module} imports agupshup.{target}"
        for module, source, target in edges
        if source != target
        and (LAYERS[target] > LAYERS[source] or (source, target) in FORBIDDEN)
    ]


def test_imports_run_one_way() -> None:
    wrong = _wrong(EDGES)
    assert not wrong, wrong


def test_the_emulator_imports_nothing_of_the_client() -> None:
    wrong = [f"{m} imports agupshup.{t}" for m, s, t in EDGES if s == "emulator" != t]
    assert not wrong, wrong


def test_the_rule_can_fail() -> None:
    """The checker itself: back-edges planted into a module are found, whether plain, under
    ``TYPE_CHECKING`` or relative."""
    planted = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from agupshup.transport import X\n"
        "from . import client\n"
        "if TYPE_CHECKING:\n"
        "    from agupshup.fleet import FleetWorker\n"
    )
    edges = [("agupshup.paging", "paging", t) for m, n in _imports(planted, "agupshup.paging")
             for t in _targets(m, n)]
    assert sorted(_wrong(edges)) == [
        "agupshup.paging imports agupshup.client",
        "agupshup.paging imports agupshup.fleet",
        "agupshup.paging imports agupshup.transport",
    ]


@pytest.mark.parametrize("module", ["agupshup.emulator", "agupshup.emulator.pytest_plugin"])
def test_importing_the_emulator_loads_no_client(module: str) -> None:
    code = (
        f"import sys, {module}; "
        f"loaded = [m for m in {NOT_FOR_THE_EMULATOR!r} if m in sys.modules]; "
        "print(loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True,
        env={"PYTHONPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"


def test_the_package_exports_what_it_declares() -> None:
    tree = ast.parse((SRC / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If))
    declared = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom)
                for a in n.names if a.name != "*"}
    assert declared == set(agupshup._HOME) | set(agupshup._STAR)
    typed = next(n.value for n in block.body
                 if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__")
    assert set(ast.literal_eval(typed)) == declared
    every = agupshup.__all__
    assert len(every) == len(set(every))
    for name in every:
        assert getattr(agupshup, name) is not None, name
    assert agupshup.Client.__module__ == "agupshup.client"
    assert agupshup.InvalidToken.__module__ == "agupshup.errors"
    with pytest.raises(AttributeError):
        _ = agupshup.NoSuchName
