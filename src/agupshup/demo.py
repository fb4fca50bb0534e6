"""``agupshup demo``: the library at work in one command, with no account.

It starts the emulator in this process (a free port on 127.0.0.1), then runs three clients at
once against it, all admitted by one throttle scheduler (they share one IP's quota):

* the **aggregator** (no login) shows the latest messages of ``jumpy``, ``cricket`` and
  ``demo-bot``, then follows all three with ``merged_stream`` and prints what arrives;
* **alice** (a seeded user) posts score updates to her group ``cricket`` now and then;
* the **bot** (the seeded demo user) announces itself in ``demo-bot``, and answers every new
  ``cricket`` message the aggregator hands it with a reply ``@cricket …``.

It ends with the replies on the server and the quota. It stops by itself after ``seconds``
(``None``: until cancelled).

Time runs ``time_scale`` times faster (10 by default) in the emulator *and* in the clients
(``Client(clock=ScaledClock(scale=...))``: throttle windows, token idle rule, polling), so a
minute of the API's throttle passes in 6 s. At real speed (``time_scale=1``) the followers poll
each group about every 25 s — the pace GupShup's 10 000-calls-a-day limit allows for steady
following — and a 15-second demo would show almost no live traffic.

Rules this module enforces:

* Only public API: :class:`~agupshup.Client`, its streams, :class:`~agupshup.throttle.Scheduler`
  and the emulator's :class:`~agupshup.emulator.EmulatorServer`.
* :func:`api_target` is the "use this server, or start one" helper the examples share.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from agupshup import Client
from agupshup.checkpoint import Cursor, MergedCursor
from agupshup.client import ENV_BASE_URL, egress_key
from agupshup.clock import ScaledClock, SystemClock
from agupshup.models import Message, QuotaWindow, human_duration, human_wall
from agupshup.polling import PollPolicy
from agupshup.session import credentials_from_env
from agupshup.streams import group_key
from agupshup.throttle import Scheduler, ThrottleEvent

if TYPE_CHECKING:
    from agupshup.emulator import EmulatorServer

__all__ = ["DEMO_GROUPS", "DEMO_TIME_SCALE", "Api", "api_target", "run_demo"]

DEMO_TIME_SCALE = 10.0

DEMO_GROUPS = ("jumpy", "cricket", "demo-bot")
#: alice's updates: (seconds after the start, text). Repeated with --forever.
SCORES = (
    (2.5, "India 251/3 after 40 overs"),
    (8.0, "Wicket! India 256/4, Kohli c & b Starc 87"),
    (24.0, "India 301/6 after 50 overs: target 302"),
    (40.0, "Australia 44/1 after 8 overs"),
)
ROLE_COLORS = {
    "emulator": "white",
    "aggregator": "cyan",
    "bot": "green",
    "alice": "magenta",
    "throttle": "yellow",
    "quota": "yellow",
    "replies": "blue",
}


@dataclass
class Api:
    """A server to talk to (given, or embedded) and the one scheduler its clients share."""

    base_url: str
    #: The embedded emulator, or None when talking to a server given by URL or environment.
    server: EmulatorServer | None
    time_scale: float
    scheduler: Scheduler

    @property
    def embedded(self) -> bool:
        return self.server is not None

    def credentials(self) -> tuple[str, str] | None:
        """``GUPSHUP_PHONE``/``GUPSHUP_PASSWORD``; the seeded demo user on the embedded one."""
        given = credentials_from_env()
        if given is not None:
            return given.phone, given.password
        if self.embedded:
            from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE

            return DEMO_PHONE, DEMO_PASSWORD
        return None

    def client(self, phone: str | None = None, password: str | None = None) -> Client:
        """A Client of this server on its time scale; it joins the egress's shared scheduler."""
        return Client(self.base_url, phone=phone, password=password,
                      clock=ScaledClock(scale=self.time_scale))


@asynccontextmanager
async def api_target(
    base_url: str | None = None,
    *,
    env: bool = True,
    time_scale: float | None = None,
    embedded_time_scale: float = DEMO_TIME_SCALE,
    seed: Mapping[str, Any] | None = None,
    on_event: Callable[[ThrottleEvent], None] | None = None,
) -> AsyncIterator[Api]:
    """``base_url`` (or, with ``env``, ``GUPSHUP_BASE_URL``) when given; else an embedded
    emulator on a free port of 127.0.0.1, stopped on exit.

    ``time_scale`` (default: 1 for a given server, ``embedded_time_scale`` for the embedded
    one) speeds up the embedded emulator, and the clients of :meth:`Api.client` to match.
    """
    url = base_url or (os.environ.get(ENV_BASE_URL) if env else None)
    async with contextlib.AsyncExitStack() as stack:
        server: EmulatorServer | None = None
        if url:
            scale = time_scale or 1.0
        else:
            from agupshup.emulator import EmulatorConfig, EmulatorServer

            scale = time_scale or embedded_time_scale
            config = EmulatorConfig(random_seed=None, time_scale=scale, seed=seed)
            server = await stack.enter_async_context(EmulatorServer(config))
            url = server.base_url
        # The egress's shared scheduler, made here only to hook its events: clients join it.
        clock = SystemClock() if scale == 1 else ScaledClock(scale=scale)
        scheduler = Scheduler.shared(egress_key(url), clock=clock, on_event=on_event).attach()
        stack.push_async_callback(_leave, scheduler)
        yield Api(url, server, scale, scheduler)


async def _leave(scheduler: Scheduler) -> None:
    """Done with the shared scheduler; close it (and its event hook) if nobody else uses it."""
    scheduler.detach()
    if not scheduler.in_use:
        await scheduler.aclose()


class _Printer:
    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.t0 = time.monotonic()

    def __call__(self, role: str, text: str) -> None:
        stamp = f"[{time.monotonic() - self.t0:5.1f}s]"
        label = click.style(f"{role:<10}", fg=ROLE_COLORS.get(role), bold=True)
        self.echo(f"{stamp} {label} {text}")


def _line(m: Message) -> str:
    return f"{m.group_name:<9} #{m.id}  <{m.sender}>  {m.text}"


def quota_lines(windows: Sequence[QuotaWindow], now: float) -> list[str]:
    """People-readable lines for ``client.quota()`` (``now`` on the scheduler's clock, for the
    hold; the wait is ``free_in``, in real seconds)."""
    lines = []
    for w in windows:
        at = "" if w.free_wall is None else f", until {human_wall(w.free_wall)}"
        state = "room now" if w.free_in <= 0 else f"next call in {human_duration(w.free_in)}{at}"
        if w.held_until is not None and w.held_until > now:
            state = f"held {human_duration(w.free_in)}{at}, after the server refused a call (113)"
        lines.append(
            f"{w.period:<7} {w.used:>5}/{w.limit:<6} used  (window {_duration(w.length)}; {state})"
        )
    return lines


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}min"
    return f"{seconds:g}s"


async def run_demo(
    seconds: float | None = 15.0,
    *,
    time_scale: float = DEMO_TIME_SCALE,
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Run the demo for ``seconds`` of real time (None: until cancelled)."""
    from agupshup.emulator.seed import ALICE_PASSWORD, ALICE_PHONE, DEMO_PASSWORD, DEMO_PHONE

    say = _Printer(echo)

    def on_event(event: ThrottleEvent) -> None:
        say("throttle", f"{event.kind}: {event.period} window: {event.detail}")

    async with api_target(env=False, time_scale=time_scale, on_event=on_event) as api:
        assert api.server is not None
        _introduce(say, api.base_url, time_scale, DEMO_PHONE, ALICE_PHONE)
        # Three clients, one scheduler (api.scheduler): they share this machine's quota.
        reader = api.client()
        bot = api.client(DEMO_PHONE, DEMO_PASSWORD)
        alice = api.client(ALICE_PHONE, ALICE_PASSWORD)
        # Server seconds: every 2 to 8 real seconds, whatever the scale.
        reader.poll_policy = PollPolicy(
            min_interval=2.0 * time_scale, max_interval=8.0 * time_scale
        )
        async with reader, bot, alice:
            await _run_actors(reader, bot, alice, say, seconds)
            await _show_replies(reader, say)
        _show_quota(api, reader, say)
    say(
        "emulator",
        "done. Next: `agupshup emulator` in one terminal, "
        "`agupshup --base-url http://127.0.0.1:8080 stream jumpy` in another.",
    )


def _introduce(
    say: Callable[[str, str], None], base_url: str, time_scale: float, demo: str, alice: str
) -> None:
    say("emulator", f"GupShup emulator running in-process at {base_url} (no account needed)")
    if time_scale != 1:
        say(
            "emulator",
            f"time runs {time_scale:g}x faster, in the emulator and in the "
            f"throttle windows (a minute's quota of 30 calls lasts "
            f"{60 / time_scale:g}s)",
        )
    say("emulator", f"seeded: demo user {demo} owns jumpy and demo-bot; alice {alice} owns cricket")


async def _run_actors(
    reader: Client,
    bot: Client,
    alice: Client,
    say: Callable[[str, str], None],
    seconds: float | None,
) -> None:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    tasks = [
        asyncio.create_task(_aggregator(reader, inbox, say), name="aggregator"),
        asyncio.create_task(_bot(bot, inbox, say), name="bot"),
        asyncio.create_task(_alice(alice, say, forever=seconds is None), name="alice"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # a failed task fails the demo
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _show_replies(reader: Client, say: Callable[[str, str], None]) -> None:
    replies = await reader.get_replies("cricket", 0, 3)
    say("replies", "latest replies to cricket, as the server has them:")
    for r in replies:
        say("replies", f"  #{r.id} @{r.from_group} -> @{r.group_name}  {r.text}")


def _show_quota(api: Api, reader: Client, say: Callable[[str, str], None]) -> None:
    assert api.server is not None
    say("quota", "the shared scheduler's view of the throttle windows:")
    for line in quota_lines(api.scheduler.quota(), reader.clock.monotonic()):
        say("quota", "  " + line)
    stats = api.server.emulator.stats()
    say(
        "quota",
        f"the emulator served {stats['total_calls']} calls, "
        f"{sum(stats['throttled'].values())} refused with 113",
    )


async def _aggregator(
    client: Client, inbox: asyncio.Queue[Message], say: Callable[[str, str], None]
) -> None:
    """Show each group's latest messages, then follow them all as one merged stream."""
    cursors: dict[str, Cursor] = {}
    for group in DEMO_GROUPS:
        latest = await client.get_stream(group, 0, 3)
        for m in reversed(latest):
            say("aggregator", _line(m))
        newest = latest[0].id if latest else None
        cursors[group] = Cursor(source=group_key(group), phase="live", newest=newest)
    say("aggregator", f"following {', '.join(DEMO_GROUPS)} (merged_stream, follow=True) ...")
    resume = MergedCursor(streams=cursors)
    async with client.merged_stream(DEMO_GROUPS, follow=True, resume_from=resume) as stream:
        async for m in stream:
            say("aggregator", "new: " + _line(m))
            await inbox.put(m)


async def _bot(
    client: Client, inbox: asyncio.Queue[Message], say: Callable[[str, str], None]
) -> None:
    """Announce, then reply to every new cricket message that is not the bot's own."""
    await client.login()
    say("bot", "logged in as the demo user")
    post_id = await client.post_message("demo-bot", "demo-bot is online: say hi in cricket!")
    say("bot", f"posted #{post_id} to demo-bot")
    while True:
        m = await inbox.get()
        if m.group_name.lower() != "cricket":
            continue
        text = f"@cricket thanks {m.sender}! noted: {m.text[:60]}"
        result = await client.post_reply(text, "demo-bot")
        for r in result.replies:
            say("bot", f"replied #{r.id} to @{r.group_name} from @{r.from_group}: {r.text}")
        for f in result.failed:
            say("bot", f"reply not delivered: {f.msg}")


async def _alice(client: Client, say: Callable[[str, str], None], *, forever: bool) -> None:
    """Post score updates on a schedule (round after round with ``forever``)."""
    start = time.monotonic()
    rounds = 0
    while True:
        for at, text in SCORES:
            due = start + at + rounds * 60.0
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            body = text if rounds == 0 else f"{text} (round {rounds + 1})"
            post_id = await client.post_message("cricket", body)
            say("alice", f"posted #{post_id} to cricket: {body}")
        if not forever:
            await asyncio.Event().wait()
        rounds += 1
