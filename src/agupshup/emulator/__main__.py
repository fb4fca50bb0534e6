"""``python -m agupshup.emulator``: serve the emulator until interrupted.

Prints the base URL (one line, flushed) once the server listens, so scripts can read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from agupshup.emulator.config import EmulatorConfig
from agupshup.emulator.server import EmulatorServer
from agupshup.emulator.throttle import ThrottleConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agupshup.emulator",
        description="A local emulator of the GupShup Stream and Group API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed", default=None, help="seed file (.json or .toml)")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="emulator seconds per real second"
    )
    parser.add_argument("--throttle", choices=("sliding", "fixed", "off"), default="sliding")
    parser.add_argument(
        "--token-idle", type=float, default=1800.0, help="seconds a token lives without use"
    )
    parser.add_argument(
        "--random-seed",
        type=int,
        default=None,
        help="seed tokens, challenges and codes (default: unpredictable)",
    )
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        seed=args.seed,
        time_scale=args.time_scale,
        throttle=ThrottleConfig(mode=args.throttle),
        token_idle=args.token_idle,
        random_seed=args.random_seed,
        fault_seed=args.fault_seed,
    )


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with EmulatorServer(config_from(args), host=args.host, port=args.port) as server:
        print(server.base_url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
