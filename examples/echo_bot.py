"""An echo bot: follow a group and answer each new message with a reply.

    python examples/echo_bot.py                      # embedded emulator, 10 seconds
    python examples/echo_bot.py --seconds 0          # until Ctrl-C
    python examples/echo_bot.py --base-url http://127.0.0.1:8080 --watch cricket --from-group jumpy

Without ``--base-url`` (or ``GUPSHUP_BASE_URL``) it starts the emulator in-process, logs in as
the seeded demo user (or ``GUPSHUP_PHONE``/``GUPSHUP_PASSWORD``), and has the seeded user alice
post to ``cricket`` every few seconds, so there is something to answer. Time runs 10x faster
there, in the emulator and in the throttle windows alike.

Replies go from a group the bot owns (``--from-group``) to the watched one: ``@cricket echo: …``.
The bot never answers its own replies (replies are not messages of the group anyway) and
starts at the head of the group: old messages are not answered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from target import Target, target

from agupshup import Client, Credentials, GupshupError, Message, PollPolicy


async def echo(client: Client, watch: str, from_group: str, limit: int | None) -> int:
    """Answer every new message of ``watch``; return how many were answered."""
    answered = 0
    async with client.group_stream(watch, follow=True, since="now", limit=limit) as feed:
        async for message in feed:
            await answer(client, message, watch, from_group)
            answered += 1
    return answered


async def answer(client: Client, message: Message, watch: str, from_group: str) -> None:
    print(f"seen     #{message.id} <{message.sender}> {message.text}", flush=True)
    text = f"@{watch} echo: {message.text}"[:160]
    result = await client.post_reply(text, from_group)
    for reply in result.replies:
        print(f"replied  #{reply.id} @{reply.from_group} -> @{reply.group_name}: {reply.text}",
              flush=True)
    for failure in result.failed:
        print(f"not delivered: {failure.msg}", flush=True)


async def chatter(api: Target, group: str) -> None:
    """The embedded emulator's traffic: alice posts to her group every few seconds."""
    from agupshup.emulator.seed import ALICE_PASSWORD, ALICE_PHONE

    async with api.client(Credentials(ALICE_PHONE, ALICE_PASSWORD)) as alice:
        n = 0
        while True:
            await asyncio.sleep(2.5)
            n += 1
            post_id = await alice.post_message(group, f"over {40 + n}: India {250 + 7 * n}/3")
            print(f"(alice posted #{post_id} to {group})", flush=True)


async def main(args: argparse.Namespace) -> None:
    async with target(args.base_url) as api:
        creds = api.credentials()
        if creds is None:
            raise SystemExit("set GUPSHUP_PHONE and GUPSHUP_PASSWORD for this server")
        async with api.client(creds) as bot:
            # Log in before saying anything: a wrong password is one line now, not a
            # traceback when the first message arrives.
            await bot.login()
            print(f"echo bot on {api.base_url} as {creds.phone}: watching {args.watch} "
                  f"(polling its head every {args.interval:g}s or slower, as the quota allows), "
                  f"replying from {args.from_group}"
                  + (" (embedded emulator)" if api.embedded else ""), flush=True)
            bot.poll_policy = PollPolicy(min_interval=args.interval, max_interval=30.0)
            work = echo(bot, args.watch, args.from_group, args.limit)
            tasks: list[asyncio.Task[object]] = [asyncio.create_task(work)]
            if api.embedded:
                tasks.append(asyncio.create_task(chatter(api, args.watch)))
            try:
                await asyncio.wait(tasks, timeout=args.seconds or None,
                                   return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task.done():
                        task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        windows = ", ".join(f"{w.period} {w.used}/{w.limit}" for w in api.scheduler.quota())
        print(f"done; quota used: {windows}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="API server (default: GUPSHUP_BASE_URL, else an "
                                           "embedded emulator)")
    parser.add_argument("--watch", default="cricket", help="group to answer (default cricket)")
    parser.add_argument("--from-group", default="demo-bot",
                        help="your group the replies come from (default demo-bot)")
    parser.add_argument("--seconds", type=float, default=10.0, help="0: run until Ctrl-C")
    parser.add_argument("--limit", type=int, default=None, help="stop after N messages")
    parser.add_argument("--interval", type=float, default=2.0, help="fastest poll, seconds")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    """Run the bot; failures are one line on stderr (exit 1), Ctrl-C says how it ended."""
    try:
        asyncio.run(main(parse_args(argv)))
    except KeyboardInterrupt:
        print("stopped (Ctrl-C); nothing to save: the bot starts at the group's head each run",
              file=sys.stderr)
        return 130
    except GupshupError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
