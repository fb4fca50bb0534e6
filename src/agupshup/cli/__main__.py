"""``python -m agupshup.cli``: the CLI."""

from agupshup.cli import main

main()
