"""The commands. Adding one: write an ``async def name_cmd(r: Run, …)`` under
``@client_command("name")`` with its click options below, as the others are.

Rules this module enforces:

* A command body only calls the client and prints through :mod:`.output`; the run around it
  (settings, client, scheduler, login, wait line, exit codes) is :func:`.app.client_command`'s.
* Messages for people about the run itself (prompts, "no groups", partial failures) go to
  stderr; stdout holds only the records.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from typing import Any

import click

from agupshup import errors as E
from agupshup.checkpoint import Cursor
from agupshup.client import Client, egress_key
from agupshup.planner import Plan, describe
from agupshup.polling import PollPolicy
from agupshup.session import Credentials
from agupshup.streams import group_key
from agupshup.widget.__main__ import run_widget, widget_options

from .app import Run, client_command, command, main, run
from .output import json_line, show_group, show_message, show_outcome, show_quota, show_reply
from .settings import UsageError, current_settings
from .status import FORGET_HINT
from .tokens import token_key

__all__: list[str] = []


# -- demo, emulator, widget ----------------------------------------------------------------


@command("demo")
@click.option("--forever", is_flag=True, help="Keep running until Ctrl-C.")
@click.option("--seconds", type=click.FloatRange(min=1), default=15.0, show_default=True,
              help="How long the bot and the aggregator run.")
def demo_cmd(forever: bool, seconds: float) -> None:
    """See it work: embedded emulator + bot + aggregator, no account needed.

    Time runs 10x faster in the demo (emulator and throttle windows alike); --time-scale 1
    shows the real pace.
    """
    from agupshup import demo

    settings = current_settings()
    if settings.json:
        # Refused rather than ignored: the demo's lines are for people, not a record format.
        run(_refuse("demo prints for people only: --json is for the reading commands "
                    "(info, stream, tail, ...)"), settings)
    scale = settings.time_scale or demo.DEMO_TIME_SCALE
    run(demo.run_demo(seconds=None if forever else seconds, time_scale=scale), settings,
        interrupt_ok=forever)


async def _refuse(why: str) -> None:
    raise UsageError(why)


def _add_emulator() -> None:
    # The emulator owns its command (it imports nothing from the client); the CLI adopts it.
    from agupshup.emulator.__main__ import main as emulator_main

    main.add_command(emulator_main, "emulator")


_add_emulator()


@client_command("widget", login=lambda kw: not kw["read_only"], interrupt_ok=True)
@widget_options
async def widget_cmd(r: Run, /, host: str, port: int, seconds: float | None,
                     **options: Any) -> None:
    """Serve the featured widget (customize, preview, embed) for the owner's account."""
    await run_widget(r.client, host, port, seconds, **options)


# -- reading --------------------------------------------------------------------------------


@client_command("info")
@click.argument("group")
async def info_cmd(r: Run, group: str) -> None:
    """Show a public group's details (groups.getInfo)."""
    show_group(await r.client.get_info(group), r.json, long=True)


@client_command("stream")
@click.argument("group")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=15, show_default=True,
              help="How many messages, newest first (pages of 15 are fetched as needed).")
async def stream_cmd(r: Run, group: str, limit: int) -> None:
    """Print a public group's latest messages, newest first (groups.getStream)."""
    async with r.client.group_stream(group, limit=limit) as stream:
        async for m in stream:
            show_message(m, r.json)


def _has_credentials(kw: object) -> bool:
    # The joined-groups stream needs a login; without credentials the plan uses public sources.
    return bool(current_settings().given_phone())


@client_command("plan", login=_has_credentials)
@click.argument("groups", nargs=-1, required=True)
async def plan_cmd(r: Run, groups: tuple[str, ...]) -> None:
    """Plan how to follow GROUPS on this quota: the sources, their poll intervals, calls a
    day and expected delay, and which subscriptions would cut delay or cost. Costs only the
    discovery calls (joined groups, the first page of each source), no polls."""
    async with r.client.follow_groups(groups) as follower:
        plan = follower.plan
    if r.json:
        json_line({"mode": plan.mode, "calls_per_day": round(plan.calls_per_day),
                   "budget_per_day": round(plan.budget_per_day),
                   "expected_delay_s": round(plan.expected_delay, 1),
                   "sources": [{"source": s.source.key, "groups": len(s.groups),
                                "interval_s": round(s.interval, 1),
                                "calls_per_day": round(s.calls_per_day)}
                               for s in plan.sources]})
    else:
        click.echo(describe(plan))


def _tail_login(kw: Mapping[str, object]) -> bool:
    groups = kw["groups"]
    return isinstance(groups, tuple) and len(groups) > 1 and _has_credentials(kw)


@client_command("tail", login=_tail_login)
@click.argument("groups", nargs=-1, required=True)
@click.option("-n", "--lines", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many recent messages to print first (pages of 15 are read as needed).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new messages as they come.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="With --follow: stop after this many new messages.")
@click.option("--seconds", type=click.FloatRange(min=0), default=None,
              help="With --follow: stop after this long.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="With --follow: fastest poll (the pace adapts to activity and quota).")
async def tail_cmd(r: Run, groups: tuple[str, ...], lines: int, follow: bool,
                   count: int | None, seconds: float | None, interval: float) -> None:
    """Print a group's last messages, oldest first; with --follow, keep printing new ones.

    Several GROUPS with --follow print only new messages, through the aggregation planner
    (`agupshup plan` shows how it reads them)."""
    if len(groups) > 1:
        if not follow:
            raise UsageError("several groups need --follow")
        await _tail_many(r, groups, count, seconds)
        return
    group = groups[0]
    # At least one, even for -n 0: --follow starts after the newest message there is.
    async with r.client.group_stream(group, limit=max(lines, 1)) as pages:
        recent = [m async for m in pages]
    for m in reversed(recent[:lines]):
        show_message(m, r.json)
    if not follow:
        return
    r.client.poll_policy = PollPolicy(min_interval=interval, max_interval=max(interval, 60.0))
    click.echo(f"following {group}: its head every {interval:g}s or slower, as its activity "
               "and the quota allow (Ctrl-C stops)", err=True)
    # From the newest message just printed: what came before it is not new.
    live = Cursor(source=group_key(group), phase="live", newest=recent[0].id if recent else None)
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(seconds),
            r.client.group_stream(group, follow=True, limit=count, resume_from=live) as stream,
        ):
            async for m in stream:
                show_message(m, r.json)


async def _tail_many(r: Run, groups: tuple[str, ...], count: int | None,
                     seconds: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds), r.client.follow_groups(groups) as follower:
            click.echo(_plan_line(follower.plan), err=True)  # before the first message
            async for m in follower:
                show_message(m, r.json)
                if count is not None and follower.count >= count:
                    return


def _plan_line(plan: Plan) -> str:
    """The plan in one line: what is followed, through which sources, how often."""
    sources = "; ".join(f"{s.source.key} ({len(s.groups)} groups) every {s.interval:.0f}s"
                        for s in plan.sources)
    followed = sum(len(s.groups) for s in plan.sources)
    return (f"following {followed} groups through {len(plan.sources)} source(s): {sources}; "
            f"expected delay {plan.expected_delay:.1f}s (Ctrl-C stops)")


@client_command("replies", login=lambda kw: bool(kw["include_hidden"]))
@click.argument("group")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--all", "include_hidden", is_flag=True,
              help="Include hidden replies (you must own the group).")
async def replies_cmd(r: Run, group: str, limit: int, include_hidden: bool) -> None:
    """Print the replies to a group, newest first (groups.getReplies)."""
    async with r.client.replies(group, limit=limit, include_hidden=include_hidden) as stream:
        async for reply in stream:
            show_reply(reply, r.json)
    if stream.count == 0 and not r.json:
        click.echo(f"no replies to {group}", err=True)


@client_command("groups", login=True)
@click.option("--mine", "which", flag_value="mine", default=True, help="Groups you own (default).")
@click.option("--joined", "which", flag_value="joined", help="Groups you have joined.")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=30, show_default=True)
async def groups_cmd(r: Run, which: str, limit: int) -> None:
    """List your groups (users.getMyGroups / users.getJoinedGroups)."""
    pages = r.client.my_groups if which == "mine" else r.client.joined_groups
    async with pages(limit=limit) as stream:
        async for g in stream:
            show_group(g, r.json)
    if stream.count == 0 and not r.json:
        click.echo("no groups", err=True)


@client_command("quota")
@click.option("--forget", is_flag=True,
              help="Drop this server's counts and holds from the ledger: only for a server you "
              "control that was reset (a restarted emulator); a real server still counts them.")
async def quota_cmd(r: Run, forget: bool) -> None:
    """Show the throttle windows: calls used, limits, when the next call fits, and any hold
    after a 113 (with how to drop it).

    The counts are those of the throttle ledger (--ledger), which every run on this host shares;
    with --ledger memory they cover this run only.
    """
    if forget and r.ledger is not None:
        await r.ledger.forget()
        click.echo(f"forgot the counts and holds of {egress_key(r.settings.base_url)} "
                   f"in {r.settings.ledger_path()}", err=True)
    windows = await r.scheduler.fetch_quota()
    now = r.client.clock.monotonic()
    show_quota(windows, now, r.json)
    if not r.json and any(w.held_until is not None and w.held_until > now for w in windows):
        click.echo(f"held: {FORGET_HINT}", err=True)


@client_command("logout")
async def logout_cmd(r: Run) -> None:
    """End the login kept for this server (users.logout) and delete its token from the file.

    Commands keep their login between runs (a private file beside the ledger), so that each
    costs one call; this ends it. With --phone (or GUPSHUP_PHONE) only that phone's login.
    """
    url, phone = r.settings.base_url, r.settings.given_phone()
    if r.tokens is None:
        click.echo("not logged in: with --ledger memory no login outlives a command", err=True)
        return
    keys = [token_key(url, phone)] if phone else r.tokens.keys(egress_key(url))
    kept = [key for key in keys if r.tokens.stored(key) is not None]
    for key in kept:
        who = key.rpartition("|")[2]
        # The kept token is loaded, not a new login made: the placeholder password is unused.
        async with Client(url, credentials=Credentials(who, ""), throttle=r.scheduler,
                          token_store=r.tokens) as client:
            await client.login()
            await client.logout()
        click.echo(f"logged out {who} from {egress_key(url)}")
    if not kept:
        click.echo(f"not logged in to {egress_key(url)}" + (f" as {phone}" if phone else ""),
                   err=True)


# -- writing --------------------------------------------------------------------------------


@client_command("post", login=True)
@click.argument("group")
@click.argument("text")
async def post_cmd(r: Run, group: str, text: str) -> None:
    """Post TEXT to a group you own (groups.postMessage)."""
    post_id = await r.client.post_message(group, text)
    if r.json:
        json_line({"id": post_id, "groupName": group})
    else:
        click.echo(f"posted #{post_id} to {group}")


@client_command("reply", login=True)
@click.argument("text")
@click.option("-g", "--group", default=None,
              help="Your group the reply comes from (default: your first group).")
async def reply_cmd(r: Run, text: str, group: str | None) -> None:
    """Reply with TEXT, which names its destinations as @group (groups.postReply)."""
    result = await r.client.post_reply(text, group)
    show_outcome(result, r.json,
                 (f"replied #{x.id} to @{x.group_name} from @{x.from_group}"
                  for x in result.replies),
                 (f"not delivered (error {f.code}): {f.msg}" for f in result.failed))


@client_command("invite", login=True)
@click.argument("phones", nargs=-1, required=True)
@click.option("-g", "--group", default=None, help="Your group (default: your first group).")
async def invite_cmd(r: Run, phones: tuple[str, ...], group: str | None) -> None:
    """Invite Indian mobile numbers to a group you own (groups.inviteFriends)."""
    result = await r.client.invite_friends(list(phones), group)
    show_outcome(result, r.json, (f"invited {phone}" for phone in result.invited),
                 (f"not invited {f.phone} (error {f.code}): {f.msg}" for f in result.failed))


def _ask_code(phone: str) -> str:
    try:
        return str(click.prompt("Code from the SMS", err=True)).strip()
    except click.Abort:
        if sys.stdin.isatty():
            raise  # Ctrl-C or Ctrl-D at the prompt: the user stopped it
        click.echo(err=True)  # end the prompt's line
        # Nothing interrupted anything: stdin ended (</dev/null, a script) before a code came.
        raise UsageError(f"no code to confirm with: stdin ended (the code was texted to "
                         f"{phone}; pipe it in, or run in a terminal to be asked)") from None


@client_command("subscribe")
@click.argument("subscriber", metavar="PHONE")
@click.argument("group")
@click.option("--attempts", type=click.IntRange(1, 5), default=3, show_default=True,
              help="How many times to ask for the code if it is wrong.")
async def subscribe_cmd(r: Run, subscriber: str, group: str, attempts: int) -> None:
    """Subscribe PHONE to GROUP: texts a code to the phone, asks for it, then confirms."""
    ticket = await r.client.subscribe(subscriber, group)
    click.echo(f"A confirmation code was texted to {ticket.phone}.", err=True)
    for attempt in range(1, attempts + 1):
        code = _ask_code(ticket.phone)
        try:
            msg = await r.client.confirm_subscription(ticket, code)
        except E.InvalidConfirmation as exc:
            if attempt == attempts:
                raise
            click.echo(f"wrong code: {exc.msg}", err=True)
            continue
        if r.json:
            json_line({"phone": ticket.phone, "group": ticket.group, "msg": msg})
        else:
            click.echo(f"subscribed {ticket.phone} to {ticket.group}" + (f": {msg}" if msg else ""))
        return
