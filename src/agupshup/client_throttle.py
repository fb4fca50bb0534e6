"""The throttle a Client joins: one choice, made here.

Rules this module enforces:

* Throttling is one argument of the :class:`~agupshup.client.Client`, ``throttle=``: a
  :class:`Throttle` (options of the egress's shared scheduler: the default), a scheduler of
  one's own (:class:`SchedulerLike`), or ``None`` (:class:`Unthrottled`: every call admitted at
  once). :func:`choose_throttle` turns what was passed into that one value.
* One budget per egress (:func:`egress_key`: server host and source address) in a process:
  :func:`join_egress` hands every client of it the one shared scheduler.
* The default ledger is the per-host file (:func:`default_ledger_path`), and only for clocks of
  real time: an injected clock has no business in a file other processes read.
* The Client's keywords before issue 25 (``format=``, ``time_scale=``, ``scheduler=``,
  ``windows=``, ``ledger=``, ``throttle=True/False``) still work one release, each with a
  :class:`DeprecationWarning` naming its new spelling; contradicting ones raise
  :class:`ValueError`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol, TypedDict
from urllib.parse import urlsplit

from agupshup import wire
from agupshup.clock import Clock, ScaledClock, SystemClock
from agupshup.models import QuotaWindow, ThrottleTag
from agupshup.throttle import Ledger, Scheduler, SharedLedger, SqliteLedger, Window

__all__ = [
    "DEFAULT_THROTTLE",
    "ENV_LEDGER",
    "LEDGER_OFF",
    "DeprecatedKeywords",
    "SchedulerLike",
    "Throttle",
    "Ticket",
    "Unthrottled",
    "choose_throttle",
    "default_ledger_path",
    "egress_key",
    "join_egress",
    "old_time_and_format",
    "warn_deprecated",
]

# The Client's logger: what this module says is the choice a Client made.
log = logging.getLogger("agupshup.client")
#: The environment variable that names the throttle ledger file (``memory``: none).
ENV_LEDGER = "GUPSHUP_LEDGER"
#: Values of ``GUPSHUP_LEDGER`` (and ``--ledger``) that keep the counts in memory.
LEDGER_OFF = ("memory", "none", "off")


class Ticket(Protocol):
    """One admitted call, as the client uses it (:class:`agupshup.throttle.Slot`)."""

    def learn(self, throttle: Sequence[ThrottleTag] = (), limited: bool = False) -> None: ...


class SchedulerLike(Protocol):
    """What the client needs of a scheduler (:class:`agupshup.throttle.Scheduler`)."""

    def slot(
        self, lane: wire.Lane = "bulk", *, max_wait: float | None = None
    ) -> AbstractAsyncContextManager[Ticket]: ...

    def quota(self) -> list[QuotaWindow]: ...


class _OpenSlot:
    """The slot of :class:`Unthrottled`: a plain class, as a generator-based context
    manager would cost more than the rest of the unthrottled call path."""

    __slots__ = ()

    async def __aenter__(self) -> _OpenSlot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def learn(self, throttle: Sequence[ThrottleTag] = (), limited: bool = False) -> None:
        return None


class Unthrottled:
    """Admits everything at once: for benchmarks and servers without a throttle."""

    _slot = _OpenSlot()

    def slot(self, lane: wire.Lane = "bulk", *, max_wait: float | None = None) -> _OpenSlot:
        return self._slot

    def quota(self) -> list[QuotaWindow]:
        return []


@dataclasses.dataclass(frozen=True, slots=True)
class Throttle:
    """The options of the throttle a :class:`Client` joins: ``Client(url, throttle=Throttle())``.

    The client joins its egress's shared scheduler (:func:`egress_key`: one per server host and
    source address in a process), created with these options by the first client:

    * ``windows``: the server's limits (``None``: the egress's, GupShup's when first);
    * ``ledger``: where the egress's entries live (``None``: the per-host file of
      :func:`default_ledger_path`, so a restarted process still counts its earlier calls;
      ``GUPSHUP_LEDGER=memory`` keeps them in memory). ``MemoryLedger()``, ``SqliteLedger``,
      ``RedisLedger`` (:mod:`agupshup.throttle`) share it in a process, on a host, across hosts.

    Open clients of one egress must agree on both: another answer is a :class:`ValueError`.
    There is no time scale here: a sped-up server is matched by the client's ``clock=``
    (:class:`~agupshup.clock.ScaledClock`), which moves the windows with everything else timed.
    """

    windows: Sequence[Window] | None = None
    ledger: Ledger | None = None

    def __post_init__(self) -> None:
        if self.windows is not None:  # a tuple, so that the value stays frozen
            object.__setattr__(self, "windows", tuple(self.windows))


#: ``throttle=`` left out: the egress's shared scheduler, GupShup's windows, the per-host file.
DEFAULT_THROTTLE = Throttle()


class DeprecatedKeywords(TypedDict, total=False):
    """The Client's keywords before issue 25, accepted one more release with a warning."""

    format: wire.Format
    time_scale: float
    scheduler: SchedulerLike
    windows: Sequence[Window]
    ledger: Ledger


#: Each deprecated keyword → its new spelling, as the warning names it.
_NEW_SPELLING = {
    "format": "wire_format=",
    "time_scale": "clock=ScaledClock(scale=...) (agupshup.ScaledClock)",
    "scheduler": "throttle=<the scheduler>",
    "windows": "throttle=Throttle(windows=...)",
    "ledger": "throttle=Throttle(ledger=...)",
}


def egress_key(base_url: str, local_address: str | None = None) -> str:
    """The budget a call counts against: the server counts per client IP, so one budget per
    server host (lower-cased; with its port when not the scheme's default, since another port
    is another server) and source address. ``http://`` and ``https://`` to one host share a
    budget."""
    if local_address is not None:
        return f"{egress_key(base_url)} from {local_address}"
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if not host:
        return base_url
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if port is None or port == default else f"{host}:{port}"


def join_egress(
    throttle: Throttle, base_url: str, clock: Clock, local_address: str | None = None
) -> Scheduler:
    """The egress's shared scheduler, with this client counted as a user."""
    ledger = throttle.ledger
    if local_address is not None and isinstance(ledger, SharedLedger):
        ledger.for_egress(local_address)  # fleet: one shared budget per source address
    key = egress_key(base_url, local_address)
    disk = _disk_ledger(key) if _real_time(clock) else None
    return Scheduler.shared(key, throttle.windows, clock=clock, ledger=ledger,
                            default_ledger=disk).attach()


def default_ledger_path() -> Path | None:
    """The per-host throttle ledger that clients and the CLI share by default:
    ``GUPSHUP_LEDGER`` if set (``memory``: none), else ``$XDG_CACHE_HOME`` or ``~/.cache``,
    ``agupshup/throttle.sqlite3``."""
    named = os.environ.get(ENV_LEDGER, "").strip()
    if named.lower() in LEDGER_OFF:
        return None
    if named:
        return Path(named).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "agupshup" / "throttle.sqlite3"


def _real_time(clock: Clock) -> bool:
    """Whether ``clock`` is the system's (perhaps scaled): an injected clock (tests,
    simulations) has no business in a file other processes read."""
    while isinstance(clock, ScaledClock):
        clock = clock.base
    return type(clock) is SystemClock


def _disk_ledger(key: str) -> Callable[[], Ledger | None]:
    """The egress's entries in the per-host file, so that a restarted process still counts the
    calls it made before (issue 24: a bot restarted within a minute earned a 113)."""

    def make() -> Ledger | None:
        path = default_ledger_path()
        if path is None:
            return None
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        except OSError as exc:
            log.info("throttle ledger %s unusable (%s); counting in memory", path, exc)
            return None
        return SqliteLedger(path, key=key)

    return make


def warn_deprecated(old: str, new: str, stacklevel: int = 4) -> None:
    # 4: the caller of Client(...) (warn ← warn_deprecated ← the helper ← __init__).
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)


def old_time_and_format(
    wire_format: wire.Format, clock: Clock | None, old: DeprecatedKeywords
) -> tuple[wire.Format, Clock | None]:
    """``wire_format`` and ``clock`` with the deprecated ``format=``/``time_scale=`` applied."""
    unknown = sorted(set(old) - set(_NEW_SPELLING))
    if unknown:
        raise TypeError(f"Client() got an unexpected keyword argument {unknown[0]!r}")
    for name in old:
        warn_deprecated(f"Client({name}=)", _NEW_SPELLING[name])
    if "format" in old:
        if wire_format != "json" and old["format"] != wire_format:
            raise ValueError("format= is the old spelling of wire_format=: pass one")
        wire_format = old["format"]
    scale = old.get("time_scale", 1.0)
    if scale != 1.0:
        clock = ScaledClock(clock, scale)
    return wire_format, clock


def choose_throttle(
    throttle: Throttle | SchedulerLike | bool | None, old: DeprecatedKeywords
) -> Throttle | SchedulerLike | None:
    """The one throttle argument, from ``throttle=`` and the deprecated keywords (each warned
    about); :class:`ValueError` when they contradict one another."""
    if isinstance(throttle, bool):
        warn_deprecated(f"Client(throttle={throttle})",
                    "throttle=Throttle() (the default)" if throttle else "throttle=None")
    new = not isinstance(throttle, bool) and throttle is not DEFAULT_THROTTLE
    fixes = [f"{name}=" for name in ("windows", "ledger") if name in old]
    if "scheduler" in old:
        clash = fixes + ["throttle="] * (new or throttle is False)
        clash += ["time_scale="] * ("time_scale" in old)
        if clash:
            raise ValueError(f"scheduler= already fixes the throttle; {', '.join(clash)} would "
                             "be ignored (build the scheduler with them instead)")
        return old["scheduler"]
    if throttle is False or throttle is None:
        if fixes:
            raise ValueError("throttle=None admits every call: windows= and ledger= would be "
                             "ignored")
        return None
    if not isinstance(throttle, bool | Throttle) and "time_scale" in old:
        raise ValueError("a scheduler of one's own keeps its own clock: time_scale= would be "
                         "ignored (build the scheduler with it instead)")
    if fixes:
        if new:
            raise ValueError(f"throttle= already fixes the throttle; {', '.join(fixes)} would "
                             "be ignored (pass Throttle(windows=..., ledger=...))")
        return Throttle(windows=old.get("windows"), ledger=old.get("ledger"))
    return DEFAULT_THROTTLE if throttle is True else throttle
