"""What a command is waiting for: the throttle, a login, a retry back-off.

Rules this module enforces:

* A wait shows only once it has lasted, or will last, about a second; quick calls print nothing.
* The status goes to stderr, never stdout. On a terminal it is one line redrawn in place with a
  countdown and erased when the wait ends; elsewhere (a log, a pipe) each wait is written once.
* Every line says what is awaited and, where known, until when (wall-clock) and for how long.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from agupshup.clock import Clock
from agupshup.models import QuotaWindow, human_duration, human_wall
from agupshup.throttle import Scheduler, ThrottleEvent
from agupshup.transport import HTTPMethod, RawResponse, Transport

__all__ = ["FORGET_HINT", "AnswerWatch", "Wait", "WaitStatus", "throttle_wait"]

#: Waits shorter than this stay silent.
SHOW_AFTER = 1.0
TICK = 0.25
#: How a hold is cleared, for a server the user controls (a reset emulator).
FORGET_HINT = "if the server was reset, `agupshup quota --forget` drops the hold"


@dataclass(frozen=True)
class Wait:
    """One thing the command waits for; ``until`` on the clock's monotonic scale, if known."""

    what: str
    detail: str = ""
    until: float | None = None
    #: When the wait began, if known better than when it was first seen (a request's send).
    started: float | None = None

    def line(self, now: float, since: float, *, countdown: bool = True) -> str:
        detail = f": {self.detail}" if self.detail else ""
        if self.until is None:
            return f"waiting for {self.what}{detail} ({now - since:.0f}s so far)"
        left = max(0.0, self.until - now)
        wall = human_wall(datetime.now(UTC) + timedelta(seconds=left))
        if not countdown:
            return f"waiting for {self.what} until {wall} (about {_secs(left)}){detail}"
        return f"waiting for {self.what} until {wall} ({_secs(left)} left){detail}"

    def short(self, now: float, *, countdown: bool = True) -> str:
        """A compact form, for progress bars (about 60 characters)."""
        left = "" if self.until is None or not countdown else f" {_secs(self.until - now)}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"waiting{left} for {self.what}{detail}"


def _secs(seconds: float) -> str:
    return human_duration(seconds)


def throttle_wait(
    scheduler: Scheduler, now: float, period: str | None = None, hold_until: float = 0.0
) -> Wait | None:
    """Why calls are held now (the window in the way, and until when), or None."""
    windows = scheduler.quota()
    if not scheduler.waiting or not windows:
        return None
    worst = _blocking(windows, period)
    until = max(worst.free_at, worst.held_until or 0.0, hold_until)
    if worst.held_until is not None and worst.held_until > now:
        detail = (f"the server refused a call (113: its {worst.period} window was full); "
                  f"{FORGET_HINT}")
    else:
        detail = f"{worst.period} {worst.used}/{worst.limit} used"
        if worst.used < worst.limit:
            detail += f", {worst.limit - worst.used} kept for interactive calls"
    return Wait("the throttle", detail, until if until > now else None)


def _blocking(windows: list[QuotaWindow], period: str | None) -> QuotaWindow:
    named = [w for w in windows if w.period == period]
    return named[0] if named else max(windows, key=lambda w: w.used / max(w.limit, 1))


class WaitStatus:
    """Watches the scheduler, the retry back-off and named activities; draws the wait line."""

    def __init__(self, scheduler: Scheduler, clock: Clock, stream: TextIO,
                 answers: AnswerWatch | None = None) -> None:
        self.scheduler = scheduler
        self.answers = answers
        #: A line to say at the first 113 of the run (why it may have happened), if any.
        self.on_113: str | None = None
        self.clock = clock
        self.stream = stream
        self.live = _isatty(stream)
        self._activity: str | None = None
        self._backoff_until = 0.0
        self._period: str | None = None
        self._hold_until = 0.0
        self._since: tuple[str, float] | None = None
        self._logged: str | None = None
        self._shown = False

    # -- what feeds it ------------------------------------------------------------------

    def on_event(self, event: ThrottleEvent) -> None:
        """The scheduler holds calls (``hold``) or the server refused one (``limited``)."""
        if event.kind == "warn":
            return
        if event.kind == "limited" and self.on_113 is not None:
            self.say(self.on_113)
            self.on_113 = None  # once a run: the hold line says the rest
        self._period = event.period
        if event.wait is not None:
            self._hold_until = self.clock.monotonic() + event.wait

    def backing_off(self, seconds: float) -> None:
        self._backoff_until = self.clock.monotonic() + seconds

    @contextlib.contextmanager
    def doing(self, what: str) -> Iterator[None]:
        """Name what the command waits for while the block runs (e.g. ``a login``)."""
        self._activity = what
        try:
            yield
        finally:
            self._activity = None

    # -- what it shows ------------------------------------------------------------------

    def current(self, now: float) -> Wait | None:
        if self._backoff_until > now:
            return Wait("a retry", "back-off after a failed call", self._backoff_until)
        held = throttle_wait(self.scheduler, now, self._period, self._hold_until)
        if held is not None:
            return held
        late = self._late_answer(now)
        if self._activity is not None:
            return Wait(self._activity, "" if late is None else late.what + f" ({late.detail})")
        return late

    def _late_answer(self, now: float) -> Wait | None:
        """The oldest request whose answer is over a second late, if any (every call "waits
        for an answer" for a few milliseconds; those stay silent)."""
        answers = self.answers
        sent = None if answers is None else answers.oldest()
        if answers is None or sent is None or now - sent[0] < SHOW_AFTER:
            return None
        return Wait(f"an answer from {answers.shown_url}", f"gives up after {sent[1]:g}s",
                    started=sent[0])

    def render(self, now: float) -> None:
        """Draw (or erase) the line for the wait in progress at ``now``."""
        wait = self.current(now)
        if wait is None:
            self._since = self._logged = None
            self._erase()
            return
        if self._since is None or self._since[0] != wait.what:
            self._since = (wait.what, now if wait.started is None else wait.started)
        since = self._since[1]
        if now - since < SHOW_AFTER and (wait.until is None or wait.until - now < SHOW_AFTER):
            return
        if self.live:
            self._write("\r\x1b[K" + wait.line(now, since))
            self._shown = True
        elif self._logged != wait.what:  # a log is not a terminal: once per wait
            self._logged = wait.what
            self._write(wait.line(now, since, countdown=False) + "\n")

    def say(self, line: str) -> None:
        """One line of its own on the stream (a wait line in progress is redrawn after it)."""
        self._erase()
        self._write(line + "\n")
        self._logged = None

    def _erase(self) -> None:
        if self._shown:
            self._shown = False
            self._write("\r\x1b[K")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    async def watch(self) -> None:
        """Redraw every tick until cancelled; the line is erased at the end."""
        try:
            while True:
                self.render(self.clock.monotonic())
                await asyncio.sleep(TICK)
        finally:
            self._erase()


class AnswerWatch:
    """A :class:`~agupshup.transport.Transport` that remembers when each request left, so that
    a server slow to answer is said on stderr (URL, time so far, limit) instead of silence."""

    def __init__(self, inner: Transport, clock: Clock, shown_url: str, limit: float) -> None:
        self.inner = inner
        self.clock = clock
        #: The request URL as it may be shown (no ``user:pass@``).
        self.shown_url = shown_url
        self.limit = limit
        self._sent: dict[int, tuple[float, float]] = {}
        self._ids = itertools.count()

    async def send(self, fields: Sequence[tuple[str, str]], *, http_method: HTTPMethod = "POST",
                   timeout: float | None = None) -> RawResponse:
        n = next(self._ids)
        self._sent[n] = (self.clock.monotonic(), self.limit if timeout is None else timeout)
        try:
            return await self.inner.send(fields, http_method=http_method, timeout=timeout)
        finally:
            del self._sent[n]

    async def aclose(self) -> None:
        await self.inner.aclose()

    def oldest(self) -> tuple[float, float] | None:
        """When the oldest request in flight left, and its limit; None if none is."""
        return min(self._sent.values(), default=None)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
