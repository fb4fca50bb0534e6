"""``agupshup export`` held by the throttle: the bar says that it waits, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from agupshup.emulator import EmulatorConfig, EmulatorThread

from .conftest import BIG, Cli, seed_with_big_group


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Time runs 60x faster (a throttle minute is a second) and a group has 600 messages."""
    return EmulatorConfig(random_seed=None, time_scale=60.0, seed=seed_with_big_group())


def test_export_says_when_and_why_it_waits_for_the_throttle(
    run: Cli, emulator: EmulatorThread, tmp_path: Path
) -> None:
    out = tmp_path / "big.jsonl"
    # 41 calls; with no interactive call around, reads may use all of a minute's 30 (one
    # second here).
    result = run("--time-scale", "60", "export", "big", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == BIG
    waits = [x for x in result.stderr.splitlines() if "waiting" in x]
    assert waits
    # A read-only run may fill the whole window: no place is kept for posts it never makes.
    assert waits[0] == "big: waiting for the throttle (minute 30/30 used)"
    assert all(len(x) < 80 for x in waits)
    assert sum(emulator.emulator.throttled.values()) == 0  # waited, never refused

