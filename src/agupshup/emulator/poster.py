"""The poster throttle: at most ``limit`` stored posts per ``window`` seconds per user (127).

Rules this module enforces:

* Only stored posts count; refused posts do not.
* The window slides: any ``window`` seconds may hold at most ``limit`` posts of one user.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PosterThrottle"]


class PosterThrottle:
    __slots__ = ("_posts", "limit", "window")

    def __init__(self, limit: int = 5, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._posts: dict[str, deque[float]] = {}

    def full(self, phone: str, now: float) -> bool:
        """Whether one more post by ``phone`` now would pass the limit."""
        times = self._posts.get(phone)
        if not times:
            return False
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times) >= self.limit

    def record(self, phone: str, now: float) -> None:
        self._posts.setdefault(phone, deque()).append(now)
