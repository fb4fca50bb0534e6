"""CLI fixtures: an emulator in a thread of its own (the CLI runs its own event loop), a click
runner with a clean environment, and lazy answers for prompts."""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agupshup import cli
from agupshup.emulator import EmulatorConfig, EmulatorThread
from agupshup.emulator.seed import ALICE_PHONE, DEMO_PASSWORD, DEMO_PHONE, load_seed

#: Every variable the CLI reads; unset unless a test sets it.
ENV_KEYS = ("GUPSHUP_BASE_URL", "GUPSHUP_PHONE", "GUPSHUP_PASSWORD", "GUPSHUP_TIME_SCALE",
            "GUPSHUP_LEDGER")


BIG = 600


def seed_with_big_group() -> dict[str, Any]:
    """The default seed plus ``big``, alice's group of 600 messages (41 calls to read)."""
    seed = dict(load_seed())
    seed["groups"] = [*seed["groups"], {
        "name": "big", "owner": ALICE_PHONE, "created_on": 1262304000000,
        "messages": {"count": BIG, "text": "big {n}", "start": 1275350400000, "step": 1000}}]
    return seed


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(random_seed=None)


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[EmulatorThread]:
    with EmulatorThread(emulator_config) as server:
        yield server


class Cli:
    """``cli(args, env=..., input=...)`` runs ``agupshup`` in-process against the emulator."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.runner = CliRunner()

    def env(self, **overrides: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = dict.fromkeys(ENV_KEYS)
        env.update(GUPSHUP_BASE_URL=self.base_url, GUPSHUP_PHONE=DEMO_PHONE,
                   GUPSHUP_PASSWORD=DEMO_PASSWORD, GUPSHUP_LEDGER="memory")
        env.update(overrides)
        return env

    def __call__(self, *args: str, input: Any = None,
                 env: Mapping[str, str | None] | None = None) -> Result:
        return self.runner.invoke(cli.main, list(args), input=input,
                                  env=self.env(**(env or {})), catch_exceptions=False)


@pytest.fixture
def run(emulator: EmulatorThread) -> Cli:
    return Cli(emulator.base_url)


class LazyInput(io.RawIOBase):
    """Answers for prompts, each computed only when the prompt reads it (e.g. an SMS code)."""

    def __init__(self, *answers: str | Callable[[], str]) -> None:
        self._answers: deque[str | Callable[[], str]] = deque(answers)
        self._buffer = b""
        self.asked = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if len(b) == 0:  # click probes with read(0): answer without asking
            return 0
        if not self._buffer:
            if not self._answers:
                return 0
            answer = self._answers.popleft()
            self.asked += 1
            self._buffer = ((answer() if callable(answer) else answer) + "\n").encode()
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n
