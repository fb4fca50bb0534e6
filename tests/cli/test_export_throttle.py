"""``agupshup export`` held by the throttle: the bar says that it waits, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from agupshup.emulator import EmulatorConfig, EmulatorThread
from agupshup.emulator.seed import ALICE_PHONE, load_seed

from .conftest import Cli

BIG = 600


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Time runs 60x faster (a throttle minute is a second) and a group has 600 messages."""
    seed = dict(load_seed())
    seed["groups"] = [*seed["groups"], {
        "name": "big", "owner": ALICE_PHONE, "created_on": 1262304000000,
        "messages": {"count": BIG, "text": "big {n}", "start": 1275350400000, "step": 1000}}]
    return EmulatorConfig(random_seed=None, time_scale=60.0, seed=seed)


def test_export_says_when_and_why_it_waits_for_the_throttle(
    run: Cli, emulator: EmulatorThread, tmp_path: Path
) -> None:
    out = tmp_path / "big.jsonl"
    # 41 calls; with no interactive call around, reads may use all of a minute's 30 (one
    # second here).
    result = run("--time-scale", "60", "export", "big", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == BIG
    assert "big: waiting for the throttle (minute window: 30/30 calls used" in result.stderr
    assert sum(emulator.emulator.throttled.values()) == 0  # waited, never refused

