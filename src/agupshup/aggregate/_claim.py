"""What a follower's cursor claims, and how a saved cursor is read back.

* **Exactly once.** The cursor (:class:`~agupshup.checkpoint.FollowCursor`) claims the heads
  and gaps as they stood when nothing was buffered and nothing handed out was unacknowledged,
  plus the ids handed out and acknowledged since: it never covers an item not yet handed out
  (the follower's core, :mod:`agupshup.aggregate._core`, keeps it so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from agupshup.checkpoint import FollowCursor, MergedCursor
from agupshup.planner import JOINED, PUBLIC, Channel

#: A cursor to resume from: this engine's, one of version 1 (read as this one), or its JSON.
Resume = FollowCursor | MergedCursor | str | bytes | None
#: What a cursor claims: heads, gaps (per source) and starts (per group).
_Claim = tuple[dict[str, int], dict[str, tuple[tuple[int, int], ...]], dict[str, int]]

def _follow_cursor(value: Resume) -> FollowCursor | None:
    if value is None or isinstance(value, FollowCursor):
        return value
    if isinstance(value, MergedCursor):
        return FollowCursor.from_merged(value)
    return FollowCursor.from_json(value)


def _claim_of(cursor: FollowCursor, group: str) -> int | None:
    """Up to where ``group``'s messages were handed out, by a cursor: its start, if its source
    was not read; else the lowest claim of the sources that may have covered it (its own
    stream, the joined and the public streams). None: the cursor says nothing of it."""
    if group in cursor.starts:
        return cursor.starts[group]
    keys = (Channel("group", group).key, JOINED.key, PUBLIC.key)
    claims = [cursor.heads[k] for k in keys if k in cursor.heads]
    claims += [low for k in keys for low, _ in cursor.gaps.get(k, ())]
    return min(claims, default=None)

def _default_key(names: Sequence[str]) -> str:
    # A thousand names make a poor store key; their digest names the same set.
    return "aggregate:" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
