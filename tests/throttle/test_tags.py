"""The tag interpreter on its own: the model server's answers read as the greedy reference
reads them (it knows the window of each count; the interpreter must find it from the tag)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_property import on_grid, windows
from throttle_sim import Server, held_by_113, server_tags

from agupshup.models import ThrottleTag
from agupshup.throttle import Window
from agupshup.throttle._tags import TagInterpreter

STEP = 1 / 8


@settings(max_examples=300, deadline=None)
@given(ws=windows(STEP), times=st.lists(on_grid(STEP, 6.0), min_size=1, max_size=30),
       renamed=st.booleans())
def test_the_model_servers_answers_are_read_as_the_reference_reads_them(
    ws: list[Window], times: list[float], renamed: bool
) -> None:
    server = Server(ws)
    for t in sorted(times):
        counted, counts = server.see(t)
    tags = server_tags(server, counted, counts)
    told = server.tags(counted, counts)
    # The client may name its windows otherwise: limits still match them, where unique.
    mine = [Window(f"mine{i}", w.limit, w.length, w.warn) for i, w in enumerate(ws)]
    unique = len({w.limit for w in ws}) == len(ws)
    reading = TagInterpreter(mine if renamed and unique else ws).read(tags, not counted)
    assert reading.learned == told
    assert reading.warnings == [(k, c) for k, c in told if c >= ws[k].warn]
    assert reading.held == (held_by_113(ws, told) if not counted else [])
    assert reading.notes == []


MINUTE = Window("minute", 30, 60.0, 25)
HOUR = Window("hour", 1000, 3600.0, 990)


def tag(period: str, count: int, limit: int) -> ThrottleTag:
    return ThrottleTag(period=period, count=count, warn=limit, limit=limit)


def test_a_shared_limit_is_told_apart_by_name() -> None:
    twins = TagInterpreter([MINUTE, Window("burst", 30, 10.0, 25)])
    assert twins.read([tag("burst", 7, 30), tag("minute", 9, 30)], False).learned == [
        (1, 7), (0, 9)]


def test_a_tag_matched_by_name_only_is_learned_and_noted_once() -> None:
    reader = TagInterpreter([MINUTE, HOUR])
    first = reader.read([tag("minute", 12, 40)], False)
    assert first.learned == [(0, 12)]
    assert first.notes == ["throttle tag 'minute' (limit 40) matched by name only: the "
                           "server's limit is 40, this window's 30"]
    assert reader.read([tag("minute", 13, 40)], False).notes == []


def test_a_tag_that_matches_nothing_is_ignored_and_noted_once() -> None:
    reader = TagInterpreter([MINUTE, HOUR])
    first = reader.read([tag("week", 3, 7)], True)
    assert (first.learned, first.held) == ([], [0])  # a 113 naming nothing: the shortest
    assert first.notes == ["throttle tag 'week' (limit 7) matches no window (by limit or "
                           "name); ignored"]
    assert reader.read([tag("week", 4, 7)], False).notes == []


def test_a_113_holds_the_windows_its_tags_name() -> None:
    reader = TagInterpreter([MINUTE, HOUR])
    reading = reader.read([tag("hour", 1000, 1000), tag("minute", 30, 30)], True)
    assert reading.held == [0, 1]
    assert reading.warnings == [(1, 1000), (0, 30)]
    assert reader.read([tag("hour", 1000, 1000)], False).held == []  # not refused: no hold
