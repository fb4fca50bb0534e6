"""Every command's ``--help`` renders without a single warning (click warns, for instance, when
an argument and an option share a parameter name; the suite turns warnings into errors)."""

from __future__ import annotations

import warnings

import click
import pytest
from click.testing import CliRunner

from agupshup import cli
from agupshup.cli import app


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = _commands(cli.main)


def test_every_command_is_listed() -> None:
    names = {path[-1] for path in COMMANDS if path}
    assert {"subscribe", "post", "demo", "emulator", "export"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "agupshup")
def test_help_without_warnings(path: tuple[str, ...]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = CliRunner().invoke(cli.main, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "usage:" in result.output.lower()
    assert "warning" not in result.output.lower()


@pytest.mark.parametrize("name", sorted(app.EXAMPLES))
def test_a_commands_help_shows_its_own_options_first_and_an_example(name: str) -> None:
    result = CliRunner().invoke(cli.main, [name, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("Options:") < text.index("Global options") < text.index("Example")
    assert text.index("--help") < text.index("--base-url")  # its own, then the seven global
    for example in app.EXAMPLES[name]:
        assert example in text
