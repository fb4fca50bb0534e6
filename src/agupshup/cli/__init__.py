"""``agupshup``: the command line, on click.

Module map (each module states the rules it enforces at its top)::

    settings   the global options, the environment, credentials, the ledger file
    output     lines for people, JSON Lines for programs
    status     the live line that says what a command waits for (throttle, login, answers)
    tokens     the login kept between runs (a private file beside the ledger)
    app        the ``agupshup`` group; ``client_command``: settings → client → body → exit code
    commands   demo, emulator, widget, info, stream, tail, replies, groups, quota, post, ...
    export     export, with its progress bar

Adding a command: an ``async def`` under ``@client_command("name")`` in ``commands.py`` (or a
module of its own, imported below).
"""

from __future__ import annotations

from . import commands, export, fleet
from .app import main
from .settings import Settings

__all__ = ["Settings", "main"]

_REGISTERED = (commands, export, fleet)  # importing them adds their commands to ``main``
