"""``agupshup``: the command line, on click.

Rules this module enforces:

* Every command makes its calls through one :class:`~agupshup.Client` with its own
  :class:`~agupshup.throttle.Scheduler` (windows scaled by ``--time-scale``), closed at the end.
* Exit codes: 0 ok; 1 the API (or the network) refused; 2 usage, including arguments the client
  refuses locally before sending (:class:`~agupshup.errors.ValidationError`); 130 interrupted.
  Errors are one clean line on stderr, never a traceback.
* The password comes from ``GUPSHUP_PASSWORD`` or a hidden prompt, and only for commands that
  need a login. It is never echoed, never an option (shell history) and never printed: the
  library's errors do not carry it.
* ``--json`` prints machine-readable output: one JSON object, or JSON Lines for listings
  (field names as on the wire). Otherwise the output is meant for people.
* The global options (``--base-url``, ``--format``, ``--json``, ``--phone``, ``--time-scale``)
  are accepted before the command and after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import msgspec

from agupshup import errors as E
from agupshup.client import DEFAULT_BASE_URL, Client
from agupshup.demo import quota_lines
from agupshup.models import Group, Message, QuotaWindow, Reply
from agupshup.session import Credentials

__all__ = ["main"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# -- settings -------------------------------------------------------------------------------


@dataclass
class Settings:
    """The global options, shared by every command through click's context."""

    base_url: str = DEFAULT_BASE_URL
    format: str = "json"
    json: bool = False
    phone: str | None = None
    time_scale: float | None = None
    ledger: str | None = None
    verbose: int = 0
    #: Throttle events seen by the running command (for progress displays).
    on_event: Callable[[Any], None] | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings the environment gives (what the ``agupshup`` group reads itself)."""
        env = os.environ.get
        scale = env("GUPSHUP_TIME_SCALE")
        try:
            time_scale = float(scale) if scale else None
        except ValueError:
            _fail(f"GUPSHUP_TIME_SCALE: not a number: {scale!r}", EXIT_USAGE)
        return cls(
            base_url=env("GUPSHUP_BASE_URL") or DEFAULT_BASE_URL,
            phone=env("GUPSHUP_PHONE") or None,
            ledger=env("GUPSHUP_LEDGER") or None,
            time_scale=time_scale,
        )

    def credentials(self) -> Credentials:
        """Phone and password, from the environment or prompts (the password hidden)."""
        phone = self.phone or os.environ.get("GUPSHUP_PHONE") or click.prompt("Phone", err=True)
        password = os.environ.get("GUPSHUP_PASSWORD") or click.prompt(
            "Password", hide_input=True, err=True
        )
        return Credentials(str(phone).strip(), str(password))


def _settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if not value:  # not given here (None, False, 0): keep what the group level set
            return
        setattr(ctx.ensure_object(Settings), attr, value)

    return callback


def global_options(*, with_env: bool) -> Callable[[F], F]:
    """The options every command takes (``with_env`` on the group only, so env < flags)."""

    def env(name: str) -> str | None:
        return name if with_env else None

    options = [
        click.option(
            "--base-url",
            metavar="URL",
            envvar=env("GUPSHUP_BASE_URL"),
            expose_value=False,
            callback=_store("base_url"),
            help=f"API base URL [env GUPSHUP_BASE_URL; default {DEFAULT_BASE_URL}].",
        ),
        click.option(
            "--format",
            "format_",
            type=click.Choice(["json", "xml"]),
            expose_value=False,
            callback=_store("format"),
            help="Wire format to request from the API (default json).",
        ),
        click.option(
            "--json",
            "json_",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_store("json"),
            help="Print JSON instead of text.",
        ),
        click.option(
            "--phone",
            metavar="PHONE",
            envvar=env("GUPSHUP_PHONE"),
            expose_value=False,
            callback=_store("phone"),
            help="Login phone [env GUPSHUP_PHONE]; the password is read from "
            "GUPSHUP_PASSWORD or a hidden prompt.",
        ),
        click.option(
            "--time-scale",
            type=click.FloatRange(min=0, min_open=True),
            envvar=env("GUPSHUP_TIME_SCALE"),
            expose_value=False,
            callback=_store("time_scale"),
            help="Shrink the throttle windows N times (to match an emulator "
            "started with --time-scale N).",
        ),
        click.option(
            "--ledger",
            metavar="PATH",
            envvar=env("GUPSHUP_LEDGER"),
            expose_value=False,
            callback=_store("ledger"),
            help="SQLite file that keeps the throttle counts across runs, so "
            "every run on this host shares one quota [env GUPSHUP_LEDGER; "
            "default ~/.cache/agupshup/throttle.sqlite3; 'memory': this run "
            "only].",
        ),
        click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_store("verbose"),
            help="Log more (-vv: debug).",
        ),
    ]

    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


# -- running --------------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def run(coro: Awaitable[T], *, interrupt_ok: bool = False) -> T:
    """Run ``coro`` in a fresh event loop; map every failure to one line and an exit code.

    ``interrupt_ok``: Ctrl-C is the normal way to stop (servers): exit 0, quietly.
    """

    async def main() -> T:
        return await coro

    try:
        return asyncio.run(main())
    except BrokenPipeError:  # `agupshup stream jumpy | head`: the reader left; so do we
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except KeyboardInterrupt:
        if interrupt_ok:
            sys.exit(EXIT_OK)
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except E.ValidationError as exc:
        _fail(_one_line(exc), EXIT_USAGE)
    except E.GupshupError as exc:
        _fail(_one_line(exc), EXIT_API)
    except OSError as exc:  # files (export --out) and sockets outside the client
        _fail(_one_line(exc), EXIT_API)
    except Exception as exc:  # e.g. sqlite3.Error from an unusable --ledger file
        logging.getLogger("agupshup.cli").debug("failed", exc_info=True)
        _fail(f"{type(exc).__name__}: {_one_line(exc)}", EXIT_API)


def _scheduler(settings: Settings) -> Any:
    from agupshup import throttle
    from agupshup.demo import scaled_windows

    windows = scaled_windows(settings.time_scale or 1.0)
    ledger = None
    path = ledger_path(settings)
    factory = getattr(throttle, "SqliteLedger", None)
    if path is not None and factory is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ledger = factory(path, key=settings.base_url)
        except OSError as exc:
            logging.getLogger("agupshup.cli").warning(
                "throttle ledger %s unusable (%s); counting in memory", path, exc
            )
    return throttle.Scheduler(windows, ledger=ledger, on_event=_event_hook(settings))


def ledger_path(settings: Settings) -> Path | None:
    """The SQLite file that keeps throttle counts across runs; None for memory only."""
    if settings.ledger and settings.ledger.lower() in ("memory", "none", "off"):
        return None
    if settings.ledger:
        return Path(settings.ledger).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "agupshup" / "throttle.sqlite3"


def _event_hook(settings: Settings) -> Callable[[Any], None]:
    def hook(event: Any) -> None:
        if settings.on_event is not None:
            settings.on_event(event)

    return hook


@asynccontextmanager
async def open_client(settings: Settings, *, login: bool = False) -> AsyncIterator[Client]:
    """A Client for ``settings``; with ``login``, credentials are asked for up front."""
    credentials = settings.credentials() if login else None
    scheduler = _scheduler(settings)
    try:
        client = Client(
            settings.base_url,
            credentials=credentials,
            format="xml" if settings.format == "xml" else "json",
            scheduler=scheduler,
        )
        async with client:
            yield client
    finally:
        await scheduler.aclose()


def _setup_logging(settings: Settings) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(settings.verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- output ---------------------------------------------------------------------------------


def _when(ms: int) -> str:
    if ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _json_line(value: Any) -> None:
    click.echo(msgspec.json.encode(value).decode())


def show_message(m: Message, settings: Settings) -> None:
    if settings.json:
        _json_line(m)
    else:
        click.echo(f"#{m.id:<6} {_when(m.timestamp)}  {m.group_name}  <{m.sender}>  {m.text}")


def show_reply(r: Reply, settings: Settings) -> None:
    if settings.json:
        _json_line(r)
    else:
        hidden = "  (hidden)" if r.hidden else ""
        click.echo(
            f"#{r.id:<6} {_when(r.timestamp)}  @{r.from_group} -> @{r.group_name}  "
            f"<{r.sender}>  {r.text}{hidden}"
        )


def show_group(g: Group, settings: Settings, *, long: bool = False) -> None:
    if settings.json:
        _json_line(g)
        return
    flags = [w for w, on in (("private", g.private), ("adult", g.adult)) if on] or ["public"]
    if not long:
        click.echo(
            f"{g.group_name:<20} {', '.join(flags):<16} posts {g.num_posts:<6} "
            f"members {g.num_members:<5} {g.description}"
        )
        return
    click.echo(f"{g.group_name} ({', '.join(flags)})")
    if g.description:
        click.echo(f"  {g.description}")
    click.echo(f"  owner:   {g.owner}")
    click.echo(f"  posts:   {g.num_posts}")
    click.echo(f"  members: {g.num_members}")
    click.echo(f"  created: {_when(g.created_on)}")


def _quota_json(windows: Sequence[QuotaWindow], now: float) -> list[dict[str, Any]]:
    return [
        {
            "period": w.period,
            "length": w.length,
            "limit": w.limit,
            "used": w.used,
            "freeIn": round(max(0.0, w.free_at - now), 3),
            "heldFor": None if w.held_until is None else round(max(0.0, w.held_until - now), 3),
        }
        for w in windows
    ]


# -- the group ------------------------------------------------------------------------------


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


def command(name: str, **kwargs: Any) -> Callable[[F], click.Command]:
    """A subcommand of ``main`` that also accepts the global options."""

    def decorate(f: F) -> click.Command:
        return main.command(name, **kwargs)(global_options(with_env=False)(f))

    return decorate


# -- demo, emulator, widget ----------------------------------------------------------------


@command("demo")
@click.option("--forever", is_flag=True, help="Keep running until Ctrl-C.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=15.0,
    show_default=True,
    help="How long the bot and the aggregator run.",
)
def demo_cmd(forever: bool, seconds: float) -> None:
    """See it work: embedded emulator + bot + aggregator, no account needed.

    Time runs 10x faster in the demo (emulator and throttle windows alike); --time-scale 1
    shows the real pace.
    """
    from agupshup import demo

    settings = _settings()
    _setup_logging(settings)
    scale = settings.time_scale or demo.DEMO_TIME_SCALE
    run(demo.run_demo(seconds=None if forever else seconds, time_scale=scale), interrupt_ok=forever)


@main.command(
    "emulator",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator_cmd(args: tuple[str, ...]) -> None:
    """Run the local emulator (options: --port --host --time-scale --throttle --seed ...;
    `agupshup emulator --help` lists them all)."""
    from agupshup.emulator import __main__ as runner

    runner.main(list(args))


@command("widget")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8090, show_default=True, help="0 picks a free port.")
@click.option(
    "--ttl",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds each group's page is cached.",
)
@click.option("--public-url", metavar="URL", help="Base URL used in the embed code.")
@click.option("--read-only", is_flag=True, help="No post box; needs no login.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop after this long (default: run until Ctrl-C).",
)
def widget_cmd(
    host: str, port: int, ttl: float, public_url: str | None, read_only: bool, seconds: float | None
) -> None:
    """Serve the featured widget (customize, preview, embed) for the owner's account."""
    from agupshup.widget import Widget, serve

    settings = _settings()
    _setup_logging(settings)

    async def go() -> None:
        async with open_client(settings, login=not read_only) as client:
            widget = Widget(client, ttl=ttl, public_url=public_url, read_only=read_only)
            await serve(
                widget,
                host,
                port,
                seconds=seconds,
                on_ready=lambda url: click.echo(f"widget: {url}/  (Ctrl-C stops)", err=True),
            )

    run(go(), interrupt_ok=True)


# -- reading --------------------------------------------------------------------------------


@command("info")
@click.argument("group")
def info_cmd(group: str) -> None:
    """Show a public group's details (groups.getInfo)."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings) as client:
            show_group(await client.get_info(group), settings, long=True)

    run(go())


@command("stream")
@click.argument("group")
@click.option(
    "-l",
    "--limit",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="How many messages, newest first (pages of 15 are fetched as needed).",
)
def stream_cmd(group: str, limit: int) -> None:
    """Print a public group's latest messages, newest first (groups.getStream)."""
    settings = _settings()

    async def go() -> None:
        async with (
            open_client(settings) as client,
            client.group_stream(group, limit=limit) as stream,
        ):
            async for m in stream:
                show_message(m, settings)

    run(go())


@command("tail")
@click.argument("group")
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=0, max=15),
    default=10,
    show_default=True,
    help="How many recent messages to print first.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new messages as they come.")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="With --follow: stop after this many new messages.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="With --follow: stop after this long.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="With --follow: fastest poll (the pace adapts to activity and quota).",
)
def tail_cmd(
    group: str, lines: int, follow: bool, count: int | None, seconds: float | None, interval: float
) -> None:
    """Print a group's last messages, oldest first; with --follow, keep printing new ones."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings) as client:
            recent = await client.get_stream(group, 0, max(lines, 1))
            newest = recent[0].id if recent else 0
            for m in reversed(recent[:lines]):
                show_message(m, settings)
            if not follow:
                return
            from agupshup.polling import PollPolicy

            client.poll_policy = PollPolicy(min_interval=interval, max_interval=max(interval, 60.0))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await _follow(client, group, newest, count, settings)

    run(go())


async def _follow(
    client: Client, group: str, after: int, count: int | None, settings: Settings
) -> None:
    """New messages after id ``after``, oldest first, as the stream's poller finds them."""
    from agupshup.checkpoint import Cursor
    from agupshup.streams import group_key

    live = Cursor(source=group_key(group), phase="live", newest=after or None)
    async with client.group_stream(group, follow=True, limit=count, resume_from=live) as stream:
        async for m in stream:
            show_message(m, settings)


@command("replies")
@click.argument("group")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=15, show_default=True)
@click.option(
    "--all", "include_hidden", is_flag=True, help="Include hidden replies (you must own the group)."
)
def replies_cmd(group: str, limit: int, include_hidden: bool) -> None:
    """Print the replies to a group, newest first (groups.getReplies)."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings, login=include_hidden) as client:
            async with client.replies(group, limit=limit, include_hidden=include_hidden) as stream:
                async for r in stream:
                    show_reply(r, settings)
            if stream.count == 0 and not settings.json:
                click.echo(f"no replies to {group}", err=True)

    run(go())


@command("groups")
@click.option("--mine", "which", flag_value="mine", default=True, help="Groups you own (default).")
@click.option("--joined", "which", flag_value="joined", help="Groups you have joined.")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=30, show_default=True)
def groups_cmd(which: str, limit: int) -> None:
    """List your groups (users.getMyGroups / users.getJoinedGroups)."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings, login=True) as client:
            pages = client.my_groups if which == "mine" else client.joined_groups
            async with pages(limit=limit) as stream:
                async for g in stream:
                    show_group(g, settings)
            if stream.count == 0 and not settings.json:
                click.echo("no groups", err=True)

    run(go())


@command("quota")
def quota_cmd() -> None:
    """Show the throttle windows: calls used, limits, and when the next call fits.

    The counts are those of the throttle ledger (--ledger), which every run on this host shares;
    with --ledger memory they cover this run only.
    """
    settings = _settings()

    async def go() -> None:
        async with open_client(settings) as client:
            fetch = getattr(client.scheduler, "fetch_quota", None)
            windows = await fetch() if fetch is not None else client.quota()
            now = client.clock.monotonic()
            if settings.json:
                click.echo(json.dumps(_quota_json(windows, now)))
            else:
                for line in quota_lines(windows, now):
                    click.echo(line)

    run(go())


# -- writing --------------------------------------------------------------------------------


@command("post")
@click.argument("group")
@click.argument("text")
def post_cmd(group: str, text: str) -> None:
    """Post TEXT to a group you own (groups.postMessage)."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings, login=True) as client:
            post_id = await client.post_message(group, text)
            if settings.json:
                click.echo(json.dumps({"id": post_id, "groupName": group}))
            else:
                click.echo(f"posted #{post_id} to {group}")

    run(go())


@command("reply")
@click.argument("text")
@click.option(
    "-g",
    "--group",
    default=None,
    help="Your group the reply comes from (default: your first group).",
)
def reply_cmd(text: str, group: str | None) -> None:
    """Reply with TEXT, which names its destinations as @group (groups.postReply)."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings, login=True) as client:
            result = await client.post_reply(text, group)
            if settings.json:
                _json_line(result)
                return
            for r in result.replies:
                click.echo(f"replied #{r.id} to @{r.group_name} from @{r.from_group}")
            for f in result.failed:
                click.echo(f"not delivered (error {f.code}): {f.msg}", err=True)

    run(go())


@command("invite")
@click.argument("phones", nargs=-1, required=True)
@click.option("-g", "--group", default=None, help="Your group (default: your first group).")
def invite_cmd(phones: tuple[str, ...], group: str | None) -> None:
    """Invite Indian mobile numbers to a group you own (groups.inviteFriends)."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings, login=True) as client:
            result = await client.invite_friends(list(phones), group)
            if settings.json:
                _json_line(result)
                return
            for phone in result.invited:
                click.echo(f"invited {phone}")
            for f in result.failed:
                click.echo(f"not invited {f.phone} (error {f.code}): {f.msg}", err=True)

    run(go())


@command("subscribe")
@click.argument("subscriber", metavar="PHONE")
@click.argument("group")
@click.option(
    "--attempts",
    type=click.IntRange(1, 5),
    default=3,
    show_default=True,
    help="How many times to ask for the code if it is wrong.",
)
def subscribe_cmd(subscriber: str, group: str, attempts: int) -> None:
    """Subscribe PHONE to GROUP: texts a code to the phone, asks for it, then confirms."""
    settings = _settings()

    async def go() -> None:
        async with open_client(settings) as client:
            ticket = await client.subscribe(subscriber, group)
            click.echo(f"A confirmation code was texted to {ticket.phone}.", err=True)
            for attempt in range(1, attempts + 1):
                code = click.prompt("Code from the SMS", err=True).strip()
                try:
                    msg = await client.confirm_subscription(ticket, code)
                except E.InvalidConfirmation as exc:
                    if attempt == attempts:
                        raise
                    click.echo(f"wrong code: {exc.msg}", err=True)
                    continue
                if settings.json:
                    click.echo(
                        json.dumps({"phone": ticket.phone, "group": ticket.group, "msg": msg})
                    )
                else:
                    click.echo(
                        f"subscribed {ticket.phone} to {ticket.group}" + (f": {msg}" if msg else "")
                    )
                return

    run(go())


# -- export ---------------------------------------------------------------------------------


@command("export")
@click.argument("group")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="JSON Lines file to write (one message per line).",
)
@click.option(
    "-l",
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many messages (default: the whole group).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar on stderr.",
)
def export_cmd(group: str, out: Path, limit: int | None, progress: bool) -> None:
    """Write a public group's messages, newest first, to a JSON Lines file.

    The bar says when the throttle holds the export, and why.
    """
    settings = _settings()
    run(_export(settings, group, out, limit, progress))


async def _export(
    settings: Settings, group: str, out: Path, limit: int | None, progress: bool
) -> None:
    async with open_client(settings) as client:
        info = await client.get_info(group)
        total = info.num_posts if limit is None else min(limit, info.num_posts)
        status = _ExportStatus(client, group)
        settings.on_event = status.on_event
        written = 0
        tmp = out.with_name(out.name + ".part")
        bar_cm = (
            click.progressbar(
                length=max(total, 1),
                label=status.label(),
                file=sys.stderr,
                show_eta=False,
                show_pos=True,
                width=30,
            )
            if progress
            else contextlib.nullcontext(None)
        )
        with _removed_on_error(tmp), bar_cm as bar, tmp.open("wb") as fh:
            status.bar = bar
            ticker = asyncio.ensure_future(status.tick())
            try:
                async with client.group_stream(group, limit=limit) as stream:
                    async for m in stream:
                        fh.write(msgspec.json.encode(m) + b"\n")
                        written += 1
                        if bar is not None:
                            status.refresh()
                            bar.update(1)
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
                settings.on_event = None
        tmp.replace(out)
    click.echo(f"exported {written} messages of {group} to {out}", err=True)


@contextlib.contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    """Delete ``path`` if the block fails (a half-written export is no export)."""
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _bar_is_live(bar: Any) -> bool:
    """Whether click's bar redraws in place (a terminal) rather than logging its label."""
    if bar is None:
        return False
    if hasattr(bar, "_is_atty"):  # click >= 8.2
        return bool(bar._is_atty)
    return not getattr(bar, "is_hidden", True)


class _ExportStatus:
    """The progress bar's label: what the export is doing, and what it waits for."""

    def __init__(self, client: Client, group: str) -> None:
        self.client = client
        self.group = group
        self.bar: Any = None
        #: From the scheduler's last ``hold`` event: the window in the way, and until when.
        self.period: str | None = None
        self.hold_until = 0.0

    def on_event(self, event: Any) -> None:
        """The scheduler holds calls (``hold``) or the server refused one (``limited``)."""
        if event.kind not in ("hold", "limited"):
            return
        self.period = event.period
        if event.wait is not None:
            self.hold_until = self.client.clock.monotonic() + event.wait
        self.refresh()

    def waiting(self, countdown: bool = True) -> str | None:
        """Why calls are held now, or None when they are not."""
        scheduler: Any = self.client.scheduler
        windows = self.client.quota()
        if not getattr(scheduler, "waiting", 0) or not windows:
            return None
        now = self.client.clock.monotonic()
        named = [w for w in windows if w.period == self.period]
        worst = named[0] if named else max(windows, key=lambda w: w.used / max(w.limit, 1))
        until = max(worst.free_at, worst.held_until or 0.0, self.hold_until) - now
        if worst.held_until is not None and worst.held_until > now:
            why = f"the server answered 113; {worst.period} window held"
        else:
            why = f"{worst.period} window: {worst.used}/{worst.limit} calls used"
            if worst.used < worst.limit:
                why += ", the rest reserved for interactive calls"
        if until < 0.1:
            return f"waiting for the throttle ({why})"
        secs = f"{until:.1f}s" if until < 10 else f"{until:.0f}s"
        if not countdown:  # a log, not a live bar: one line per hold, not one per second
            return f"waiting for the throttle ({why}; about {secs})"
        return f"waiting {secs} for the throttle ({why})"

    def label(self) -> str:
        countdown = _bar_is_live(self.bar)
        if (
            self.bar is not None
            and not countdown
            and self.bar.label.startswith(f"{self.group}: waiting")
        ):
            # keep the logged line while the hold lasts
            return self.bar.label if self.waiting(False) else f"{self.group}: exporting"
        wait = self.waiting(countdown)
        return f"{self.group}: " + (wait or "exporting")

    def refresh(self) -> None:
        if self.bar is None:
            return
        label = self.label()
        if label != self.bar.label:
            self.bar.label = label
            self.bar.render_progress()

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.refresh()


# -- python -m agupshup.widget -------------------------------------------------------------


def widget_main(argv: Iterable[str] | None = None) -> None:
    """``python -m agupshup.widget [options]`` = ``agupshup widget [options]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    widget_cmd.main(args, prog_name="python -m agupshup.widget", obj=Settings.from_env())


if __name__ == "__main__":  # pragma: no cover
    main()
