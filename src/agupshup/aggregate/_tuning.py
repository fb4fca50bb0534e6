"""The follow engine's tunables, in one module: the parts read them from here at run time, so
a test (or a user) patches them here (``agupshup.aggregate._tuning.POLL_PAGES``); the package
re-exports their values.

* **Faults** back off per source, doubling from :data:`BACKOFF_FIRST` to :data:`BACKOFF_CAP`.
"""

from __future__ import annotations

#: Pages one poll of a source reads at most: the rest of its walk waits for the next poll,
#: and the plan is revised at once (the source carries more than the plan priced).
POLL_PAGES = 20
_LIST_PAGES = 10_000
#: Up to this many groups of unknown readability are probed before the first poll (so a bad
#: name in a short list is an error before any poll); more are probed in the background.
PROBE_AT_START = 10
#: The share of the budget that background work (probes, catch-ups) uses while there is some.
PROBE_SHARE = 0.25
#: The shortest time between two plans (a forced re-plan waits for it).
REPLAN_GAP = 60.0
BACKOFF_FIRST = 5.0
BACKOFF_CAP = 300.0
#: The ids kept for dedupe are pruned below the claim's floor from this many on.
_PRUNE_AT = 4096
#: Longest a closing follower waits to save its checkpoint, even when cancelled.
_CLOSE_SAVE_TIMEOUT = 5.0
def _backoff(failures: int) -> float:
    return float(min(BACKOFF_FIRST * 2.0 ** (failures - 1), BACKOFF_CAP))
