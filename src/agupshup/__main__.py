"""``python -m agupshup``: the CLI."""

from agupshup.cli import main

main()
