"""The peers' parts on their own: turns on one grid, the agreed period, shared heads taken in."""

from __future__ import annotations

import asyncio

from agupshup.aggregate import LocalFleet
from agupshup.aggregate._peers import take_in, turn_due
from agupshup.aggregate._source import _Source
from agupshup.paging import Descent
from agupshup.planner import JOINED


def test_turns_are_evenly_spaced_on_one_wall_clock_grid() -> None:
    # Four peers, a 10 s period: at wall time 1 003.0 their next turns are 1 010, 1 002.5 + 10,
    # 1 005 and 1 007.5: a quarter of the period apart, whatever monotonic clock each has.
    due = [turn_due(50.0, 1003.0, 10.0, k, 4) - 50.0 + 1003.0 for k in range(4)]
    assert due == [1010.0, 1012.5, 1005.0, 1007.5]
    assert sorted(d % 10.0 for d in due) == [0.0, 2.5, 5.0, 7.5]


def test_the_period_is_the_longest_a_live_peer_proposes() -> None:
    fleet = LocalFleet()
    a, b = fleet.member("a"), fleet.member("b")
    assert a.period("joined", 9.6) == 9.6
    assert b.period("joined", 12.0) == 12.0
    assert a.period("joined", 9.6) == 12.0  # b's windows are fuller: both poll every 12 s
    fleet.leave("b")
    assert a.period("joined", 9.6) == 9.6  # a dead peer's proposal no longer counts


def test_a_shared_head_closes_the_walks_below_it_and_moves_the_head_up() -> None:
    src = _Source(JOINED, head=100)
    gap = Descent(JOINED.page, 40)
    gap.top = 81
    src.gaps = [gap]
    assert take_in(src, 90)  # the walk (40, 81) lies below the peers' head
    assert (src.head, src.gaps) == (100, [])
    assert take_in(src, 150)  # the peers read on: nothing up to 150 is walked again
    assert src.head == 150
    assert not take_in(src, 80)  # an older head moves nothing
    straddling = Descent(JOINED.page, 95)
    straddling.top = 121
    src.head, src.gaps = 160, [straddling]
    assert not take_in(src, 100)  # a walk reaching above the head stays: read again
    assert src.gaps == [straddling]


def test_the_first_peer_sets_where_the_fleet_starts_and_heads_only_move_forward() -> None:
    fleet = LocalFleet()
    a, b = fleet.member("a"), fleet.member("b")

    async def main() -> None:
        assert await a.begin({"joined": 500}) == {"joined": 500}
        assert await b.begin({"joined": 900}) == {"joined": 500}  # b restarted: not its now
        assert await b.advance({"joined": 700})
        assert await a.advance({"joined": 600})
        assert fleet.shared["joined"] == 700  # never back
        fleet.leave("a")
        assert not await a.advance({"joined": 800})  # no peer any more: fenced
        assert fleet.shared["joined"] == 700

    asyncio.run(main())
