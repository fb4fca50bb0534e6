"""What the commands print: lines for people, JSON Lines for programs.

Rules this module enforces:

* With ``--json`` every record is one compact JSON object on its own line (JSON Lines), field
  names as on the wire; nothing else goes to stdout.
* Times are UTC ``YYYY-MM-DD HH:MM:SS``; a zero timestamp prints as ``-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import click
import msgspec

from agupshup.demo import quota_lines
from agupshup.models import Group, Message, QuotaWindow, Reply, format_ms

__all__ = ["json_line", "show_group", "show_message", "show_outcome", "show_quota", "show_reply",
           "when"]


def when(ms: int) -> str:
    return format_ms(ms, "%Y-%m-%d %H:%M:%S", unknown="-")


def json_line(value: object) -> None:
    click.echo(msgspec.json.encode(value).decode())


def show_message(m: Message, as_json: bool) -> None:
    if as_json:
        json_line(m)
    else:
        click.echo(f"#{m.id:<6} {when(m.timestamp)}  {m.group_name}  <{m.sender}>  {m.text}")


def show_reply(r: Reply, as_json: bool) -> None:
    if as_json:
        json_line(r)
        return
    hidden = "  (hidden)" if r.hidden else ""
    click.echo(f"#{r.id:<6} {when(r.timestamp)}  @{r.from_group} -> @{r.group_name}  "
               f"<{r.sender}>  {r.text}{hidden}")


def show_group(g: Group, as_json: bool, *, long: bool = False) -> None:
    if as_json:
        json_line(g)
        return
    flags = ", ".join([w for w, on in (("private", g.private), ("adult", g.adult)) if on]
                      or ["public"])
    if not long:
        click.echo(f"{g.group_name:<20} {flags:<16} posts {g.num_posts:<6} "
                   f"members {g.num_members:<5} {g.description}")
        return
    click.echo(f"{g.group_name} ({flags})")
    if g.description:
        click.echo(f"  {g.description}")
    for label, value in (("owner", g.owner), ("posts", g.num_posts),
                         ("members", g.num_members), ("created", when(g.created_on))):
        click.echo(f"  {label + ':':<8} {value}")


def show_outcome(result: object, as_json: bool, done: Iterable[str], failed: Iterable[str]) -> None:
    """A partial success: what was done on stdout, what failed on stderr (or the result)."""
    if as_json:
        json_line(result)
        return
    for line in done:
        click.echo(line)
    for line in failed:
        click.echo(line, err=True)


def show_quota(windows: Sequence[QuotaWindow], now: float, as_json: bool) -> None:
    """One line (or JSON object) per throttle window; ``now`` on the scheduler's clock."""
    if not as_json:
        for line in quota_lines(windows, now):
            click.echo(line)
        return
    for w in windows:
        json_line({
            "period": w.period,
            "length": w.length,
            "limit": w.limit,
            "used": w.used,
            "freeIn": round(max(0.0, w.free_at - now), 3),
            "heldFor": None if w.held_until is None else round(max(0.0, w.held_until - now), 3),
        })
