"""A ledger in Redis, shared by processes on any number of hosts behind one egress.

Rules this module enforces (beyond those of ``_ledger``):

* Time is Redis's own ``TIME``, read inside each script, so hosts with skewed clocks agree.
* Every read-modify-write is one Lua script, which Redis runs atomically.
* ``{key}:calls`` is a sorted set of call ids scored by ``until`` (lease expiry while in
  flight, completion after); ``{key}:live`` a hash of the ids still in flight → admission time;
  ``{key}:ph:{period}`` the phantom entries of one window scored by when they were learnt;
  ``{key}:holds`` a hash of period → hold end. As in SQLite, an entry's release in window ``w``
  is ``min(until, now) + length_w``, and entries are deleted a lease after no window counts
  them. Give ``key`` a ``{hash tag}`` to use Redis Cluster.
* Scores are written with microsecond precision (``%.6f``); Lua's default formatting would
  round epoch seconds to 0.1 ms. A refusal's wait is rounded up, never to 0: the scheduler
  would ask again at once, and spin until the clock moved.
* ``{key}:epoch`` is written when the ledger is created: its ``id``, and the clock guard. A
  process that has seen one id and then finds none, or another, knows the ledger was wiped
  (a restart without persistence, a ``FLUSHALL``): the calls it forgot may still count, so
  everyone is held for the longest window, and the process logs a warning once per wipe.
  Tickets of a new ledger start at its creation time in milliseconds, so none collides with a
  ticket handed out before the wipe.
* The clock guard: ``TIME`` is Redis's wall clock, which can be stepped. The ledger's time is
  ``TIME + off``, never below the highest time it has given out (a backward step stalls
  nobody), and never above what this process saw at its previous script plus the seconds its
  own monotonic clock counted since, plus a second of latency (a forward step admits nothing
  early). Both corrections only ever hold calls longer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from agupshup.clock import Clock
from agupshup.stores import close_redis, connect_redis

from ._lease import SharedLedger
from ._ledger import Admission, View, implied_counts
from ._windows import Window

__all__ = ["RedisLedger"]

logger = logging.getLogger("agupshup.throttle")

#: Seconds a script may take to reach Redis beyond what this process's clock counted.
_LATENCY = 1.0
_HEAD = 3

# KEYS: calls, live, seq, holds, one phantom set per window, then the epoch.
# ARGV: now ('' for Redis TIME), n, n x (period, length, full limit, lane limit), the epoch id
# this process saw last ('' if none), the time it saw then ('' if none), the most seconds
# that can have passed since, a fresh id in case the ledger is new, then the script's own
# arguments from index `tail`.
# Each script returns {epoch id, wiped (0/1), now, ...}.
_PRELUDE = """
local function fmt(x) return string.format('%.6f', x) end
-- A wait, rounded up: a refusal whose wait rounded down to 0 would be asked again at once.
local function fmt_up(x) return string.format('%.6f', math.ceil(x * 1000000) / 1000000) end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local n = tonumber(ARGV[2])
local W = {}
for i = 1, n do
  local b = 2 + (i - 1) * 4
  W[i] = {period = ARGV[b + 1], length = tonumber(ARGV[b + 2]),
          full = tonumber(ARGV[b + 3]), lane = tonumber(ARGV[b + 4])}
end
local tail = 3 + n * 4
local longest, longest_period = 0, ''
for i = 1, n do
  if W[i].length > longest then longest, longest_period = W[i].length, W[i].period end
end

local E = KEYS[5 + n]
local expected, seen, bound = ARGV[tail], ARGV[tail + 1], ARGV[tail + 2]
tail = tail + 4
local st = redis.call('HMGET', E, 'id', 'off', 'top')
local epoch = st[1]
if not epoch then
  epoch = ARGV[tail - 1]
  redis.call('HSET', E, 'id', epoch)
  redis.call('SET', KEYS[3], string.format('%.0f', math.floor(now * 1000)), 'NX')
end
local wiped = 0
if expected ~= '' and expected ~= epoch then wiped = 1 end
local raw = now
now = raw + tonumber(st[2] or '0')
if seen ~= '' then now = math.min(now, tonumber(seen) + tonumber(bound)) end
if st[3] then now = math.max(now, tonumber(st[3])) end
redis.call('HSET', E, 'off', fmt(now - raw), 'top', fmt(now))
if wiped == 1 then
  local u = now + longest
  if u > tonumber(redis.call('HGET', KEYS[4], longest_period) or '-1') then
    redis.call('HSET', KEYS[4], longest_period, fmt(u))
  end
end
local head = {epoch, wiped, fmt(now)}

-- Entries of window i released after `t` (or that entered since).
local function count(i, t)
  local lo = '(' .. fmt(t - W[i].length)
  return redis.call('ZCOUNT', KEYS[1], lo, '+inf') + redis.call('ZCOUNT', KEYS[4 + i], lo, '+inf')
end

-- Seconds until window i holds fewer than `limit` entries, given its count c.
local function free_in(i, c, limit)
  if c < limit then return 0 end
  local k = c - limit + 1
  local lo = '(' .. fmt(now - W[i].length)
  local s = {}
  for _, key in ipairs({KEYS[1], KEYS[4 + i]}) do
    local r = redis.call('ZRANGEBYSCORE', key, lo, '+inf', 'WITHSCORES', 'LIMIT', 0, k)
    for j = 2, #r, 2 do s[#s + 1] = tonumber(r[j]) end
  end
  table.sort(s)
  return math.min(s[k], now) + W[i].length - now
end
"""

_ADMIT = _PRELUDE + """
local lease = tonumber(ARGV[tail + 1])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now - longest - lease),
                       'LIMIT', 0, 1000)
for _, id in ipairs(old) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[4 + i], '-inf', fmt(now - W[i].length - lease))
end

local held, held_w = 0, -1
local hv = redis.call('HGETALL', KEYS[4])
for j = 1, #hv, 2 do
  local u = tonumber(hv[j + 1])
  if u <= now then
    redis.call('HDEL', KEYS[4], hv[j])
  elseif u - now > held then
    held, held_w = u - now, 0
    for i = 1, n do if W[i].period == hv[j] then held_w = i - 1 end end
  end
end

local wait, win = held, held_w
local counts, frees = {}, {}
for i = 1, n do
  counts[i] = count(i, now)
  local f = free_in(i, counts[i], W[i].lane)
  if f > wait then wait, win = f, i - 1 end
end
local ticket = -1
if ARGV[tail] == 'admit' and win < 0 then
  ticket = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], fmt(now + lease), ticket)
  redis.call('HSET', KEYS[2], ticket, fmt(now))
  for i = 1, n do counts[i] = counts[i] + 1 end
end
for i = 1, n do frees[i] = fmt(free_in(i, counts[i], W[i].full)) end
local out = head
for _, x in ipairs({ticket, fmt_up(wait), win, fmt(held), held_w}) do out[#out + 1] = x end
for i = 1, n do out[#out + 1] = counts[i] end
for i = 1, n do out[#out + 1] = frees[i] end
return out
"""

_RELEASE = _PRELUDE + """
local ticket = ARGV[tail]
local since = tonumber(redis.call('HGET', KEYS[2], ticket) or fmt(now))
if redis.call('HDEL', KEYS[2], ticket) == 1 then
  redis.call('ZADD', KEYS[1], 'XX', fmt(now), ticket)
end
local nl = tonumber(ARGV[tail + 1])
for j = 1, nl do
  local i = tonumber(ARGV[tail + 2 * j]) + 1
  -- Ours the server could have counted: alive at dispatch, or admitted since.
  local missing = tonumber(ARGV[tail + 2 * j + 1]) - count(i, since)
  for _ = 1, missing do
    redis.call('ZADD', KEYS[4 + i], fmt(now), 'p' .. redis.call('INCR', KEYS[3]))
  end
end
local p = tail + 2 + 2 * nl
for j = 1, tonumber(ARGV[p]) do
  local i = tonumber(ARGV[p + j]) + 1
  local u = now + W[i].length
  if u > tonumber(redis.call('HGET', KEYS[4], W[i].period) or '-1') then
    redis.call('HSET', KEYS[4], W[i].period, fmt(u))
  end
end
return head
"""

_RENEW = _PRELUDE + """
local expiry = fmt(now + tonumber(ARGV[tail]))
for j = tail + 1, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[j]) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[j])
  end
end
return head
"""

_CANCEL = _PRELUDE + """
if redis.call('HDEL', KEYS[2], ARGV[tail]) == 1 then redis.call('ZREM', KEYS[1], ARGV[tail]) end
return head
"""


class RedisLedger(SharedLedger):
    """Entries of one egress under ``key`` in Redis (a URL, or a ``redis.asyncio`` client).

    ``server_time=False`` uses ``clock.time()`` instead of Redis ``TIME`` (for tests with a
    fake clock).
    """

    __slots__ = ("_epoch", "_keys", "_owns", "_redis", "_scripts", "_seen", "_server_time")

    def __init__(
        self,
        redis: Any,
        *,
        key: str = "agupshup:throttle",
        lease: float = 30.0,
        server_time: bool = True,
    ) -> None:
        super().__init__(lease)
        self._redis, self._owns = connect_redis(redis)
        self._key = key
        self._server_time = server_time
        self._keys: list[str] = []
        self._scripts: dict[str, Any] = {}
        self._epoch = ""
        # The ledger's time at this process's latest script, and when (monotonic) it was sent.
        self._seen: tuple[str, float] | None = None

    def bind(self, windows: Sequence[Window], clock: Clock) -> None:
        super().bind(windows, clock)
        p = self._key
        self._keys = [f"{p}:calls", f"{p}:live", f"{p}:seq", f"{p}:holds"]
        self._keys += [f"{p}:ph:{w.name}" for w in self._windows]
        self._keys.append(f"{p}:epoch")
        for name, lua in (("admit", _ADMIT), ("release", _RELEASE), ("renew", _RENEW),
                          ("cancel", _CANCEL)):
            self._scripts[name] = self._redis.register_script(lua)

    async def _admit(self, limits: tuple[int, ...]) -> Admission:
        return self._read(await self._eval("admit", ["admit", repr(self._lease)], limits))

    async def _release(
        self, ticket: int, learned: tuple[tuple[int, int], ...], held: tuple[int, ...]
    ) -> None:
        implied = implied_counts(self._windows, learned)
        tail: list[object] = [ticket, len(implied)]
        for i, count in implied:
            tail += [i, count]
        tail += [len(held), *held]
        await self._eval("release", tail)

    async def _cancel(self, ticket: int) -> None:
        await self._eval("cancel", [ticket])

    async def _renew(self, tickets: tuple[int, ...]) -> None:
        await self._eval("renew", [repr(self._lease), *tickets])

    async def usage(self) -> View:
        self._read(await self._eval("admit", ["view", repr(self._lease)]))
        return self.view()

    async def _close(self) -> None:
        await close_redis(self._redis, self._owns)

    async def _eval(
        self, name: str, tail: Sequence[object], limits: Sequence[int] | None = None
    ) -> Any:
        assert self._clock is not None, "bind() first"
        now = "" if self._server_time else f"{self._clock.time():.6f}"
        args: list[object] = [now, len(self._windows)]
        for i, w in enumerate(self._windows):
            args += [w.name, repr(w.length), w.limit, w.limit if limits is None else limits[i]]
        sent = self._clock.monotonic()
        seen, bound = "", ""
        if self._seen is not None:
            seen, bound = self._seen[0], repr(sent - self._seen[1] + _LATENCY)
        args += [self._epoch, seen, bound, uuid.uuid4().hex]
        out = await self._scripts[name](keys=self._keys, args=[*args, *tail])
        if int(out[1]):
            logger.warning(
                "the Redis throttle ledger %r was wiped (restart without persistence, flush): "
                "every caller is held for the longest window, %.0f s", self._key,
                max(w.length for w in self._windows))
        self._epoch = _text(out[0])
        self._seen = (_text(out[2]), sent)
        return out[_HEAD:]

    def _read(self, out: Sequence[Any]) -> Admission:
        """Decode the admit script's answer, and keep it as the latest view."""
        assert self._clock is not None
        n = len(self._windows)
        ticket, wait, window = int(out[0]), float(out[1]), int(out[2])
        counts = [int(c) for c in out[5:5 + n]]
        frees = [float(f) for f in out[5 + n:5 + 2 * n]]
        held = float(out[3])
        self._view = View(self._clock.monotonic(), counts, frees, held, int(out[4]))
        return Admission(None if ticket < 0 else ticket, wait, window, counts)

    def __repr__(self) -> str:
        return f"RedisLedger(key={self._key!r})"


def _text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)
