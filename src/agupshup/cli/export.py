"""``agupshup export``: a group's messages to a JSON Lines file, with a progress bar.

Rules this module enforces:

* The file appears only when complete: it is written as ``NAME.part`` and renamed at the end;
  a failed or interrupted export leaves nothing behind.
* The bar's label says what the export waits for (the throttle window in the way, and for how
  long), in under 80 characters; off a terminal each wait is one logged line, not a countdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import click
import msgspec
from click._termui_impl import ProgressBar

from .app import Run, client_command, watching
from .status import TICK

__all__: list[str] = []


@client_command("export", status=False)
@click.argument("group")
@click.option("-o", "--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              required=True, help="JSON Lines file to write (one message per line).")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=None,
              help="At most this many messages (default: the whole group).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar on stderr.")
async def export_cmd(r: Run, group: str, out: Path, limit: int | None, progress: bool) -> None:
    """Write a public group's messages, newest first, to a JSON Lines file.

    The bar says when the throttle holds the export, and why.
    """
    info = await r.client.get_info(group)
    total = info.num_posts if limit is None else min(limit, info.num_posts)
    tmp = out.with_name(out.name + ".part")
    written = 0
    with _removed_on_error(tmp), tmp.open("wb") as fh:
        async with (
            _display(r, group, total, progress) as tick,
            r.client.group_stream(group, limit=limit) as stream,
        ):
            async for m in stream:
                fh.write(msgspec.json.encode(m) + b"\n")
                written += 1
                tick()
    tmp.replace(out)
    click.echo(f"exported {written} messages of {group} to {out}", err=True)


@contextlib.asynccontextmanager
async def _display(
    r: Run, group: str, total: int, progress: bool
) -> AsyncIterator[Callable[[], None]]:
    """A bar labelled with the wait in progress; without ``--progress``, the plain wait line."""
    if not progress:
        async with watching(r.status.watch()):
            yield lambda: None
        return
    bar = _Bar(r, group, total)
    with bar.bar:
        async with watching(bar.watch()):
            yield bar.step


class _Bar:
    def __init__(self, r: Run, group: str, total: int) -> None:
        self.r = r
        self.group = group
        self.bar: ProgressBar[int] = click.progressbar(
            length=max(total, 1), label=f"{group}: exporting", file=sys.stderr,
            show_eta=False, show_pos=True, width=30)
        # A terminal gets a countdown; a log gets one stable line per wait.
        self.live = r.status.live

    def step(self) -> None:
        self.refresh()
        self.bar.update(1)

    def refresh(self) -> None:
        now = self.r.client.clock.monotonic()
        wait = self.r.status.current(now)
        label = f"{self.group}: " + (
            wait.short(now, countdown=self.live) if wait else "exporting")
        if label != self.bar.label:
            self.bar.label = label
            self.bar.render_progress()

    async def watch(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(TICK)


@contextlib.contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    """Delete ``path`` if the block fails (a half-written export is no export)."""
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise
