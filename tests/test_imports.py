"""Imports run one way (docs/architecture.md), and importing the emulator stays cheap.

docs/architecture.md holds the truth: its layers table places every module of
``src/agupshup`` (a row for a package covers its submodules; the most specific row wins), its
boundaries table names imports that would cross a boundary anyway. This test reads both and
checks every import: at module level, inside functions, under ``if TYPE_CHECKING:``, relative
ones, ``pytest_plugins`` entries, and the packages a submodule import executes. A module may
import only rows of lower layers. Nothing is exempt. The checker itself is tried on planted
trees (``test_planted_*``), so each kind of back-edge is known to fail.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import agupshup

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "agupshup"
DOC = ROOT / "docs" / "architecture.md"

#: Heavy or client-side modules that loading the emulator or a pytest plugin must not load.
NOT_FOR_THE_EMULATOR = ("agupshup.client", "agupshup.transport", "agupshup.throttle",
                        "agupshup.session", "agupshup.streams", "agupshup.wire",
                        "aiohttp", "anyio", "aiolimiter")

_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`([\w.]+)`\s*\|")
_RULE = re.compile(r"^\|\s*`([\w.]+)`\s*\|([^|]*)\|")


# -- the doc --------------------------------------------------------------------------------


def _block(doc: str, name: str) -> list[str]:
    """The lines between ``<!-- name…-->`` and ``<!-- /name -->``."""
    start = re.search(rf"^<!-- {name}\b.*-->$", doc, re.M)
    end = re.search(rf"^<!-- /{name} -->$", doc, re.M)
    assert start, f"docs/architecture.md has no <!-- {name} --> block"
    assert end, f"docs/architecture.md does not end its <!-- {name} --> block"
    return doc[start.end():end.start()].splitlines()


def read_layers(doc: str) -> dict[str, int]:
    """Each row of the layers table: module (relative to the package) → layer."""
    layers: dict[str, int] = {}
    for line in _block(doc, "layers"):
        if (m := _ROW.match(line)) is not None:
            assert m[2] not in layers, f"{m[2]} has two rows"
            layers[m[2]] = int(m[1])
    assert layers, "the layers table has no rows"
    return layers


def read_boundaries(doc: str) -> set[tuple[str, str]]:
    """Each (module, never imported) pair of the boundaries table; ``*``: anything outside."""
    rules: set[tuple[str, str]] = set()
    for line in _block(doc, "boundaries"):
        if (m := _RULE.match(line)) is not None:
            rules |= {(m[1], t) for t in re.findall(r"`([\w.*]+)`", m[2])}
    return rules


# -- the tree -------------------------------------------------------------------------------


def modules(package: Path) -> dict[str, Path]:
    """Every module of ``package``, by its name relative to it (``aggregate._core``;
    ``aggregate`` for a package's ``__init__``; ``__init__`` for the package's own)."""
    out: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if len(parts) > 1 and parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(tree: ast.Module, path: Path, package: Path) -> Iterator[tuple[str, list[str]]]:
    """(absolute module, names) for every import anywhere in ``tree`` (the file at ``path``
    in ``package``), relative ones resolved."""
    # The package a relative import starts from: the file's folder, as a dotted name.
    here = [package.name, *path.parent.relative_to(package).parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            yield ".".join([*base, *([node.module] if node.module else [])]), [
                a.name for a in node.names]
        elif isinstance(node, ast.Import):
            yield from ((a.name, []) for a in node.names)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            plugins = ast.literal_eval(node.value)
            yield from ((p, []) for p in ([plugins] if isinstance(plugins, str) else plugins))


@dataclass
class Tree:
    """A package's modules and the doc's tables: what :func:`problems` checks."""

    package: Path
    layers: Mapping[str, int]
    boundaries: set[tuple[str, str]]
    #: ``from package import Name`` of a lazily re-exported name → the module that defines it.
    homes: Mapping[str, str]

    def row(self, module: str) -> str | None:
        """The most specific row that places ``module``."""
        found = [r for r in self.layers if module == r or module.startswith(r + ".")]
        return max(found, key=len, default=None)

    def targets(self, imported: str, names: list[str], known: set[str]) -> set[str]:
        """The modules of the package an import runs: the one named, and the packages
        above it (their ``__init__`` runs first)."""
        top = self.package.name
        if imported == top:
            found = {self.homes.get(n, n if n in known else "__init__") for n in names} or {
                "__init__"}
        elif imported.startswith(top + "."):
            rel = imported[len(top) + 1:]
            subs = {f"{rel}.{n}" for n in names if f"{rel}.{n}" in known}
            found = subs or {rel}
        else:
            return set()
        parts = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
        return found | parts


def problems(tree: Tree) -> list[str]:
    """Everything the doc and the imports disagree on: modules without a row, rows without a
    module, back-edges and crossed boundaries."""
    found = modules(tree.package)
    out = [f"no row in the layers table: {m}" for m in found if tree.row(m) is None]
    out += [f"a row for no module: {r}" for r in tree.layers if r not in found]
    for module, path in found.items():
        source = tree.row(module)
        if source is None:
            continue
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for imported, names in _imported(ast.parse(path.read_text()), path, tree.package):
            for target in tree.targets(imported, names, set(found)) - own:
                row = tree.row(target)
                if row is None or row == source:
                    continue
                out += _judge(tree, module, source, target, row)
    return sorted(set(out))


def _judge(tree: Tree, module: str, source: str, target: str, row: str) -> list[str]:
    top = tree.package.name
    out = []
    if tree.layers[row] >= tree.layers[source]:
        out.append(f"{top}.{module} imports {top}.{target} (layer {tree.layers[source]} → "
                   f"{tree.layers[row]})")
    for ruled, banned in tree.boundaries:
        if source != ruled and not source.startswith(ruled + "."):
            continue
        inside = row == ruled or row.startswith(ruled + ".")
        if (banned == "*" and not inside) or row == banned or row.startswith(banned + "."):
            out.append(f"{top}.{module} imports {top}.{target} (boundary: {ruled} never "
                       f"imports {banned})")
    return out


def _real() -> Tree:
    doc = DOC.read_text()
    return Tree(SRC, read_layers(doc), read_boundaries(doc), agupshup._HOME)


# -- the real tree --------------------------------------------------------------------------


def test_the_doc_places_every_module_and_only_modules() -> None:
    wrong = [p for p in problems(_real()) if p.startswith(("no row", "a row for"))]
    assert not wrong, wrong


def test_imports_run_one_way() -> None:
    wrong = [p for p in problems(_real()) if not p.startswith(("no row", "a row for"))]
    assert not wrong, wrong


def test_the_doc_keeps_the_emulator_and_the_planner_apart() -> None:
    """The rows that make these promises are not to be dropped to make an import pass."""
    tree = _real()
    assert ("emulator", "*") in tree.boundaries
    assert ("planner", "throttle") in tree.boundaries


def test_the_planners_default_windows_are_the_throttles() -> None:
    """The planner spells GupShup's limits (it may not import the throttle): the same ones."""
    from agupshup.planner import _GUPSHUP_LIMITS
    from agupshup.throttle import DEFAULT_WINDOWS

    assert [(w.limit, w.length) for w in _GUPSHUP_LIMITS] == [
        (w.limit, w.length) for w in DEFAULT_WINDOWS]


@pytest.mark.parametrize(
    "module", ["agupshup.emulator", "agupshup.emulator.pytest_plugin", "agupshup.testing"]
)
def test_importing_the_emulator_or_a_plugin_loads_no_client(module: str) -> None:
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


# -- the checker, on planted trees ----------------------------------------------------------

PLANTED_DOC = """
<!-- layers -->
| layer | module | what |
| --- | --- | --- |
| 0 | `emu` | the independent one |
| 0 | `base` | bottom |
| 1 | `heavy.light` | a light part of a heavy package |
| 2 | `low` | |
| 2 | `side` | |
| 3 | `heavy` | |
| 4 | `high` | |
| 5 | `__init__` | the facade |
<!-- /layers -->
<!-- boundaries -->
| module | never imports | why |
| --- | --- | --- |
| `emu` | `*` | independent |
| `high` | `side` | a boundary the layers allow |
<!-- /boundaries -->
"""

PLANTED = {
    "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                   "    from pkg.high import Thing\n",
    "base.py": "",
    "low.py": "from pkg import base\nfrom pkg.base import x\nfrom . import base as b\n",
    "side.py": "import pkg.base\n",
    "heavy/__init__.py": "from pkg.heavy.light import y\nfrom .light import z\n",
    "heavy/light.py": "from pkg.base import x\n",
    "high.py": "from pkg import Thing, low\nfrom pkg.heavy import light\n",
    "emu/__init__.py": "",
    "emu/server.py": "from pkg.emu import other\nfrom . import other as o\n",
    "emu/other.py": "",
}


def _plant(tmp_path: Path, changes: Mapping[str, str], doc: str = PLANTED_DOC) -> list[str]:
    package = tmp_path / "pkg"
    for name, text in {**PLANTED, **changes}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return problems(Tree(package, read_layers(doc), read_boundaries(doc), {"Thing": "high"}))


def test_planted_tree_is_clean_as_planted(tmp_path: Path) -> None:
    assert _plant(tmp_path, {}) == []


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("plain", "from pkg.high import Thing\n"),
        ("plain, as a module", "import pkg.high\n"),
        ("through the package's lazy names", "from pkg import Thing\n"),
        ("TYPE_CHECKING", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from pkg.high import Thing\n"),
        ("inside a function", "def f():\n    from pkg.high import Thing\n"),
        ("relative", "from . import high\n"),
        ("relative, from a module", "from .high import Thing\n"),
        ("pytest_plugins", "pytest_plugins = ['pkg.high']\n"),
    ],
)
def test_planted_back_edge_fails(tmp_path: Path, kind: str, text: str) -> None:
    assert _plant(tmp_path, {"low.py": text}) == ["pkg.low imports pkg.high (layer 2 → 4)"]


def test_planted_same_layer_edge_fails(tmp_path: Path) -> None:
    assert _plant(tmp_path, {"low.py": "from pkg import side\n"}) == [
        "pkg.low imports pkg.side (layer 2 → 2)"]


def test_planted_submodule_import_runs_its_package(tmp_path: Path) -> None:
    """``heavy.light`` is low, but importing it runs ``heavy/__init__.py``, which is not."""
    assert _plant(tmp_path, {"low.py": "from pkg.heavy.light import y\n"}) == [
        "pkg.low imports pkg.heavy (layer 2 → 3)"]


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("plain", "from pkg.base import x\n"),
        ("TYPE_CHECKING", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from pkg import low\n"),
        ("inside a fixture", "def fixture():\n    from pkg.high import Thing\n"),
        ("relative", "from .. import base\n"),
        ("pytest_plugins", "pytest_plugins = 'pkg.high'\n"),
    ],
)
def test_planted_import_into_the_emulator_fails(tmp_path: Path, kind: str, text: str) -> None:
    wrong = _plant(tmp_path, {"emu/server.py": text})
    assert wrong, kind
    assert all(w.startswith("pkg.emu.server imports") for w in wrong), wrong
    assert any("boundary: emu never imports *" in w for w in wrong), wrong


def test_planted_boundary_fails(tmp_path: Path) -> None:
    assert _plant(tmp_path, {"high.py": "from pkg import side\n"}) == [
        "pkg.high imports pkg.side (boundary: high never imports side)"]


def test_planted_module_without_a_row_fails(tmp_path: Path) -> None:
    assert _plant(tmp_path, {"stores.py": ""}) == ["no row in the layers table: stores"]


def test_planted_row_without_a_module_fails(tmp_path: Path) -> None:
    doc = PLANTED_DOC.replace("| 4 | `high` | |", "| 4 | `high` | |\n| 4 | `gone` | |")
    assert _plant(tmp_path, {}, doc) == ["a row for no module: gone"]
