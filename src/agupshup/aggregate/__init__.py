"""The one follow engine: many groups, any start, each message handed out once, whatever fails.

``async with client.follow_groups(groups) as stream: async for message in stream: ...``
(``client.merged_stream(groups, ...)`` is the same engine, with a history walk by default).

Its parts, each with its rules at its top:

* :mod:`~agupshup.aggregate._source`: a polled source, its head and open gaps (**Sources**);
* :mod:`~agupshup.aggregate._spend`: the follower's own windows (**Budget**);
* :mod:`~agupshup.aggregate._claim` and :mod:`~agupshup.aggregate._core`: the cursor, the
  state and the calls (**Exactly once**);
* :mod:`~agupshup.aggregate._planning`: plans, hand-overs and catch-ups (**Hand-over**);
* :mod:`~agupshup.aggregate._discovery`: the start, discovery and probes (**Start**, **Bad
  names**);
* :mod:`~agupshup.aggregate._polling`: the work loop, polls and walks (**Walks**, **Faults**);
* :mod:`~agupshup.aggregate._follower`: the :class:`Follower` itself (**Cancels**, **End**);
* :mod:`~agupshup.aggregate._peers`: followers of one set on several addresses, a fleet
  (**Turns**, **Own streams**, **Heads**);
* :mod:`~agupshup.aggregate._tuning`: the tunables (patch them there; the names below are
  their values) and :mod:`~agupshup.aggregate._calls`: what the follower needs of a client.

The parts are one class (:class:`Follower`) built as a chain of mixins, lowest first:
``_Core`` ← ``_Planning`` ← ``_Discovery`` ← ``_Polling`` ← ``Follower``; each part calls only
the parts below it, but for one hook (``_Core._fetch`` hands on what the polls read first).
"""

from agupshup.aggregate._calls import FATAL as FATAL
from agupshup.aggregate._calls import UNREADABLE as UNREADABLE
from agupshup.aggregate._calls import FollowCalls, OnDrop, Start
from agupshup.aggregate._claim import Resume
from agupshup.aggregate._follower import Follower, MergedStream, follow_groups, merged_stream
from agupshup.aggregate._peers import LocalFleet, Peers

# Their values, for reading (patch them in ``_tuning``, which the parts read at run time).
from agupshup.aggregate._tuning import BACKOFF_CAP as BACKOFF_CAP
from agupshup.aggregate._tuning import BACKOFF_FIRST as BACKOFF_FIRST
from agupshup.aggregate._tuning import POLL_PAGES as POLL_PAGES
from agupshup.aggregate._tuning import PROBE_AT_START as PROBE_AT_START
from agupshup.aggregate._tuning import PROBE_SHARE as PROBE_SHARE
from agupshup.aggregate._tuning import REPLAN_GAP as REPLAN_GAP

__all__ = [
    "FollowCalls", "Follower", "LocalFleet", "MergedStream", "OnDrop", "Peers", "Resume", "Start",
    "follow_groups", "merged_stream",
]
