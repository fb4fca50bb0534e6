"""The ``agupshup`` group, and how a command runs: settings → client → command → exit code.

Rules this module enforces:

* Every command that talks to the API is written with :func:`client_command`: it receives a
  :class:`Run` (settings, an open :class:`~agupshup.Client`, its own
  :class:`~agupshup.throttle.Scheduler`, the wait status) and everything is closed after it.
* Logging is configured once, in :func:`run`, for every command (``-v`` info, ``-vv`` debug).
* Exit codes: 0 ok; 1 the API (or the network) refused; 2 usage, including arguments the client
  refuses locally before sending; 130 interrupted. Errors are one ``error:`` line on stderr,
  never a traceback, and never show a secret or the ``user:pass@`` of a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Concatenate, NoReturn, ParamSpec, TypeVar

import click

from agupshup import errors as E
from agupshup.client import Client, egress_key
from agupshup.clock import SystemClock
from agupshup.retry import RetryPolicy
from agupshup.throttle import Ledger, Scheduler, SqliteLedger, scaled_windows

from .settings import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Settings,
    UsageError,
    current_settings,
    egress,
    global_options,
    prepare_private_file,
    scrub,
)
from .status import WaitStatus

__all__ = ["Run", "client_command", "command", "main", "run", "watching"]

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("agupshup.cli")


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, demo first


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@global_options(with_env=True)
@click.version_option(package_name="agupshup", prog_name="agupshup")
@click.pass_context
def main(ctx: click.Context) -> None:
    """agupshup: the GupShup Stream and Group API from the command line.

    Start with `agupshup demo`: an embedded emulator, a bot and an aggregator, no account.
    Point the other commands at a server with --base-url (or GUPSHUP_BASE_URL); for a local
    one, run `agupshup emulator` in another terminal.
    """
    ctx.ensure_object(Settings)


def command(name: str, **kwargs: object) -> Callable[[Callable[..., None]], click.Command]:
    """A subcommand of ``main`` that also accepts the global options."""

    def decorate(f: Callable[..., None]) -> click.Command:
        return main.command(name, **kwargs)(global_options(with_env=False)(f))

    return decorate


# -- one command's run ----------------------------------------------------------------------


@dataclass
class Run:
    """What a :func:`client_command` body gets: the settings and an open client."""

    settings: Settings
    client: Client
    scheduler: Scheduler
    status: WaitStatus

    @property
    def json(self) -> bool:
        return self.settings.json


Login = bool | Callable[[Mapping[str, object]], bool]


def client_command(
    name: str,
    *,
    login: Login = False,
    status: bool = True,
    interrupt_ok: bool = False,
    **kwargs: object,
) -> Callable[[Callable[Concatenate[Run, P], Awaitable[None]]], click.Command]:
    """``agupshup NAME``: the async body gets a :class:`Run`, then the command's arguments.

    ``login`` (or a predicate on the arguments) logs in before the body, so the credentials are
    asked for up front; ``status=False`` leaves the wait line to the body (e.g. a progress bar);
    ``interrupt_ok``: Ctrl-C is how the command ends (a server), exit 0.
    """

    def decorate(body: Callable[Concatenate[Run, P], Awaitable[None]]) -> click.Command:
        @functools.wraps(body)
        def callback(*args: P.args, **kw: P.kwargs) -> None:
            settings = current_settings()
            needs_login = login(kw) if callable(login) else login

            async def go() -> None:
                async with open_run(settings, login=needs_login, status=status) as r:
                    await body(r, *args, **kw)

            run(go(), settings, interrupt_ok=interrupt_ok)

        return command(name, **kwargs)(callback)

    return decorate


@asynccontextmanager
async def open_run(
    settings: Settings, *, login: bool = False, status: bool = True
) -> AsyncIterator[Run]:
    """An open client (logged in with ``login``) and its scheduler; the wait line runs."""
    url = settings.checked_url()
    credentials = settings.credentials() if login else None
    async with contextlib.AsyncExitStack() as stack:
        clock = SystemClock()
        scheduler = Scheduler(scaled_windows(settings.time_scale or 1.0), clock=clock,
                              ledger=_ledger(settings), on_event=lambda e: waits.on_event(e))
        stack.push_async_callback(scheduler.aclose)
        waits = WaitStatus(scheduler, clock, sys.stderr)
        client = Client(url, credentials=credentials, scheduler=scheduler, clock=clock,
                        retry=RetryPolicy(on_back_off=waits.backing_off),
                        format="xml" if settings.format == "xml" else "json")
        await stack.enter_async_context(client)
        if status:
            await stack.enter_async_context(watching(waits.watch()))
        log.info("server %s (%s on the wire); throttle ledger %s", egress(url), client.format,
                 settings.ledger_path() or "in memory")
        if credentials is not None:
            with waits.doing(f"a login as {credentials.phone}"):
                await client.login()
        yield Run(settings, client, scheduler, waits)
        log.info("quota used: %s", ", ".join(
            f"{w.period} {w.used}/{w.limit}" for w in scheduler.quota()))


@asynccontextmanager
async def watching(watch: Coroutine[object, object, None]) -> AsyncIterator[None]:
    """Run ``watch`` (a display loop) while the block runs."""
    task = asyncio.ensure_future(watch)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _ledger(settings: Settings) -> Ledger | None:
    path = settings.ledger_path()
    if path is None:
        return None
    try:
        prepare_private_file(path, ours=not settings.ledger)
    except OSError as exc:
        if settings.ledger:  # a file the user named: say so rather than count elsewhere
            raise UsageError(f"--ledger {path}: {exc.strerror or exc}") from None
        log.warning("throttle ledger %s unusable (%s); counting in memory", path, exc)
        return None
    # Keyed as the Client's shared scheduler keys its budget, by the host (and a port not the
    # scheme's default): the server counts per IP, so every spelling of one server shares one
    # budget, and no credential or query secret of the URL reaches the file.
    return SqliteLedger(path, key=egress_key(settings.base_url))


# -- running and failing --------------------------------------------------------------------


def run(coro: Awaitable[T], settings: Settings, *, interrupt_ok: bool = False) -> T:
    """Run ``coro`` in a fresh event loop; map every failure to one line and an exit code.

    ``interrupt_ok``: Ctrl-C is the normal way to stop (servers): exit 0, quietly.
    """
    setup_logging(settings.verbose)

    async def main() -> T:
        return await coro

    try:
        return asyncio.run(main())
    except BrokenPipeError:  # `agupshup stream jumpy | head`: the reader left; so do we
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except (KeyboardInterrupt, click.Abort):
        if interrupt_ok:
            sys.exit(EXIT_OK)
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        code, message = _explain(exc, settings)
        fail(scrub(message, settings.base_url), code)


def _explain(exc: Exception, settings: Settings) -> tuple[int, str]:
    """The exit code and the line for a failure."""
    if isinstance(exc, UsageError | E.ValidationError):
        return EXIT_USAGE, _one_line(exc)
    if isinstance(exc, E.ConnectError):
        return EXIT_API, _unreachable(exc, settings)
    if isinstance(exc, E.GupshupError | OSError):  # OSError: files (export --out), sockets
        return EXIT_API, _one_line(exc)
    log.debug("failed", exc_info=exc)  # e.g. sqlite3.Error from an unusable ledger file
    return EXIT_API, f"{type(exc).__name__}: {_one_line(exc)}"


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
    return f"cannot reach {egress(settings.base_url)}: {why}"


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
    """``-v`` info, ``-vv`` debug, for agupshup's loggers, to stderr; one handler per process."""
    root = logging.getLogger("agupshup")
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
    if _handler not in root.handlers:
        root.addHandler(_handler)
