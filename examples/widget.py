"""Serve the featured widget: customize, preview, embed a group's latest messages.

    python examples/widget.py                    # embedded emulator, 10 seconds, free port
    python examples/widget.py --seconds 0 --port 8090     # until Ctrl-C; open the printed URL
    python examples/widget.py --base-url http://127.0.0.1:8080

Without ``--base-url`` (or ``GUPSHUP_BASE_URL``) it starts the emulator in-process and runs the
widget as the seeded demo user, who owns ``jumpy`` and ``demo-bot`` (the embedded views of
those two have a post box). Elsewhere the owner's credentials come from ``GUPSHUP_PHONE`` and
``GUPSHUP_PASSWORD``; without them the widget is read-only.

Every page view is answered from a 10-second cache per group, with one call at most per group
and period however many visitors come, so a popular blog cannot spend the owner's quota.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import urllib.parse

from target import target

from agupshup.widget import Widget, serve


async def main(args: argparse.Namespace) -> None:
    async with target(args.base_url, time_scale=1.0) as api:
        creds = api.credentials()
        async with api.client(creds) as client:
            widget = Widget(client, ttl=args.ttl, read_only=creds is None)

            def ready(url: str) -> None:
                query = urllib.parse.urlencode({"group": args.group, "color": args.color})
                print(f"widget for {api.base_url}"
                      + (" (embedded emulator)" if api.embedded else ""), flush=True)
                print(f"  customize: {url}/?{query}", flush=True)
                print(f"  embedded:  {url}/embed/{urllib.parse.quote(args.group)}", flush=True)
                if args.seconds:
                    print(f"  stops in {args.seconds:g}s (--seconds 0: until Ctrl-C)", flush=True)

            await serve(widget, args.host, args.port, seconds=args.seconds or None,
                        on_ready=ready)
        print(f"served {widget.pages.hits + widget.pages.fetches} page reads with "
              f"{widget.pages.fetches} API calls", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="API server (default: GUPSHUP_BASE_URL, else an "
                                           "embedded emulator)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--group", default="jumpy", help="group shown in the printed URLs")
    parser.add_argument("--color", default="#2e86de")
    parser.add_argument("--ttl", type=float, default=10.0, help="cache seconds per group")
    parser.add_argument("--seconds", type=float, default=10.0, help="0: run until Ctrl-C")
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse_args()))
