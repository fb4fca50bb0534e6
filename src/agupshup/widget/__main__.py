"""``python -m agupshup.widget [--base-url URL] [--port 8090] [--read-only] ...``: serve the widget.

The widget's own options and its serving live here, once: ``agupshup widget`` (the CLI) adds
them to its global ones; this entry point needs only the client, not the CLI. The owner's
credentials come from ``GUPSHUP_PHONE``/``GUPSHUP_PASSWORD``; without them, or with
``--read-only``, the widget has no post box.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from agupshup import errors as E
from agupshup.client import DEFAULT_BASE_URL, ENV_BASE_URL, Client
from agupshup.session import ENV_PASSWORD, ENV_PHONE, credentials_from_env
from agupshup.widget.app import Widget, WidgetClient, serve

__all__ = ["main", "run_widget", "widget_options"]

F = TypeVar("F", bound=Callable[..., object])


def widget_options(f: F) -> F:
    """The widget's options: ``host``, ``port``, ``seconds`` (serving) and the rest, passed on to
    :class:`~agupshup.widget.app.Widget` by :func:`run_widget` as ``options``."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True),
        click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True,
                     help="0 picks a free port."),
        click.option("--ttl", type=click.FloatRange(min=0), default=10.0, show_default=True,
                     help="Seconds each group's page is cached."),
        click.option("--public-url", metavar="URL", help="Base URL used in the embed code."),
        click.option("--read-only", is_flag=True, help="No post box; needs no login."),
        click.option("--group", "groups", multiple=True, metavar="GROUP",
                     help="Serve only these groups (repeat; default: any public group)."),
        click.option("--visitor-misses", type=click.IntRange(min=0), default=10,
                     show_default=True, help="Uncached look-ups a visitor may cause a minute."),
        click.option("--max-misses", type=click.IntRange(min=0), default=20, show_default=True,
                     help="Uncached look-ups all visitors together may cause a minute."),
        click.option("--frame-ancestors", default="* file:", show_default=True,
                     help="Pages that may embed the widget (CSP frame-ancestors)."),
        click.option("--visitor-header", metavar="NAME",
                     help="Header naming the visitor, set by a trusted reverse proxy."),
        click.option("--seconds", type=click.FloatRange(min=0), default=None,
                     help="Stop after this long (default: run until Ctrl-C)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


async def run_widget(client: WidgetClient, host: str, port: int, seconds: float | None,
                     **options: Any) -> None:
    """Serve the widget of ``client``'s account, announcing its URL on stderr."""
    groups = options.pop("groups", ())
    widget = Widget(client, groups=groups or None, **options)
    try:
        await serve(widget, host, port, seconds=seconds,
                    on_ready=lambda url: click.echo(f"widget: {url}/  (Ctrl-C stops)", err=True))
    except OSError as exc:
        if exc.errno not in _CANNOT_BIND:
            raise
        raise CannotListen(exc.errno, f"cannot listen on {host}:{port}: "
                                      f"{os.strerror(exc.errno)}") from None


#: Why a listening socket could not be had: said as a sentence, like the emulator says it.
_CANNOT_BIND = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})


class CannotListen(OSError):
    """The widget's port could not be listened on; its text is the whole sentence."""

    def __str__(self) -> str:
        return str(self.strerror)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--base-url", metavar="URL", envvar=ENV_BASE_URL, default=DEFAULT_BASE_URL,
              show_default=True, help=f"API base URL [env {ENV_BASE_URL}].")
@widget_options
def main(base_url: str, host: str, port: int, seconds: float | None, read_only: bool,
         **options: Any) -> None:
    """Serve the featured widget (customize, preview, embed) for the owner's account."""
    credentials = None if read_only else credentials_from_env()
    if credentials is None and not read_only:
        click.echo(f"widget: no {ENV_PHONE}/{ENV_PASSWORD}: read-only, no post box", err=True)

    async def go() -> None:
        async with Client(base_url, credentials=credentials) as client:
            await run_widget(client, host, port, seconds,
                             read_only=read_only or credentials is None, **options)

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass
    except (E.GupshupError, OSError) as exc:
        click.echo(f"error: {' '.join(str(exc).split())}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main(prog_name="python -m agupshup.widget")
