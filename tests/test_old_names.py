"""Issue 25: names that meant two things. ``Window.period`` (a label, beside ``length`` in
seconds) is ``Window.name``, in the client and in the emulator's mirror of it; the old name
still reads, with a warning, for one release."""

from __future__ import annotations

from dataclasses import fields

import pytest

from agupshup.emulator import Window as ServerWindow
from agupshup.throttle import Window, scaled_windows


@pytest.mark.parametrize("kind", [Window, ServerWindow])
def test_a_window_is_named_and_period_warns(kind: type[Window] | type[ServerWindow]) -> None:
    window = kind("minute", 30, 60.0, 25)
    assert window.name == "minute"
    with pytest.warns(DeprecationWarning, match="use Window.name") as caught:
        assert window.period == "minute"
    assert caught[0].filename == __file__


def test_the_emulator_mirrors_the_clients_field_names() -> None:
    assert [f.name for f in fields(ServerWindow)] == [f.name for f in fields(Window)]


def test_scaling_keeps_the_names() -> None:
    assert [w.name for w in scaled_windows(60.0)] == ["minute", "hour", "day"]
