"""Test helpers for runs against the emulator: callers at full demand, the throttle tags of an
answer, and the most admissions any schedule could get (the optimum)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from agupshup.errors import QuotaExhausted
from agupshup.models import ThrottleTag
from agupshup.throttle import Scheduler

PARAMS = {"method": "groups.getMessage", "v": "1.0", "format": "json", "group": "jumpy"}


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse(body: bytes) -> tuple[list[ThrottleTag], bool]:
    """The ``throttle`` tags of an answer, and whether it was a 113."""
    response = json.loads(body)["response"]
    tags = [
        ThrottleTag(period=t["period"], count=int(t["count"]), warn=int(t.get("warn", 0)),
                    limit=int(t.get("limit", 0)))
        for t in _many(response.get("throttle"))
    ]
    limited = any(str(e.get("code")) == "113" for e in _many(response.get("error")))
    return tags, limited


async def full_demand(
    sched: Scheduler, url: str, callers: int, start: float, duration: float
) -> tuple[list[float], int]:
    """``callers`` tasks call in a loop from wall time ``start`` for ``duration`` seconds.

    Returns the admission times (seconds after ``start``) and how many 113s came back.
    """
    admitted: list[float] = []
    limited_seen = 0
    await asyncio.sleep(max(0.0, start - time.time()))
    stop = start + duration

    async def caller(http: aiohttp.ClientSession) -> None:
        nonlocal limited_seen
        while (left := stop - time.time()) > 0:
            try:
                async with sched.slot("bulk", max_wait=left) as slot:
                    admitted.append(time.time() - start)
                    async with http.get(url, params=PARAMS) as answer:
                        body = await answer.read()
                    tags, limited = parse(body)
                    limited_seen += limited
                    slot.learn(tags, limited)
            except QuotaExhausted:
                return

    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(caller(http) for _ in range(callers)))
    return admitted, limited_seen
