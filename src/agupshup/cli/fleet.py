"""``agupshup fleet worker`` and ``agupshup fleet status``: the fleet (docs/fleet.md) run by hand.

Rules this module enforces:

* ``worker``: messages on stdout, one JSON line each, once the feed has them; what the worker
  does (joins, takeovers, rebalances, lost claims, dropped groups) on stderr, one line each.
  Ctrl-C leaves the fleet cleanly (exit 0); a lost lease or an unreachable Redis is exit 1.
* ``status`` reads Redis only: no API call, no quota spent.
* ``prometheus_client`` is imported only with ``--metrics-port``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import click

from agupshup.client import Client
from agupshup.clock import SystemClock
from agupshup.fleet import (
    FleetEvent,
    FleetObserver,
    FleetWorker,
    RedisStreamSink,
    token_holder,
)
from agupshup.stores import close_redis, connect_redis
from agupshup.throttle import Scheduler, scaled_windows

from .app import main, run
from .output import json_line
from .settings import Settings, UsageError, current_settings, global_options

__all__ = ["fleet"]

PREFIX = "agupshup:fleet"
FEED = "agupshup:feed"
#: The longest ``status`` waits for Redis.
STATUS_TIMEOUT = 10.0


@main.group("fleet")
def fleet() -> None:
    """Many workers, one followed set, through Redis (docs/fleet.md)."""


def _redis_options(f: Any) -> Any:
    f = click.option("--feed", default=FEED, show_default=True,
                     help="The Redis Stream every message goes to once.")(f)
    f = click.option("--prefix", default=PREFIX, show_default=True,
                     help="The fleet's Redis keys.")(f)
    return click.option("--redis", "redis_url", required=True, metavar="URL",
                        help="The fleet's Redis, e.g. redis://localhost:6379/0.")(f)


class _Stderr(FleetObserver):
    def event(self, event: FleetEvent) -> None:
        click.echo(str(event), err=True)


@fleet.command("worker")
@global_options(with_env=False)
@_redis_options
@click.option("--local-address", metavar="ADDR", help="The egress address calls leave from.")
@click.option("--groups", "groups_file", required=True, type=click.Path(dir_okay=False),
              help="The followed groups, one name a line ('-': stdin).")
@click.option("--name", help="This worker's id [default host:pid:address].")
@click.option("--lease", type=click.FloatRange(min=1), default=15.0, show_default=True,
              help="Seconds a silent worker keeps its groups.")
@click.option("--every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Checkpoint every N messages...")
@click.option("--interval", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="...or every N seconds.")
@click.option("--metrics-port", type=click.IntRange(1, 65535),
              help="Serve Prometheus metrics on this port (needs agupshup[metrics]).")
def worker(redis_url: str, prefix: str, feed: str, local_address: str | None, groups_file: str,
           name: str | None, lease: float, every: int, interval: float,
           metrics_port: int | None) -> None:
    """Follow this worker's share of the groups; print its messages as JSON lines."""
    settings = current_settings()
    groups = _read_groups(groups_file)
    options = {"name": name, "lease": lease, "prefix": prefix, "every": every,
               "interval": interval}
    run(_work(settings, redis_url, feed, local_address, groups, options, metrics_port),
        settings, interrupt_ok=True)


def _read_groups(path: str) -> list[str]:
    text = sys.stdin.read() if path == "-" else _read(path)
    groups = [g.strip() for g in text.splitlines() if g.strip() and not g.startswith("#")]
    if not groups:
        raise click.BadParameter(f"no group names in {path}", param_hint="--groups")
    return groups


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror or exc}",
                                 param_hint="--groups") from None


async def _work(settings: Settings, redis_url: str, feed: str, local_address: str | None,
                groups: list[str], options: dict[str, Any], metrics_port: int | None) -> None:
    observers: list[FleetObserver] = [_Stderr()]
    on_throttle = None
    if metrics_port is not None:
        metrics = _serve_metrics(metrics_port, local_address or "-")
        observers.append(metrics)
        on_throttle = metrics.throttle_event
    client = _client(settings, local_address, on_throttle)
    sink = RedisStreamSink(redis_url, stream=feed)
    try:
        async with client, FleetWorker(client, redis_url, groups, sink=sink,
                                       observers=observers, **options) as w:
            async for message in w:
                json_line(message)
    finally:
        await sink.aclose()
        await client.scheduler.aclose()  # type: ignore[attr-defined]


def _client(settings: Settings, local_address: str | None,
            on_throttle: Any) -> Client:
    """A client on ``local_address`` with a budget of its own (the server counts per IP)."""
    clock = SystemClock()
    scheduler = Scheduler(scaled_windows(settings.time_scale or 1.0), clock=clock,
                          on_event=on_throttle)
    return Client(settings.checked_url(), throttle=scheduler, clock=clock,
                  local_address=local_address,
                  wire_format="xml" if settings.wire_format == "xml" else "json")


def _serve_metrics(port: int, address: str) -> Any:
    try:
        from agupshup.fleet_metrics import serve_metrics
    except ImportError:
        raise UsageError("--metrics-port needs prometheus_client: "
                         "pip install 'agupshup[metrics]'") from None
    try:
        return serve_metrics(port, address)
    except OSError as exc:
        raise UsageError(f"--metrics-port {port}: {exc.strerror or exc}") from None


# -- status -----------------------------------------------------------------------------------


@fleet.command("status")
@global_options(with_env=False)
@_redis_options
def status(redis_url: str, prefix: str, feed: str) -> None:
    """Members, groups held, quota left, lag and feed length, as Redis has them now."""
    settings = current_settings()
    state = run(_state(redis_url, prefix, feed), settings)
    if settings.json:
        json_line(state)
    else:
        _show(state, sys.stdout)


async def _state(redis_url: str, prefix: str, feed: str) -> dict[str, Any]:
    r, owned = connect_redis(redis_url, decode_responses=True)
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            return await _read_state(r, prefix, feed)
    finally:
        await close_redis(r, owned)


async def _read_state(r: Any, prefix: str, feed: str) -> dict[str, Any]:
    now = time.time()
    members = await r.zrange(f"{prefix}:members", 0, -1, withscores=True)
    info = await r.hgetall(f"{prefix}:info")
    claims = [k async for k in r.scan_iter(match=f"{prefix}:claim:*", count=1000)]
    holders = await r.mget(claims) if claims else []
    held = Counter(token_holder(t) for t in holders if t is not None)
    return {
        "members": [
            {"id": m, "lease_left": round(expiry - now, 1), "claims": held.get(m, 0),
             **json.loads(info.get(m, "{}"))}
            for m, expiry in members
        ],
        "claimed": sum(held.values()),
        "unreadable": await r.hgetall(f"{prefix}:unreadable"),
        "feed": {"stream": feed, "length": await r.xlen(feed)},
    }


def _show(state: dict[str, Any], out: TextIO) -> None:
    members = state["members"]
    click.echo(f"members: {len(members)}; groups claimed: {state['claimed']}", file=out)
    for m in members:
        quota = " ".join(f"{period} {limit - used}/{limit} left"
                         for period, limit, used in m.get("quota", []))
        lag = ", ".join(f"{g} {d}s" for g, d in m.get("lag", {}).items()) or "-"
        click.echo(f"  {m['id']}  address={m.get('address') or '-'}  claims={m['claims']}"
                   f"  following={m.get('following', 0)}  delivered={m.get('delivered', 0)}"
                   f"  lease_left={m['lease_left']}s", file=out)
        click.echo(f"    quota: {quota or '-'}", file=out)
        click.echo(f"    lag (worst sources): {lag}", file=out)
    for group, why in sorted(state["unreadable"].items()):
        click.echo(f"unreadable: {group} ({why}); dropped by the fleet", file=out)
    click.echo(f"feed {state['feed']['stream']}: {state['feed']['length']} entries", file=out)
