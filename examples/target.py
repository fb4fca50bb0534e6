"""Shared by the examples: the server to talk to, and one throttle scheduler for all of an
example's clients. Public API only (``agupshup``, ``agupshup.throttle``, ``agupshup.emulator``).

``async with target(base_url) as t:`` gives ``base_url`` (or ``GUPSHUP_BASE_URL``) when set;
otherwise an emulator started in this process on a free port, with time running
``embedded_time_scale`` times faster, in the emulator and in the scheduler's windows alike.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from agupshup import Client, Credentials
from agupshup.emulator import EmulatorConfig, EmulatorServer
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.session import credentials_from_env
from agupshup.throttle import DEFAULT_WINDOWS, Scheduler, Window


@dataclass
class Target:
    base_url: str
    #: The emulator started here, or None for a server given by URL or environment.
    server: EmulatorServer | None
    #: One scheduler for every client of the example: they share one IP's quota.
    scheduler: Scheduler

    @property
    def embedded(self) -> bool:
        return self.server is not None

    def credentials(self) -> Credentials | None:
        """``GUPSHUP_PHONE``/``GUPSHUP_PASSWORD``; the seeded demo user on the embedded one."""
        found = credentials_from_env()
        if found is None and self.embedded:
            return Credentials(DEMO_PHONE, DEMO_PASSWORD)
        return found

    def client(self, credentials: Credentials | None = None) -> Client:
        return Client(self.base_url, credentials=credentials, throttle=self.scheduler)


@contextlib.asynccontextmanager
async def target(
    base_url: str | None = None,
    *,
    time_scale: float | None = None,
    embedded_time_scale: float = 10.0,
    seed: Mapping[str, Any] | None = None,
) -> AsyncIterator[Target]:
    url = base_url or os.environ.get("GUPSHUP_BASE_URL")
    async with contextlib.AsyncExitStack() as stack:
        server = None
        scale = time_scale or (1.0 if url else embedded_time_scale)
        if not url:
            config = EmulatorConfig(random_seed=None, time_scale=scale, seed=seed)
            server = await stack.enter_async_context(EmulatorServer(config))
            url = server.base_url
        windows = [Window(w.name, w.limit, w.length / scale, w.warn) for w in DEFAULT_WINDOWS]
        scheduler = Scheduler(windows)
        stack.push_async_callback(scheduler.aclose)
        yield Target(url, server, scheduler)
