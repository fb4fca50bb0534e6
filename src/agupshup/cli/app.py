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
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

import click

from agupshup.client import Client, egress_key
from agupshup.clock import SystemClock
from agupshup.retry import RetryPolicy
from agupshup.session import Credentials
from agupshup.throttle import Scheduler, SqliteLedger, scaled_windows
from agupshup.transport import AiohttpTransport

from .settings import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Settings,
    UsageError,
    current_settings,
    egress,
    global_options,
    prepare_private_file,
    scrub,
)
from .status import AnswerWatch, WaitStatus
from .stderr import explain, fail, note, setup_logging
from .tokens import TokenFile, token_key

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


#: One example per command, shown at the end of its ``--help``.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "demo": ("agupshup demo", "agupshup demo --forever"),
    "widget": ("agupshup widget --port 8090",),
    "info": ("agupshup info jumpy", "agupshup --json info cricket"),
    "stream": ("agupshup stream jumpy --limit 3",),
    "tail": ("agupshup tail jumpy -n 20", "agupshup tail jumpy cricket --follow --seconds 60"),
    "plan": ("agupshup plan jumpy cricket",),
    "replies": ("agupshup replies jumpy --all",),
    "groups": ("agupshup groups --joined",),
    "quota": ("agupshup quota", "agupshup quota --forget"),
    "logout": ("agupshup logout",),
    "post": ("agupshup post jumpy 'hello from the command line'",),
    "reply": ("agupshup reply '@cricket well played!' --group jumpy",),
    "invite": ("agupshup invite 9876543210 --group jumpy",),
    "subscribe": ("agupshup subscribe 9812345677 jumpy",),
    "export": ("agupshup export jumpy --out jumpy.jsonl",),
}
_GLOBAL = frozenset({"base_url", "wire_format", "format_", "json_", "phone", "time_scale",
                     "ledger", "verbose"})


class _Command(click.Command):
    """A subcommand whose ``--help`` shows its own options first, the global ones after them
    (they are the same for every command), then an example."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        common: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                (common if param.name in _GLOBAL else own).append(record)
        for title, records in (("Options", own), ("Global options (also before the command)",
                                                    common)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        examples = EXAMPLES.get(self.name or "", ())
        if examples:
            with formatter.section("Example" + "s" * (len(examples) > 1)):
                for line in examples:
                    formatter.write_text(line)
        super().format_epilog(ctx, formatter)


def command(name: str, **kwargs: object) -> Callable[[Callable[..., None]], click.Command]:
    """A subcommand of ``main`` that also accepts the global options."""

    def decorate(f: Callable[..., None]) -> click.Command:
        return main.command(name, cls=_Command, **kwargs)(global_options(with_env=False)(f))

    return decorate


# -- one command's run ----------------------------------------------------------------------


@dataclass
class Run:
    """What a :func:`client_command` body gets: the settings and an open client."""

    settings: Settings
    client: Client
    scheduler: Scheduler
    status: WaitStatus
    #: The login tokens kept between runs (None with ``--ledger memory``: this run only).
    tokens: TokenFile | None = None
    #: The throttle ledger on disk (None: in memory).
    ledger: SqliteLedger | None = None

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
    tokens = _tokens(settings)
    credentials = _credentials(settings, url, tokens) if login else None
    async with contextlib.AsyncExitStack() as stack:
        clock = SystemClock()
        ledger = _ledger(settings)
        scheduler = Scheduler(scaled_windows(settings.time_scale or 1.0), clock=clock,
                              ledger=ledger, on_event=lambda e: waits.on_event(e))
        stack.push_async_callback(scheduler.aclose)
        inner = AiohttpTransport(url)
        answers = AnswerWatch(inner, clock, egress(inner.url), 30.0)
        waits = WaitStatus(scheduler, clock, sys.stderr, answers)
        if settings.time_scale and settings.time_scale != 1:
            waits.on_113 = (
                f"note: the server refused a call (113) although --time-scale "
                f"{settings.time_scale:g} shrank the windows: is its time sped up as much? "
                f"(an emulator started with --time-scale {settings.time_scale:g}); without the "
                f"option the CLI keeps to real-time limits")
        client = Client(url, credentials=credentials, throttle=scheduler, clock=clock,
                        retry=RetryPolicy(on_back_off=waits.backing_off), transport=answers,
                        token_store=tokens,
                        wire_format="xml" if settings.wire_format == "xml" else "json")
        await stack.enter_async_context(client)
        if status:
            await stack.enter_async_context(watching(waits.watch()))
        log.info("server %s (%s on the wire); throttle ledger %s", egress(url), client.wire_format,
                 settings.ledger_path() or "in memory")
        if credentials is not None:
            with waits.doing(f"a login as {credentials.phone}"):
                await client.login()
        yield Run(settings, client, scheduler, waits, tokens, ledger)
        if tokens is not None:
            tokens.touch()
        log.info("quota used: %s", ", ".join(
            f"{w.period} {w.used}/{w.limit}" for w in scheduler.quota()))


def _credentials(
    settings: Settings, url: str, tokens: TokenFile | None
) -> Credentials | _LaterPassword:
    """The account; its password is asked for only if no kept token serves the run."""
    phone = settings.login_phone()
    if tokens is None or tokens.stored(token_key(url, phone)) is None:
        return Credentials(phone, settings.password())
    return _LaterPassword(settings, phone, tokens, token_key(url, phone))


class _LaterPassword:
    """Credentials whose password is read only when a login is really needed (the kept token
    died): while the token file holds a live token, the session loads it and never uses the
    placeholder password returned here."""

    def __init__(self, settings: Settings, phone: str, tokens: TokenFile, key: str) -> None:
        self.settings, self.phone, self.tokens, self.key = settings, phone, tokens, key
        self.password: str | None = None

    def __call__(self) -> Credentials:
        if self.password is None and self.tokens.stored(self.key) is not None:
            return Credentials(self.phone, "")
        if self.password is None:
            self.password = self.settings.password()
        return Credentials(self.phone, self.password)


def _tokens(settings: Settings) -> TokenFile | None:
    path = settings.tokens_path()
    if path is None:
        return None
    try:
        prepare_private_file(path, ours=True)  # tokens are secrets wherever the file lives
        return TokenFile(path, time_scale=settings.time_scale or 1.0)
    except (OSError, sqlite3.Error) as exc:
        note(f"login tokens not kept ({path}: {exc}); every command logs in again")
        return None


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


def _ledger(settings: Settings) -> SqliteLedger | None:
    path = settings.ledger_path()
    if path is None:
        return None
    try:
        prepare_private_file(path, ours=not settings.ledger)
    except OSError as exc:
        if settings.ledger:  # a file the user named: say so rather than count elsewhere
            raise UsageError(f"--ledger {path}: {exc.strerror or exc}") from None
        note(f"throttle ledger {path} unusable ({exc.strerror or exc}); counting in memory")
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
        code, message = explain(exc, settings)
        fail(scrub(message, settings.base_url), code)
