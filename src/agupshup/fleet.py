"""The fleet: workers on many egress addresses share one followed set through Redis.

``async with FleetWorker(client, redis_url, groups) as worker: async for m in worker: ...``

Rules this module enforces:

* A worker is one :class:`~agupshup.Client` (its own ``local_address``, hence its own throttle
  budget: the server counts per IP) and one :class:`FleetWorker`. It registers in Redis for 3/4
  of ``lease`` and renews by the one lease rule (``agupshup.stores.renew_period``: every third
  of that, a quarter of ``lease``); a member whose registration lapsed is dropped.
* A group has at most one owner at a time: the claim ``{prefix}:claim:{group}`` holds a
  fencing token ``"<epoch>:<owner id>"`` (the epoch from one counter that only grows, so a group
  lost and taken back gets a new token), with the same TTL, renewed with the membership. Which
  groups a worker *wants* is rendezvous hashing over the live members, weighted by each one's
  remaining quota (quantised, so spending quota does not reshuffle groups at every beat). A
  wanted group is taken only once its claim is free; a group no longer wanted is given up only
  after its follow is closed (which saves its cursor). So a dead worker's groups move within
  one lease period.
* What a worker runs is one seam, :data:`~agupshup.fleet_follow.OpenFollow` ("a follow of
  these groups with this checkpoint, beside these peers"): the one follow engine over the whole
  followed set, with :class:`FleetPeers`. Every worker reads the shared streams (joined,
  public) in turns on one agreed period; a group's own stream and its catch-ups are its claim
  holder's; each shared stream's head lives in Redis, moved only forward, only to a worker's
  acknowledged claim, only while its member token holds (``agupshup.aggregate._peers``).
* Cursors live in Redis, one key per held group; every save carries the tokens the follow was
  opened under and is written only while the claim still holds them (one Lua script): a worker
  that lost a group, even one that got it back since (A-B-A), never overwrites the owner's
  progress. A held group's message is published under its claim's token; any other (a shared
  stream brought it) under the worker's member token. Checkpoints come every ``every`` items
  or ``interval`` seconds, idle or not. After a crash the new owner re-yields at most what the
  dead worker's own streams handed out since its last checkpoint; nothing is lost.
* Losing a claim (or the lease) halts the follow's polls at once, from the heartbeat, whatever
  the consumer is doing; the follow is reopened on the rest by the next ``__anext__``.
* A group the follow finds unreadable (private, gone) is recorded in ``{prefix}:unreadable``,
  reported once (a ``FleetEvent`` naming it) and dropped: no worker claims it again.
* A worker that cannot reach Redis long enough to lose its lease stops following and raises
  :class:`FleetUnavailable`; it never polls a group it may no longer own. A Redis that does not
  answer is one it cannot reach: every call of the worker is bounded, publishing included (a
  heartbeat or a publish by the time left before the claims expire). (Throttle ledgers in
  Redis refuse calls with ``LedgerError`` rather than over-admit.)
* Each worker yields what it hands out (two may yield one message read in close turns);
  :class:`RedisStreamSink` gives consumers one exactly-once feed: a Lua script appends a
  message to a Redis Stream only if its id is new (``SET NX`` with a TTL, then ``XADD``).
* Lease expiry is Redis ``TIME`` (one clock for every host); waits use the client's clock.
  One Redis (a replica or Sentinel for failover), not Redis Cluster: the scripts build key names
  from ``prefix`` and touch keys they are not passed in ``KEYS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from agupshup import fleet_scripts as scripts
from agupshup.checkpoint import Checkpoint, Cursor, MergedCursor
from agupshup.client import Client
from agupshup.errors import Fenced, FleetUnavailable, UnreadableGroups
from agupshup.fleet_feed import RedisStreamSink, redis_call
from agupshup.fleet_follow import KEY, Follow, OpenFollow, open_engine_follow
from agupshup.models import Message, QuotaWindow
from agupshup.stores import close_redis, connect_redis, renew_period

__all__ = [
    "Fenced",
    "FencedStore",
    "FleetEvent",
    "FleetObserver",
    "FleetUnavailable",
    "FleetWorker",
    "RedisStreamSink",
    "owner_of",
    "quota_weight",
    "token_holder",
]

log = logging.getLogger("agupshup.fleet")
T = TypeVar("T")


def token_holder(token: str | bytes) -> str:
    """The worker id in a claim's token (``"<epoch>:<id>"``)."""
    return _text(token).split(":", 1)[1]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- assignment -------------------------------------------------------------------------------


def owner_of(group: str, members: dict[str, float]) -> str | None:
    """The member that wants ``group``: weighted rendezvous hashing (highest random weight).

    Each member scores ``-weight / ln(u)`` with ``u`` a hash of (member, group) in (0, 1): a
    member owns a share of the groups proportional to its weight, and a member leaving moves
    only its own groups."""
    best, best_score = None, -math.inf
    for member, weight in sorted(members.items()):
        if weight <= 0:
            continue
        digest = hashlib.blake2b(f"{member}\0{group}".encode(), digest_size=8).digest()
        u = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
        score = -weight / math.log(u)
        if score > best_score:
            best, best_score = member, score
    return best


def quota_weight(quota: Sequence[QuotaWindow], steps: int = 8) -> float:
    """The share left of the longest window (the day's), rounded up to ``1/steps``: a worker
    keeps its groups while it spends, and sheds some once its day is mostly gone. A client
    without a throttle weighs 1."""
    if not quota:
        return 1.0
    day = max(quota, key=lambda w: w.length)
    left = max(0, day.limit - day.used) / day.limit
    return max(1, math.ceil(left * steps)) / steps


# -- what a worker tells ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Something an operator wants to know of one worker; ``str(event)`` is one line.

    ``kind``: ``joined``, ``members`` (others joined or left), ``took`` (claims taken: a
    takeover when another worker had them), ``released`` (given back on a rebalance),
    ``following``, ``lost`` (claims lost while held), ``unreadable`` (dropped for good),
    ``stopped`` (the lease lapsed or Redis failed), ``left``."""

    kind: str
    worker: str
    groups: tuple[str, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        parts = [f"fleet: {self.kind}", f"worker={self.worker}"]
        if self.groups:
            shown = ",".join(self.groups[:_SHOWN])
            more = f",+{len(self.groups) - _SHOWN}" if len(self.groups) > _SHOWN else ""
            parts.append(f"groups={len(self.groups)}[{shown}{more}]")
        if self.detail:
            parts.append(self.detail)
        return " ".join(parts)


_SHOWN = 8


class FleetObserver:
    """Hooks a worker calls (the CLI's event lines, the metrics); each does nothing here.
    Called in the worker's tasks: they must not block."""

    def event(self, event: FleetEvent) -> None:
        return None

    def delivered(self, message: Message, delay: float | None) -> None:
        return None

    def beat(self, worker: FleetWorker) -> None:
        return None


# -- the worker -------------------------------------------------------------------------------


class FencedStore:
    """The :class:`~agupshup.checkpoint.CheckpointStore` under a worker's follow: one Redis key
    per group, loaded for the groups followed, saved only for those whose claim still holds the
    token (``tokens``: group -> token) the follow was opened under."""

    def __init__(self, worker: FleetWorker, tokens: Mapping[str, str]) -> None:
        self._w = worker
        self._tokens = dict(tokens)

    async def load(self, key: str) -> str | None:
        w = self._w
        groups = sorted(self._tokens)
        values = await w.call(w.redis.mget([w.cursor_key(g) for g in groups]), "load")
        streams = {g: Cursor.from_json(v) for g, v in zip(groups, values, strict=True) if v}
        return MergedCursor(streams=streams).to_json()

    async def save(self, key: str, value: str) -> None:
        w = self._w
        args: list[str] = [w.claim_key(""), w.cursor_key("")]
        for group, cursor in MergedCursor.from_json(value).streams.items():
            token = self._tokens.get(group)
            if token is not None:
                args += [group, token, cursor.to_json()]
        await w.call(w.script("save")(args=args), "save")

    async def delete(self, key: str) -> None:
        return None  # cursors outlive a worker: another takes its groups over


class FleetWorker:
    """One member of the fleet, following its share of ``groups`` with ``client``.

    ``redis``: a URL or a ``redis.asyncio`` client. ``lease``: seconds a silent worker keeps its
    groups (they move to the others within one lease after it dies). Checkpoints come every
    ``every`` items or every ``interval`` seconds, whichever is first, even when no message
    comes (so a takeover re-yields at most that window). ``sink``: publish every message to a
    :class:`RedisStreamSink` before yielding it (one it refused is retried first by the next
    ``__anext__``, never skipped). ``weight``: a worker's share (default :func:`quota_weight` of
    the client's quota). ``follow``: the engine run over the groups held
    (:mod:`agupshup.fleet_follow`). ``observers``: told of events, deliveries and beats.
    """

    def __init__(
        self,
        client: Client,
        redis: Any,
        groups: Iterable[str],
        *,
        name: str | None = None,
        lease: float = 15.0,
        prefix: str = "agupshup:fleet",
        every: int = 10,
        interval: float = 60.0,
        sink: RedisStreamSink | None = None,
        weight: Callable[[], float] | None = None,
        follow: OpenFollow = open_engine_follow,
        observers: Sequence[FleetObserver] = (),
    ) -> None:
        if not lease > 0 or every < 1 or not interval > 0:
            raise ValueError("need lease > 0, every >= 1 and interval > 0")
        self.client = client
        self.redis, self._owns = connect_redis(redis)
        self.groups = {g.strip().lower(): g.strip() for g in groups if g.strip()}
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{client.local_address or '-'}"
        self.lease = lease
        # Claims live 3/4 of a lease and are renewed every third of that (a quarter): a dead
        # worker's groups are free within 3/4 lease and taken at the survivors' next beat, so
        # within one lease.
        self._ttl = lease * 0.75
        self._period = renew_period(self._ttl)
        self.prefix = prefix
        self.every = every
        self.interval = interval
        self.sink = sink
        self._weight = weight or (lambda: quota_weight(client.quota()))
        self._open = follow
        self._observers = tuple(observers)
        self._scripts: dict[str, Any] = {}
        #: The claims this worker holds (group -> token); the groups its follow runs over;
        #: those it wants; the fleet's unreadable groups (group -> why, once this one met them).
        self.tokens: dict[str, str] = {}
        self.following: frozenset[str] = frozenset()
        self.wanted: set[str] = set()
        self.members: dict[str, float] = {}
        self.unreadable: dict[str, str] = {}
        #: Messages yielded; the delivery delay (s) of each group's last one.
        self.delivered = 0
        self.lag: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._failure: FleetUnavailable | None = None
        self._beat_ok = 0.0
        self._flushed = 0.0
        self._beater: asyncio.Task[None] | None = None
        self._follow: Follow | None = None
        #: The tokens the open follow was opened under: its saves and publishes carry them.
        self._open_tokens: dict[str, str] = {}
        #: A message the follow delivered that the sink refused: retried before the next.
        self._unpublished: Message | None = None
        #: This worker's membership fence (set on joining) and its turn on the shared sources
        #: when the follow was opened (place, members).
        self.member_token = ""
        self._turn = (0, 1)
        #: The period this worker's follow proposes for each shared source, and every live
        #: member's (from the heartbeat): the turns' grid is the longest.
        self.proposals: dict[str, float] = {}
        self.periods: dict[str, dict[str, float]] = {}

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self.tokens)

    def claim_key(self, group: str) -> str:
        return f"{self.prefix}:claim:{group}"

    def cursor_key(self, group: str) -> str:
        return f"{self.prefix}:cursor:{group}"

    def key(self, name: str) -> str:
        """One of the fleet's own keys: members, weights, info, unreadable, epoch."""
        return f"{self.prefix}:{name}"

    def head_key(self, source: str) -> str:
        """A shared source's head: every item of it up to there is in the feed."""
        return f"{self.prefix}:head:{source}"

    @property
    def member_key(self) -> str:
        """Holds this worker's member token while its lease lasts: the fence of what it does
        for the whole fleet (a shared head moved, a message of a group it does not hold)."""
        return f"{self.prefix}:member:{self.id}"

    def script(self, name: str) -> Any:
        return self._scripts[name]

    async def call(self, op: Awaitable[T], what: str, within: float | None = None) -> T:
        """A Redis operation of this worker, bounded by ``within`` seconds (default a claim's
        life: an answer later than that is about claims that may have moved on)."""
        return await redis_call(op, what, (self.client.clock, within or self._ttl))

    def _lease_left(self) -> float:
        return max(self._beat_ok + self._ttl - self.client.clock.monotonic(), 1e-3)

    def _event(self, kind: str, groups: Iterable[str] = (), detail: str = "") -> None:
        event = FleetEvent(kind, self.id, tuple(sorted(groups)), detail)
        log.info("%s", event)
        for observer in self._observers:
            observer.event(event)

    # -- membership -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        for name, lua in scripts.BY_NAME.items():
            self._scripts[name] = self.redis.register_script(lua)
        try:
            await self._join()
            await self._beat()
        except BaseException:
            await self._close_redis()
            raise
        self._flushed = self.client.clock.monotonic()
        self._beater = asyncio.get_running_loop().create_task(self._beat_forever())
        return self

    async def _join(self) -> None:
        """A new member token, taking this worker's id over from a dead instance of it (whose
        beats, were it only stalled, then find the token changed and stop)."""
        epoch = await self.call(self.redis.incr(self.key("epoch")), "heartbeat")
        self.member_token = f"{epoch}:{self.id}"
        await self.call(self.redis.set(self.member_key, self.member_token,
                                       px=math.ceil(self._ttl * 1000)), "heartbeat")

    async def _beat(self) -> None:
        """Renew the lease and the claims; learn the members; claim what is wanted and free."""
        sent = self.client.clock.monotonic()
        renewing = dict(self.tokens)
        keys = [self.key(k) for k in ("members", "weights", "info", "unreadable")]
        args = [self.id, repr(self._weight()), repr(self._ttl), self.claim_key(""), self._info(),
                self.member_token]
        for group, token in renewing.items():
            args += [group, token]
        out = await self.call(self.script("beat")(keys=[*keys, self.member_key], args=args),
                              "heartbeat")
        if out == -1:
            raise FleetUnavailable(f"fleet: {self.id}'s lease lapsed and its id was taken")
        self._beat_ok = sent
        # A claim released meanwhile (a rebalance) is gone, not lost.
        lost = {g for g in map(_text, out[0]) if self.tokens.get(g) == renewing[g]}
        unreadable = {_text(g) for g in out[1]}
        self._learn_members({_text(m): float(w) for m, w in zip(out[2::3], out[3::3],
                                                                  strict=True)})
        self.periods = {_text(m): _periods(i) for m, i in zip(out[2::3], out[4::3], strict=True)}
        self.wanted = {g for g in self.groups
                       if g not in unreadable and owner_of(g, self.members) == self.id}
        if lost:
            self._lose(lost)
        await self._claim(sorted(self.wanted - self.held))
        if self.held != self.following or not self.held <= self.wanted or (
                self._follow is not None and self._turn != _turn_of(self.id, self.members)):
            self._changed.set()
        for observer in self._observers:
            observer.beat(self)

    def _learn_members(self, members: dict[str, float]) -> None:
        before, self.members = self.members, members
        if not before:
            self._event("joined", detail=f"members={len(members)}")
        elif members.keys() != before.keys():
            came, went = members.keys() - before.keys(), before.keys() - members.keys()
            self._event("members", detail=f"members={len(members)} joined={','.join(sorted(came))}"
                                          f" left={','.join(sorted(went))}")

    def _lose(self, lost: set[str]) -> None:
        """Claims another worker may hold now: stop polling at once (the consumer may be busy
        for long; the follow is reopened on the rest by the next ``__anext__``)."""
        for group in lost:
            del self.tokens[group]
        if lost & self.following and self._follow is not None:
            self._follow.halt()
        self._event("lost", lost)
        self._changed.set()

    async def _claim(self, take: list[str]) -> None:
        if not take:
            return
        args = [self.id, repr(self._ttl), self.claim_key(""), *take]
        out = await self.call(self.script("claim")(keys=[self.key("epoch")], args=args), "claim")
        got = {_text(g): _text(t) for g, t in zip(out[::2], out[1::2], strict=True)}
        if got:
            self.tokens.update(got)
            self._event("took", got)

    def _info(self) -> str:
        """What ``agupshup fleet status`` shows of this worker."""
        worst = sorted(self.lag.items(), key=lambda kv: -kv[1])[:5]
        return json.dumps({
            "address": self.client.local_address,
            "held": len(self.tokens),
            "following": len(self.following),
            "delivered": self.delivered,
            "quota": [[w.period, w.limit, w.used] for w in self.client.quota()],
            "lag": {g: round(d, 1) for g, d in worst},
            "periods": self.proposals,
        })

    async def _beat_forever(self) -> None:
        period = self._period
        while True:
            await self.client.clock.sleep(period)
            try:
                # A beat still unanswered when the claims expire is a lost lease.
                await self.call(self._beat(), "heartbeat", self._lease_left())
                await self._flush_due()
            except FleetUnavailable as exc:
                # Renewing after the lease ran out would race the worker that took over.
                if self.client.clock.monotonic() + period - self._beat_ok >= self._ttl:
                    self._stop(exc)
                    return
                log.warning("fleet %s: %s; retrying", self.id, exc)
            except Exception as exc:
                # Without heartbeats the claims lapse while this worker still follows.
                failure = FleetUnavailable(f"fleet: heartbeat failed: {type(exc).__name__}")
                failure.__cause__ = exc
                self._stop(failure)
                return

    async def _flush_due(self) -> None:
        """Checkpoints by time: in a quiet fleet no item comes to trigger a save, yet what was
        acknowledged long ago must not be re-yielded (the feed forgets ids after a while)."""
        follow, now = self._follow, self.client.clock.monotonic()
        if follow is None or now - self._flushed < self.interval:
            return
        self._flushed = now
        await follow.flush()

    def _stop(self, failure: FleetUnavailable) -> None:
        self._failure = failure
        if self._follow is not None:
            self._follow.halt()  # no poll after the lease is gone, busy consumer or not
        self._event("stopped", detail=str(failure))
        self._changed.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave: close the follow (saving its cursors), hand the groups back at once.

        With Redis gone, the claims are left to expire within a lease."""
        failure: FleetUnavailable | None = None
        try:
            await self._close_follow(failed=exc is not None)
        except FleetUnavailable as unavailable:
            failure = unavailable
        finally:
            if self._beater is not None:
                self._beater.cancel()
                await asyncio.gather(self._beater, return_exceptions=True)
        try:
            if failure is None and self._failure is None and not isinstance(exc, FleetUnavailable):
                await self._leave()
        except FleetUnavailable as unavailable:
            failure = unavailable
        finally:
            await self._close_redis()
        if failure is not None and exc is None:
            raise failure

    async def _leave(self) -> None:
        await self._release(dict(self.tokens))
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.key("members"), self.id).hdel(self.key("weights"), self.id)
        pipe.hdel(self.key("info"), self.id)
        await self.call(pipe.execute(), "leave")
        self._event("left")

    async def _release(self, claims: dict[str, str]) -> None:
        if not claims:
            return
        args = [self.claim_key("")]
        for group, token in claims.items():
            args += [group, token]
        await self.call(self.script("release")(args=args), "release")
        for group in claims:
            self.tokens.pop(group, None)

    async def _close_redis(self) -> None:
        await close_redis(self.redis, self._owns)

    # -- following --------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        while True:
            # A message the feed refused is already in the follow's cursor: it goes out first.
            message = await self._next() if self._unpublished is None else self._unpublished
            if await self._published(message):
                self._delivered(message)
                return message

    async def _next(self) -> Message:
        while True:
            if self._failure is not None:
                await self._close_follow()
                raise self._failure
            if self._changed.is_set():
                await self._rebalance()
            if self._follow is None:
                await self._changed.wait()
                continue
            try:
                message = await self._next_or_change(self._follow)
            except UnreadableGroups as exc:
                await self._drop(exc.reasons)
                continue
            if message is not None:
                return message

    async def _published(self, message: Message) -> bool:
        """Whether ``message`` may go out: the sink has it (or there is none). Kept for the next
        ``__anext__`` if publishing fails; dropped if fenced off (its group's new owner has it).
        Bounded by the lease: a feed that does not answer must not outlive the claims."""
        if self.sink is None:
            return True
        self._unpublished = message
        group = message.group_name.lower()
        token = self._open_tokens.get(group)
        # A held group's message is fenced by its claim; any other (read from a shared source)
        # by this worker's membership.
        fence = ((self.member_key, self.member_token) if token is None
                 else (self.claim_key(group), token))
        try:
            await self._publish(message, fence)
        except Fenced:
            self._unpublished = None
            self._changed.set()
            return False
        self._unpublished = None
        return True

    async def _publish(self, message: Message, fence: tuple[str, str]) -> None:
        """A group's claim fences its own stream; a message of it that a shared source
        brought is the fleet's (the shared head may already cover it): it goes out while this
        worker is a member, else another worker's shared read has it."""
        assert self.sink is not None
        try:
            await self.call(self.sink.publish(message, fence=fence), "publish",
                            self._lease_left())
        except Fenced:
            member = (self.member_key, self.member_token)
            if fence == member:
                raise
            await self.call(self.sink.publish(message, fence=member), "publish",
                            self._lease_left())

    def _delivered(self, message: Message) -> None:
        self.delivered += 1
        delay = None
        if message.timestamp:
            delay = max(0.0, self.client.clock.time() - message.timestamp / 1000)
            self.lag[message.group_name.lower()] = delay
        for observer in self._observers:
            observer.delivered(message, delay)

    async def _rebalance(self) -> None:
        """Close the follow (cursors saved), give up what is no longer wanted, follow the rest."""
        self._changed.clear()
        await self._close_follow()
        drop = {g: t for g, t in self.tokens.items() if g not in self.wanted}
        if drop:
            await self._release(drop)
            self._event("released", drop)
        self._open_tokens = dict(self.tokens)
        self.following = frozenset(self._open_tokens)
        names = [n for g, n in sorted(self.groups.items()) if g not in self.unreadable]
        if not names:
            return
        checkpoint = Checkpoint(FencedStore(self, self._open_tokens), key=KEY,
                                every=self.every, interval=self.interval)
        self._turn = _turn_of(self.id, self.members)
        peers = FleetPeers(self, self._open_tokens, self._turn)
        self._follow = await self._open(self.client, names, checkpoint, peers)
        self._event("following", self.following,
                    detail=f"turn={self._turn[0] + 1}/{self._turn[1]} of the shared sources")
        if any(self.tokens.get(g) != t for g, t in self._open_tokens.items()):
            # A claim was lost while the follow opened: the beat found nothing to halt.
            self._follow.halt()
            self._changed.set()

    async def _drop(self, reasons: Mapping[str, str]) -> None:
        """Groups the follow found unreadable: recorded in Redis, so no worker of the fleet
        (this one restarted included) claims them again, and their claims freed."""
        for name, why in reasons.items():
            group = name.lower()
            token = self._open_tokens.pop(group, "")
            keys = [self.key("unreadable"), self.claim_key(group)]
            await self.call(self.script("unreadable")(keys=keys, args=[group, token, why]),
                            "unreadable")
            self.tokens.pop(group, None)
            self.following -= {group}
            self.unreadable[group] = why
            self._event("unreadable", [group], detail=f"why={why!r}")

    async def _next_or_change(self, follow: Follow) -> Message | None:
        """The follow's next message, or None when the assignment changed first."""
        nxt = asyncio.ensure_future(follow.__anext__())
        change = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait((nxt, change), return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            if not nxt.done():
                # Cancelled while waiting for an item: the follow's cursor did not move.
                nxt.cancel()
            await asyncio.gather(nxt, change, return_exceptions=True)
        if nxt.cancelled():
            return None
        # A delivered message is already in the follow's cursor: it must go out.
        return nxt.result()

    async def _close_follow(self, *, failed: bool = False) -> None:
        """Close the follow, saving its cursors. The last message counts as processed unless
        an exception is on its way out, or the feed never took it (then it is read again, by
        whoever follows its group next, rather than lost)."""
        follow, self._follow = self._follow, None
        self.following = frozenset()
        if follow is not None:
            await follow.aclose(ack=not failed and self._unpublished is None)

    def __repr__(self) -> str:
        return f"<FleetWorker {self.id} holds={len(self.tokens)} members={len(self.members)}>"


def _periods(info: Any) -> dict[str, float]:
    try:
        periods = json.loads(_text(info)).get("periods", {})
        return {str(k): float(v) for k, v in periods.items()}
    except (ValueError, AttributeError, TypeError):
        return {}  # a member of an older version: it proposes nothing


def _turn_of(me: str, members: Mapping[str, float]) -> tuple[int, int]:
    """This worker's place among the live members (by id), and how many they are."""
    ids = sorted({*members, me})
    return ids.index(me), len(ids)


class FleetPeers:
    """The other workers, as the follow engine sees them (:class:`~agupshup.aggregate.
    Peers`): they poll the shared sources in turn, each group's own stream is read by the
    worker holding its claim, and the shared sources' heads live in Redis, moved forward
    only by a live member."""

    def __init__(self, worker: FleetWorker, tokens: Mapping[str, str],
                 turn: tuple[int, int]) -> None:
        self._w = worker
        self._tokens = tokens
        self._turn = turn

    def turn(self) -> tuple[int, int]:
        return self._turn

    def owns(self, group: str) -> bool:
        return group.lower() in self._tokens

    def period(self, source: str, mine: float) -> float:
        w = self._w
        w.proposals[source] = mine
        theirs = [p[source] for m, p in w.periods.items() if m != w.id and source in p]
        return max([mine, *theirs])

    async def heads(self, sources: Sequence[str]) -> dict[str, int]:
        w = self._w
        values = await w.call(w.redis.mget([w.head_key(s) for s in sources]), "read heads")
        return {s: int(v) for s, v in zip(sources, values, strict=True) if v is not None}

    async def begin(self, heads: Mapping[str, int]) -> dict[str, int]:
        w = self._w
        keys = [w.member_key, *(w.head_key(s) for s in heads)]
        out = await w.call(w.script("begin")(keys=keys, args=[w.member_token, *heads.values()]),
                           "start heads")
        if out == -1:
            raise FleetUnavailable(f"fleet: {w.id} is no member any more")
        return {s: int(v) for s, v in zip(heads, out, strict=True)}

    async def advance(self, heads: Mapping[str, int]) -> bool:
        w = self._w
        keys = [w.member_key, *(w.head_key(s) for s in heads)]
        out = await w.call(w.script("advance")(keys=keys, args=[w.member_token, *heads.values()]),
                           "move heads")
        return bool(out != -1)
