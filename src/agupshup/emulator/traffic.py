"""The emulator as a traffic source: many groups, Poisson arrivals, Zipf-skewed rates.

Rules this module enforces:

* Deterministic from a seed: the same :class:`Traffic` arguments give the same arrivals.
* Arrivals are in emulator time (epoch seconds): each group's are a Poisson process of its own
  rate; rates follow Zipf's law over the groups (rank k gets a share ∝ 1/kˢ), ranks shuffled.
* Posting stores each message at its own arrival time, through the world (no API call, so the
  throttle and the poster limit do not see it), in time order; :attr:`Traffic.posted` records
  (id, group, arrival ms) for measuring delay from post to read.
* :func:`many_groups_seed` builds a seed of N groups owned by one user, with a reader who has
  joined a chosen subset. Like the rest of the emulator, this module imports nothing of the
  client.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agupshup.emulator.seed import DEFAULT_SALT

if TYPE_CHECKING:
    from agupshup.emulator.core import Emulator

__all__ = [
    "OWNER_PHONE",
    "READER_PASSWORD",
    "READER_PHONE",
    "Arrival",
    "Traffic",
    "group_names",
    "many_groups_seed",
    "zipf_rates",
]

OWNER_PHONE = "9000000001"
READER_PHONE = "9000000002"
READER_PASSWORD = "reader-pass"


@dataclass(frozen=True, slots=True, order=True)
class Arrival:
    at: float  # emulator epoch seconds
    group: str


def group_names(n: int, prefix: str = "g") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def zipf_rates(
    groups: Sequence[str], total: float, s: float = 1.0, seed: int = 0
) -> dict[str, float]:
    """``total`` (per second) shared over ``groups`` by Zipf's law, ranks shuffled by ``seed``."""
    ranks = list(range(1, len(groups) + 1))
    random.Random(seed).shuffle(ranks)
    weights = [1 / k**s for k in ranks]
    norm = sum(weights)
    return {g: total * w / norm for g, w in zip(groups, weights, strict=True)}


@dataclass
class Traffic:
    """Arrivals into ``rates`` (messages per second per group) from ``start`` for ``seconds``."""

    rates: Mapping[str, float]
    start: float
    seconds: float
    seed: int = 0
    #: (message id, group, arrival ms) of every message posted so far.
    posted: list[tuple[int, str, int]] = field(default_factory=list)
    _arrivals: list[Arrival] = field(default_factory=list, repr=False)
    _next: int = 0

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        out: list[Arrival] = []
        for group in sorted(self.rates):
            rate = self.rates[group]
            t = self.start
            while rate > 0:  # ends: each step moves t forward by a positive amount
                t += rng.expovariate(rate)
                if t >= self.start + self.seconds:
                    break
                out.append(Arrival(t, group))
        self._arrivals = sorted(out)

    @property
    def arrivals(self) -> Sequence[Arrival]:
        return self._arrivals

    def pending(self) -> int:
        return len(self._arrivals) - self._next

    def pump(self, emulator: Emulator) -> int:
        """Post every arrival due by the emulator's clock; how many were posted."""
        now = emulator.timebase.now()
        world = emulator.world
        done = 0
        while self._next < len(self._arrivals) and self._arrivals[self._next].at <= now:
            arrival = self._arrivals[self._next]
            self._next += 1
            group = world.group(arrival.group)
            if group is None:
                raise KeyError(f"no group {arrival.group!r}")
            at_ms = int(arrival.at * 1000)
            message = world.post(group, f"{arrival.group} #{self._next}", group.owner, at_ms)
            self.posted.append((message.id, group.name, message.timestamp))
            done += 1
        return done

    async def run(
        self, emulator: Emulator, sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Post every arrival at its time; ``sleep`` waits clock seconds (the emulator's
        ``time_scale`` turns emulator seconds into clock seconds)."""
        while self._next < len(self._arrivals):  # ends: pump always consumes the due head
            wait = self._arrivals[self._next].at - emulator.timebase.now()
            if wait > 0:
                await sleep(emulator.timebase.real_seconds(wait))
            self.pump(emulator)


def many_groups_seed(
    groups: Iterable[str],
    *,
    joined: Iterable[str] = (),
    private: Iterable[str] = (),
    created_on: int = 1_262_304_000_000,
) -> dict[str, Any]:
    """A seed of ``groups`` (empty, owned by :data:`OWNER_PHONE`) where :data:`READER_PHONE`
    (password :data:`READER_PASSWORD`) has joined ``joined``."""
    members = set(joined)
    hidden = set(private)
    return {
        "salt": DEFAULT_SALT,
        "users": [
            {"phone": OWNER_PHONE, "password": "owner-pass", "name": "owner"},
            {"phone": READER_PHONE, "password": READER_PASSWORD, "name": "reader"},
        ],
        "groups": [
            {
                "name": g,
                "owner": OWNER_PHONE,
                "private": g in hidden,
                "created_on": created_on,
                "members": [READER_PHONE] if g in members else [],
            }
            for g in groups
        ],
    }
