"""The one format every benchmark reports in, so ``python -m benchmarks`` can build its table.

A benchmark script prints whatever it likes for people, then calls :func:`emit` once with its
figures; ``emit`` prints one ``BENCH-JSON:`` line that the runner collects.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PREFIX = "BENCH-JSON: "


@dataclass(frozen=True)
class Figure:
    """One measured figure, its baseline measured in the same run, and its target."""

    name: str
    value: float
    unit: str
    baseline: str = ""
    target: str = ""
    met: bool | None = None

    def row(self) -> str:
        mark = {True: "yes", False: "NO", None: "-"}[self.met]
        number = f"{self.value:,.0f}" if abs(self.value) >= 100 else f"{self.value:.4g}"
        value = f"{number} {self.unit}".strip()
        return f"| {self.name} | {value} | {self.baseline} | {self.target} | {mark} |"


def emit(bench: str, figures: list[Figure]) -> None:
    print(PREFIX + json.dumps({"bench": bench, "figures": [asdict(f) for f in figures]}))
