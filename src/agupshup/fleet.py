"""The fleet: workers on many egress addresses share one followed set through Redis.

``async with FleetWorker(client, redis_url, groups) as worker: async for m in worker: ...``

Rules this module enforces:

* A worker is one :class:`~agupshup.Client` (its own ``local_address``, hence its own throttle
  budget: the server counts per IP) and one :class:`FleetWorker`. It registers in Redis for 3/4
  of ``lease`` and renews every quarter; a member whose registration lapsed is dropped.
* A group has at most one owner at a time: the claim ``{prefix}:claim:{group}`` holds the
  owner's id with the same TTL, renewed with the membership. Which groups a worker
  *wants* is rendezvous hashing over the live members, weighted by each one's remaining quota
  (quantised, so spending quota does not reshuffle groups at every beat). A wanted group is
  taken only once its claim is free; a group no longer wanted is given up only after its stream
  is closed (which saves its cursor). So a dead worker's groups move within one lease period.
* Cursors live in Redis, one key per group, through ``client.merged_stream(checkpoint=...)``;
  each save is fenced by the claim (one Lua script), so a worker that lost a group can never
  overwrite the new owner's progress. After a crash the new owner re-yields at most the
  un-checkpointed window (``every`` items) of each group it takes over; nothing is lost.
* A worker that cannot reach Redis long enough to lose its lease stops following and raises
  :class:`FleetUnavailable`; it never polls a group it may no longer own. A Redis that does not
  answer is one it cannot reach: every call of the worker is bounded (a heartbeat by the time
  left before the claims expire). (Throttle ledgers in
  Redis refuse calls with ``LedgerError`` rather than over-admit.)
* Each worker yields its own messages; :class:`RedisStreamSink` gives consumers one exactly-once
  feed: a Lua script appends a message to a Redis Stream only if its id is new (``SET NX`` with a
  TTL, then ``XADD``, atomically).
* Lease expiry is Redis ``TIME`` (one clock for every host); waits use the client's clock.
  Scripts name keys built from ``prefix``: one Redis, or a ``{hash tag}`` prefix on a Cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import msgspec

from agupshup.aggregate import Follower
from agupshup.checkpoint import Checkpoint, Cursor, MergedCursor
from agupshup.client import Client
from agupshup.clock import Clock
from agupshup.errors import GupshupError
from agupshup.models import Message, QuotaWindow

__all__ = [
    "FencedStore",
    "FleetUnavailable",
    "FleetWorker",
    "RedisStreamSink",
    "owner_of",
    "quota_weight",
]

log = logging.getLogger("agupshup.fleet")
T = TypeVar("T")


class FleetUnavailable(GupshupError):
    """Redis could not be reached (``__cause__`` is its error), or this worker's lease lapsed:
    the worker stopped following, so no group is polled by two workers."""


# KEYS: members (zset id -> lease expiry), weights (hash id -> weight).
# ARGV: me, weight, lease seconds, claim key prefix, then the groups this worker holds.
# Returns {lost groups, id1, weight1, id2, weight2, ...} over the live members.
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], string.format('%.6f', now + lease), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local lost = {}
for i = 5, #ARGV do
  local key = ARGV[4] .. ARGV[i]
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, math.floor(lease * 1000))
  else
    lost[#lost + 1] = ARGV[i]
  end
end
local out = {lost}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or '1'
end
return out
"""

# ARGV: me, lease seconds, claim key prefix, groups. Returns the groups claimed now.
_CLAIM = """
local got = {}
for i = 4, #ARGV do
  if redis.call('SET', ARGV[3] .. ARGV[i], ARGV[1], 'NX', 'PX',
                math.floor(tonumber(ARGV[2]) * 1000)) then
    got[#got + 1] = ARGV[i]
  end
end
return got
"""

# ARGV: me, claim key prefix, groups. Deletes the claims still ours.
_RELEASE = """
for i = 3, #ARGV do
  if redis.call('GET', ARGV[2] .. ARGV[i]) == ARGV[1] then redis.call('DEL', ARGV[2] .. ARGV[i]) end
end
return 1
"""

# ARGV: me, claim key prefix, cursor key prefix, then (group, cursor) pairs. Saves the cursors
# of the groups still claimed by me: a worker that lost a group cannot set its new owner back.
_SAVE = """
for i = 4, #ARGV, 2 do
  if redis.call('GET', ARGV[2] .. ARGV[i]) == ARGV[1] then
    redis.call('SET', ARGV[3] .. ARGV[i], ARGV[i + 1])
  end
end
return 1
"""

# KEYS: the id's dedupe key, the stream. ARGV: dedupe TTL (s), MAXLEN (0: none), fields...
_XADD_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return false end
if ARGV[2] == '0' then return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3)) end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
"""


def _connect(redis: Any) -> tuple[Any, bool]:
    """A ``redis.asyncio`` client for ``redis`` (a URL or a client), and whether it is ours."""
    if isinstance(redis, str):
        from redis.asyncio import Redis

        return Redis.from_url(redis), True
    return redis, False


async def _redis(
    op: Awaitable[T], what: str, within: tuple[Clock, float] | None = None
) -> T:
    """Await a Redis operation; any failure of Redis is :class:`FleetUnavailable`, and so is
    no answer ``within`` (clock, seconds): redis-py waits forever on a blackholed socket."""
    from redis.exceptions import RedisError

    try:
        return await (op if within is None else _bounded(op, *within))
    except TimeoutError:
        raise FleetUnavailable(f"fleet: Redis did not answer during {what}") from None
    except (RedisError, OSError) as exc:
        raise FleetUnavailable(f"fleet: Redis failed during {what}: {type(exc).__name__}") from exc


async def _bounded(op: Awaitable[T], clock: Clock, seconds: float) -> T:
    """``op``'s result, or TimeoutError (``op`` cancelled) once ``seconds`` pass on ``clock``."""
    task = asyncio.ensure_future(op)
    timer = asyncio.ensure_future(clock.sleep(max(0.0, seconds)))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, timer, return_exceptions=True)
    if task.cancelled():
        raise TimeoutError(f"no answer within {seconds:.1f}s")
    return task.result()


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


# -- the worker -------------------------------------------------------------------------------


class FencedStore:
    """The :class:`~agupshup.checkpoint.CheckpointStore` under a worker's merged stream: one
    Redis key per group, loaded for the groups followed, saved only for those still claimed."""

    def __init__(self, worker: FleetWorker) -> None:
        self._w = worker

    async def load(self, key: str) -> str | None:
        w = self._w
        groups = sorted(w.following)
        values = await w.call(w.redis.mget([w.cursor_key(g) for g in groups]), "load")
        streams = {g: Cursor.from_json(v) for g, v in zip(groups, values, strict=True) if v}
        return MergedCursor(streams=streams).to_json()

    async def save(self, key: str, value: str) -> None:
        w = self._w
        args: list[str] = [w.id, w.claim_key(""), w.cursor_key("")]
        for group, cursor in MergedCursor.from_json(value).streams.items():
            args += [group, cursor.to_json()]
        await w.call(w.script("save")(args=args), "save")

    async def delete(self, key: str) -> None:
        return None  # cursors outlive a worker: another takes its groups over


class FleetWorker:
    """One member of the fleet, following its share of ``groups`` with ``client``.

    ``redis``: a URL or a ``redis.asyncio`` client. ``lease``: seconds a silent worker keeps its
    groups (they move to the others within one lease after it dies). ``every``: the checkpoint
    interval in items, i.e. the most a takeover re-yields per group. ``sink``: publish every
    message to a :class:`RedisStreamSink` before yielding it (one it refused is retried first by
    the next ``__anext__``, never skipped). ``weight``: a worker's share
    (default :func:`quota_weight` of the client's quota).
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
        sink: RedisStreamSink | None = None,
        weight: Callable[[], float] | None = None,
    ) -> None:
        if not lease > 0 or every < 1:
            raise ValueError("need lease > 0 and every >= 1")
        self.client = client
        self.redis, self._owns = _connect(redis)
        self.groups = {g.strip().lower(): g.strip() for g in groups}
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{client.local_address or '-'}"
        self.lease = lease
        # Claims live 3/4 of a lease and are renewed every quarter: a dead worker's groups are
        # free within 3/4 lease and taken at the survivors' next beat, so within one lease.
        self._ttl = lease * 0.75
        self._period = lease / 4
        self.prefix = prefix
        self.every = every
        self.sink = sink
        self._weight = weight or (lambda: quota_weight(client.quota()))
        self._scripts: dict[str, Any] = {}
        #: Groups claimed by this worker; those its stream follows; those it wants.
        self.held: set[str] = set()
        self.following: frozenset[str] = frozenset()
        self.wanted: set[str] = set()
        self.members: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._failure: FleetUnavailable | None = None
        self._beat_ok = 0.0
        self._beater: asyncio.Task[None] | None = None
        self._stream: Follower | None = None
        #: A message the stream delivered that the sink refused: retried before the next.
        self._unpublished: Message | None = None
        self._store = FencedStore(self)

    def claim_key(self, group: str) -> str:
        return f"{self.prefix}:claim:{group}"

    def cursor_key(self, group: str) -> str:
        return f"{self.prefix}:cursor:{group}"

    def script(self, name: str) -> Any:
        return self._scripts[name]

    async def call(self, op: Awaitable[T], what: str, within: float | None = None) -> T:
        """A Redis operation of this worker, bounded by ``within`` seconds (default a claim's
        life: an answer later than that is about claims that may have moved on)."""
        return await _redis(op, what, (self.client.clock, within or self._ttl))

    # -- membership -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        for name, lua in (("beat", _BEAT), ("claim", _CLAIM), ("release", _RELEASE),
                          ("save", _SAVE)):
            self._scripts[name] = self.redis.register_script(lua)
        try:
            await self._beat()
        except BaseException:
            await self._close_redis()
            raise
        self._beater = asyncio.get_running_loop().create_task(self._beat_forever())
        return self

    async def _beat(self) -> None:
        """Renew the lease and the claims; learn the members; claim what is wanted and free."""
        sent = self.client.clock.monotonic()
        keys = [f"{self.prefix}:members", f"{self.prefix}:weights"]
        args = [self.id, repr(self._weight()), repr(self._ttl), self.claim_key(""), *self.held]
        out = await self.call(self.script("beat")(keys=keys, args=args), "heartbeat")
        self._beat_ok = sent
        lost = {_text(g) for g in out[0]}
        self.members = {_text(m): float(w) for m, w in zip(out[1::2], out[2::2], strict=True)}
        self.wanted = {g for g in self.groups if owner_of(g, self.members) == self.id}
        if lost:
            log.warning("fleet %s: lost %d groups' claims", self.id, len(lost))
            self.held -= lost
        take = sorted(self.wanted - self.held)
        if take:
            args = [self.id, repr(self._ttl), self.claim_key(""), *take]
            got = await self.call(self.script("claim")(args=args), "claim")
            self.held |= {_text(g) for g in got}
        if self.held != self.following or not self.held <= self.wanted:
            self._changed.set()

    async def _beat_forever(self) -> None:
        period = self._period
        while True:
            await self.client.clock.sleep(period)
            try:
                # A beat still unanswered when the claims expire is a lost lease.
                left = self._beat_ok + self._ttl - self.client.clock.monotonic()
                await self.call(self._beat(), "heartbeat", max(left, 1e-3))
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

    def _stop(self, failure: FleetUnavailable) -> None:
        self._failure = failure
        self._changed.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave: close the stream (saving its cursors), hand the groups back at once.

        Must run in the task that iterated the worker (the stream's task group lives there).
        With Redis gone, the claims are left to expire within a lease."""
        failure: FleetUnavailable | None = None
        try:
            await self._close_stream(exc_type, exc, tb)
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
        release = self.script("release")(args=[self.id, self.claim_key(""), *self.held])
        await self.call(release, "release")
        self.held.clear()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(f"{self.prefix}:members", self.id).hdel(f"{self.prefix}:weights", self.id)
        await self.call(pipe.execute(), "leave")

    async def _close_redis(self) -> None:
        if self._owns:
            await self.redis.aclose()

    # -- following --------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        if self._unpublished is not None:
            # Already in the stream's cursor, so never yielded again: it goes out first.
            return await self._publish(self._unpublished)
        while True:
            if self._failure is not None:
                await self._close_stream()
                raise self._failure
            if self._changed.is_set():
                await self._rebalance()
            if self._stream is None:
                await self._changed.wait()
                continue
            message = await self._next_or_change(self._stream)
            if message is not None:
                return await self._publish(message)

    async def _publish(self, message: Message) -> Message:
        """``message`` once the sink has it; kept for the next ``__anext__`` if publishing
        fails (the stream already counts it as delivered)."""
        if self.sink is not None:
            self._unpublished = message
            await self.sink.publish(message)
            self._unpublished = None
        return message

    async def _rebalance(self) -> None:
        """Close the stream (cursors saved), give up what is no longer wanted, follow the rest."""
        self._changed.clear()
        await self._close_stream()
        drop = sorted(self.held - self.wanted)
        if drop:
            await self.call(self.script("release")(args=[self.id, self.claim_key(""), *drop]),
                            "release")
            self.held -= set(drop)
        self.following = frozenset(self.held)
        if not self.following:
            return
        log.info("fleet %s: following %d groups", self.id, len(self.following))
        checkpoint = Checkpoint(self._store, key="fleet", every=self.every)
        names = [self.groups[g] for g in sorted(self.following)]
        stream = self.client.merged_stream(names, follow=True, checkpoint=checkpoint)
        self._stream = await stream.__aenter__()

    async def _next_or_change(self, stream: Follower) -> Message | None:
        """The stream's next message, or None when the assignment changed first."""
        nxt = asyncio.ensure_future(stream.__anext__())
        change = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait((nxt, change), return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            if not nxt.done():
                # Cancelled while waiting for an item: the stream's cursor did not move.
                nxt.cancel()
            await asyncio.gather(nxt, change, return_exceptions=True)
        if nxt.cancelled():
            return None
        # A delivered message is already in the stream's cursor: it must go out.
        return nxt.result()

    async def _close_stream(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Close the stream, saving its cursors; the last message counts as processed unless
        an exception is on its way out (``exc``), which is not raised a second time."""
        stream, self._stream = self._stream, None
        self.following = frozenset()
        if stream is None:
            return
        if exc is None and self._unpublished is not None:
            # The stream's last message never reached the feed: left unacknowledged, it is
            # read again (by whoever follows its group next) rather than lost.
            exc = FleetUnavailable("fleet: closed before the feed took the last message")
            exc_type, tb = type(exc), None
        try:
            await stream.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            if raised is not exc:
                raise

    def __repr__(self) -> str:
        return f"<FleetWorker {self.id} holds={len(self.held)} members={len(self.members)}>"


# -- the exactly-once feed --------------------------------------------------------------------


class RedisStreamSink:
    """One feed for every worker: a Redis Stream holding each message once.

    ``publish`` appends a message (fields ``id`` and ``message``, the JSON of the
    :class:`~agupshup.models.Message`) unless its id was published within ``dedupe_ttl`` seconds
    (which must exceed the longest takeover, a lease plus a checkpoint interval; a day by
    default). ``maxlen`` caps the stream approximately (0: uncapped)."""

    def __init__(
        self,
        redis: Any,
        *,
        stream: str = "agupshup:feed",
        dedupe_ttl: int = 86_400,
        maxlen: int = 0,
    ) -> None:
        self.redis, self._owns = _connect(redis)
        self.stream = stream
        self.dedupe_ttl = dedupe_ttl
        self.maxlen = maxlen
        self._script = self.redis.register_script(_XADD_ONCE)
        self._encoder = msgspec.json.Encoder()

    async def publish(self, message: Message) -> bool:
        """Append ``message`` once; False when it was already there."""
        keys = [f"{self.stream}:seen:{message.id}", self.stream]
        args = [self.dedupe_ttl, self.maxlen, "id", message.id,
                "message", self._encoder.encode(message)]
        return bool(await _redis(self._script(keys=keys, args=args), "publish"))

    async def aclose(self) -> None:
        if self._owns:
            await self.redis.aclose()
