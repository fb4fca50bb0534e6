"""What a run says on stderr: one ``error:`` line and its exit code, ``note:`` lines, and the
library's log records (``-v``), never a secret.

Rules this module enforces:

* A failure is one line and an exit code (:func:`explain`): 2 for usage and for arguments the
  client refuses locally, 1 for the API and the network, with the words a person needs (an
  unreachable host, the default address) instead of aiohttp's.
* Without ``-v`` no library record reaches the terminal; with it, no ``user:pass@`` of a URL
  does (:func:`setup_logging`).
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from agupshup import errors as E
from agupshup.client import DEFAULT_BASE_URL, ENV_BASE_URL

from .settings import EXIT_API, EXIT_USAGE, Settings, UsageError, egress

__all__ = ["explain", "fail", "note", "setup_logging"]

log = logging.getLogger("agupshup.cli")


def explain(exc: Exception, settings: Settings) -> tuple[int, str]:
    """The exit code and the line for a failure."""
    if isinstance(exc, UsageError | E.ValidationError):
        return EXIT_USAGE, _one_line(exc)
    if isinstance(exc, E.ConnectError):
        return EXIT_API, _unreachable(exc, settings)
    if isinstance(exc, E.TransportError | E.HTTPRefused):
        return EXIT_API, _one_line(exc) + _default_host_hint(settings)
    if isinstance(exc, E.GupshupError | OSError):  # OSError: files (export --out), sockets
        return EXIT_API, _one_line(exc)
    log.debug("failed", exc_info=exc)  # e.g. sqlite3.Error from an unusable ledger file
    return EXIT_API, f"{type(exc).__name__}: {_one_line(exc)}"


def note(message: str) -> None:
    """One line on stderr about the run itself, in the CLI's voice (not a log record)."""
    click.echo(f"note: {message}", err=True)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _unreachable(exc: E.ConnectError, settings: Settings) -> str:
    """aiohttp's words (``ClientConnectorError … ssl:default``) in a person's."""
    text = str(exc).lower()
    if "name or service not known" in text or "nodename" in text or "getaddrinfo" in text:
        why = "no such host"
    elif "refused" in text or "connect call failed" in text:
        why = "nothing answers there; is the server running?"
    elif "timeout" in text:
        why = "no answer in time"
    else:
        why = "the connection failed"
    return f"cannot reach {egress(settings.base_url)}: {why}" + _default_host_hint(settings)


def _default_host_hint(settings: Settings) -> str:
    """For a run that named no server: the default is the real service's old address."""
    if settings.base_url != DEFAULT_BASE_URL:
        return ""
    return (f" (no --base-url given, so the default {DEFAULT_BASE_URL}: pass --base-url or set "
            f"{ENV_BASE_URL}; for a local server run `agupshup emulator` and use "
            f"--base-url http://127.0.0.1:8080)")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment (a test runner swaps it per run)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        if sys.stderr.isatty():  # clear a wait line first; it is redrawn on the next tick
            sys.stderr.write("\r\x1b[K")
        super().emit(record)


class _Redacting(logging.Formatter):
    """No ``user:pass@`` of a URL in a log line, whatever a logger was handed."""

    def format(self, record: logging.LogRecord) -> str:
        return E.redact_url(super().format(record))


_handler = _StderrHandler()
_handler.setFormatter(_Redacting("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def setup_logging(verbose: int) -> None:
    """``-v`` info, ``-vv`` debug, for agupshup's loggers, to stderr; one handler per process.

    Without ``-v`` no library record reaches the terminal: what a person must know, the CLI
    says itself in one line (``error:``, ``note:``, the wait line). The handler is silenced,
    not the loggers, so a program embedding the CLI still sees the records in its own handlers.
    """
    root = logging.getLogger("agupshup")
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
    _handler.setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)
    if _handler not in root.handlers:
        root.addHandler(_handler)
