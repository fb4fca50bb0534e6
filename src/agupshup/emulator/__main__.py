"""``python -m agupshup.emulator`` (and ``agupshup emulator``): serve the emulator until
interrupted.

Prints the base URL (one line, flushed) once the server listens, so scripts can read it.

Rules this module enforces:

* Like the rest of the emulator, it imports nothing from the client; the CLI adopts ``main``.
* A start-up failure (a bad option, a port in use, a seed file that is missing or wrong) is one
  ``Error:`` line on stderr, never a traceback: 2 for bad options, 1 for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # imported when the command runs: the CLI adopting it stays quick to start
    from agupshup.emulator.server import EmulatorServer
    from agupshup.emulator.throttle import Mode

__all__ = ["main"]


class _OneLineCommand(click.Command):
    """Option errors as one line: click would print the usage and a hint above them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = None
            raise


@click.command(cls=_OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="0 picks a free port.")
@click.option("--seed", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Seed file (.json or .toml) [default: the built-in seed].")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Emulator seconds per real second.")
@click.option("--throttle", type=click.Choice(["sliding", "fixed", "off"]), default="sliding",
              show_default=True, help="The per-IP throttle windows ('off' for fast tests).")
@click.option("--token-idle", type=click.FloatRange(min=0, min_open=True), default=1800.0,
              show_default=True, help="Seconds a token lives without use.")
@click.option("--random-seed", type=int, default=None,
              help="Seed tokens, challenges and codes [default: unpredictable].")
@click.option("--fault-seed", type=int, default=0, show_default=True)
@click.option("-v", "--verbose", count=True, help="Log more (-vv: debug).")
def main(host: str, port: int, seed: str | None, time_scale: float, throttle: Mode,
         token_idle: float, random_seed: int | None, fault_seed: int, verbose: int) -> None:
    """Run a local emulator of the GupShup Stream and Group API (Ctrl-C stops it)."""
    from agupshup.emulator.config import EmulatorConfig
    from agupshup.emulator.server import EmulatorServer
    from agupshup.emulator.throttle import ThrottleConfig

    logging.basicConfig(level={0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
    try:
        config = EmulatorConfig(
            seed=seed, time_scale=time_scale, throttle=ThrottleConfig(mode=throttle),
            token_idle=token_idle, random_seed=random_seed, fault_seed=fault_seed)
        server = EmulatorServer(config, host=host, port=port)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"--seed {seed}: {_one_line(exc)}") from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, host, port, default_seed=seed is None))


async def _serve(server: EmulatorServer, host: str, port: int, *, default_seed: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else _one_line(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {why}") from None
    try:
        click.echo(server.base_url)  # first line of stdout: scripts read it
        for line in _next_steps(server.base_url, default_seed):
            click.echo(line, err=True)
        await stop.wait()
    finally:
        await server.close()


def _next_steps(base_url: str, default_seed: bool) -> list[str]:
    """What a person does next: the demo account (with the built-in seed) and a first command."""
    from agupshup.emulator.seed import ALICE_PASSWORD, ALICE_PHONE, DEMO_PASSWORD, DEMO_PHONE

    if not default_seed:
        return [f"next, in another terminal: agupshup --base-url {base_url} info GROUP "
                "(users and groups: your seed file; Ctrl-C stops)"]
    return [
        f"demo user {DEMO_PHONE} / {DEMO_PASSWORD} (owns jumpy, demo-bot); "
        f"alice {ALICE_PHONE} / {ALICE_PASSWORD} (owns cricket)",
        f"next, in another terminal: export GUPSHUP_BASE_URL={base_url} "
        f"GUPSHUP_PHONE={DEMO_PHONE} GUPSHUP_PASSWORD={DEMO_PASSWORD}; agupshup info jumpy "
        "(Ctrl-C stops)",
    ]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    main(prog_name="python -m agupshup.emulator")
