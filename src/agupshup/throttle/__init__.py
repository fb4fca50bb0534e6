"""Throttle-aware scheduling: spend the whole quota, never earn a 113.

``Scheduler`` admits calls so that no server window, sliding or fixed, can overflow (proof in
``docs/throttle.md``); ``MemoryLedger``, ``SqliteLedger`` and ``RedisLedger`` keep the entries
of one egress, in this process, on this host, or across hosts.

Layering: imports only ``agupshup.clock``, ``agupshup.errors`` and ``agupshup.models``.
"""

from ._lease import SharedLedger
from ._ledger import Admission, Ledger, MemoryLedger, View
from ._redis import RedisLedger
from ._scheduler import Scheduler, Slot
from ._sqlite import SqliteLedger
from ._windows import DEFAULT_WINDOWS, EventKind, Lane, ThrottleEvent, Window, scaled_windows

__all__ = [
    "DEFAULT_WINDOWS",
    "Admission",
    "EventKind",
    "Lane",
    "Ledger",
    "MemoryLedger",
    "RedisLedger",
    "Scheduler",
    "SharedLedger",
    "Slot",
    "SqliteLedger",
    "ThrottleEvent",
    "View",
    "Window",
    "scaled_windows",
]
