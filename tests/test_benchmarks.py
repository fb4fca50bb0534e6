"""The benchmarks still run (quick mode). Nothing here looks at a timing or a target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import BENCHES

ROOT = Path(__file__).resolve().parent.parent


def test_every_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())["benchmarks"]
    assert set(results) == set(BENCHES)
    for name, result in results.items():
        assert result["status"] == "ok", (name, result["status"])
        assert result["figures"], f"{name} reported no figure"
