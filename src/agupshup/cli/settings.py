"""The CLI's settings: the global options, the environment, the credentials, the ledger file.

Rules this module enforces:

* Every environment variable the CLI reads is named here, and read only here.
* The global options are accepted before the command and after it; a flag given after the
  command wins, then a flag before it, then the environment.
* A base URL must be ``http(s)://host…``; what is shown or logged of it never carries
  ``user:pass@``, and the throttle ledger's key is its host alone (one budget per server).
* The password comes from ``GUPSHUP_PASSWORD`` or a hidden prompt, never an option. A run
  that has no terminal to prompt on and no credentials is a usage error naming both ways.
* The ledger file lives in a private directory (0700) and is private itself (0600).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import click

from agupshup.client import (
    DEFAULT_BASE_URL,
    ENV_BASE_URL,
    ENV_LEDGER,
    LEDGER_OFF,
    default_ledger_path,
)
from agupshup.errors import redact_url
from agupshup.session import ENV_PASSWORD, ENV_PHONE, Credentials, env_credentials

__all__ = [
    "ENV_BASE_URL",
    "ENV_LEDGER",
    "ENV_PASSWORD",
    "ENV_PHONE",
    "ENV_TIME_SCALE",
    "EXIT_API",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Settings",
    "UsageError",
    "current_settings",
    "global_options",
]

F = TypeVar("F", bound=Callable[..., object])

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

ENV_TIME_SCALE = "GUPSHUP_TIME_SCALE"


class UsageError(Exception):
    """A mistake of the caller's, found before any call: one line, exit 2."""


@dataclass
class Settings:
    """The global options, shared by every command through click's context."""

    base_url: str = DEFAULT_BASE_URL
    #: What the API is asked to answer in (``--wire-format``); ``json`` is the output's.
    wire_format: str = "json"
    json: bool = False
    phone: str | None = None
    time_scale: float | None = None
    ledger: str | None = None
    verbose: int = 0

    def checked_url(self) -> str:
        """The base URL, refused unless it is ``http(s)://host…``."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"--base-url {egress(self.base_url)!r} is not an http(s) URL "
                f"(write it as http://host:port)"
            )
        return self.base_url

    def given_phone(self) -> str | None:
        """The phone of the options or the environment, without prompting."""
        return self.phone or env_credentials()[0]

    def credentials(self) -> Credentials:
        """Phone and password, from the options, the environment, or prompts on a terminal."""
        return Credentials(self.login_phone(), self.password())

    def login_phone(self) -> str:
        """The phone of the options or the environment, else asked for on a terminal."""
        return (self.given_phone() or _ask("Phone", hide=False)).strip()

    @staticmethod
    def password() -> str:
        """``GUPSHUP_PASSWORD``, else asked for (hidden) on a terminal."""
        return env_credentials()[1] or _ask("Password", hide=True)

    def ledger_path(self) -> Path | None:
        """The SQLite file that keeps throttle counts across runs; None for memory only."""
        if self.ledger and self.ledger.lower() in LEDGER_OFF:
            return None
        if self.ledger:
            return Path(self.ledger).expanduser()
        return default_ledger_path()  # the library's own default: bots and the CLI share it

    def tokens_path(self) -> Path | None:
        """The file of login tokens, beside the ledger; None (this run only) with no ledger."""
        ledger = self.ledger_path()
        return None if ledger is None else ledger.with_name(ledger.stem + "-tokens.sqlite3")


def egress(url: str) -> str:
    """``url`` without ``user:pass@``: what may be shown or logged (the ledger is keyed by
    :func:`agupshup.client.egress_key`, the host alone). :func:`agupshup.errors.redact_url`,
    so that even a malformed URL (no scheme) loses its credentials."""
    return redact_url(url)


def scrub(text: str, url: str) -> str:
    """``text`` without the ``user:pass@`` of ``url`` or of any URL it quotes."""
    return redact_url(text)


def prepare_private_file(path: Path, *, ours: bool) -> None:
    """Create ``path``'s directory (0700) and the file (0600) if missing: counts stay private.

    ``ours``: the default location, whose directory and file only agupshup uses; ones an
    older version left readable by others are tightened too."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    if ours:
        path.parent.chmod(0o700)
        path.chmod(0o600)


def _ask(what: str, *, hide: bool) -> str:
    if sys.stdin.isatty():
        answer = str(click.prompt(what, hide_input=hide, err=True))
    else:
        # No terminal: take a piped line silently (a prompt would glue to the error line,
        # and getpass would warn that it cannot hide the input).
        answer = sys.stdin.readline().rstrip("\r\n")
    if not answer.strip():
        raise UsageError(
            f"no credentials: set {ENV_PHONE} and {ENV_PASSWORD} (or pass --phone), "
            f"or run in a terminal to be asked"
        )
    return answer


def current_settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


def _store(attr: str) -> Callable[[click.Context, click.Parameter, object], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: object) -> None:
        if not value:  # not given here (None, False, 0): keep what the group level set
            return
        setattr(ctx.ensure_object(Settings), attr, value)

    return callback


def _old_format(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """``--format``, the spelling before issue 25: it read like the output's format."""
    if value:
        click.echo("warning: --format is deprecated; use --wire-format", err=True)
        _store("wire_format")(ctx, param, value)


def global_options(*, with_env: bool) -> Callable[[F], F]:
    """The options every command takes (``with_env`` on the group only, so env < flags)."""

    def env(name: str) -> str | None:
        return name if with_env else None

    options = [
        click.option("--base-url", metavar="URL", envvar=env(ENV_BASE_URL), expose_value=False,
                     callback=_store("base_url"),
                     help=f"API base URL [env {ENV_BASE_URL}; default {DEFAULT_BASE_URL}]."),
        click.option("--wire-format", "wire_format", type=click.Choice(["json", "xml"]),
                     expose_value=False, callback=_store("wire_format"),
                     help="Wire format to request from the API (default json); the output "
                     "is text, or --json."),
        click.option("--format", "format_", type=click.Choice(["json", "xml"]), hidden=True,
                     expose_value=False, callback=_old_format),
        click.option("--json", "json_", is_flag=True, default=False, expose_value=False,
                     callback=_store("json"), help="Print JSON Lines instead of text."),
        click.option("--phone", metavar="PHONE", envvar=env(ENV_PHONE), expose_value=False,
                     callback=_store("phone"),
                     help=f"Login phone [env {ENV_PHONE}]; the password is read from "
                     f"{ENV_PASSWORD} or a hidden prompt."),
        click.option("--time-scale", type=click.FloatRange(min=0, min_open=True),
                     envvar=env(ENV_TIME_SCALE), expose_value=False,
                     callback=_store("time_scale"),
                     help="Shrink the throttle windows N times (to match an emulator "
                     "started with --time-scale N)."),
        click.option("--ledger", metavar="PATH", envvar=env(ENV_LEDGER), expose_value=False,
                     callback=_store("ledger"),
                     help="SQLite file that keeps the throttle counts across runs, so every "
                     f"run on this host shares one quota [env {ENV_LEDGER}; default "
                     "~/.cache/agupshup/throttle.sqlite3; 'memory': this run only]."),
        click.option("-v", "--verbose", count=True, expose_value=False,
                     callback=_store("verbose"), help="Log more (-vv: debug)."),
    ]

    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate
