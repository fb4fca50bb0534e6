"""The fleet's Redis scripts: each step that must be atomic across workers is one Lua script.

Rules this module enforces (with :mod:`agupshup.fleet`, which runs them):

* Every script that acts for a worker checks a fencing token first: a claim's
  ``"<epoch>:<worker id>"`` (a group's own stream, its cursor, its publishes) or the worker's
  member token (what it does for the whole fleet: shared heads, messages of groups it does not
  hold). The epoch comes from one counter that only grows, so a token lost and taken back is
  a new token.
* Expiry is Redis ``TIME``: one clock for every host.
* Key names are built from a prefix and keys not passed in ``KEYS`` are touched: one Redis (a
  replica or Sentinel for failover), not Redis Cluster.
"""

from __future__ import annotations

__all__ = ["ADVANCE", "BEAT", "BEGIN", "BY_NAME", "CLAIM", "DROP_UNREADABLE", "RELEASE", "SAVE"]


# KEYS: members (zset id -> lease expiry), weights (hash id -> weight), info (hash id -> JSON),
# unreadable (hash group -> why), this worker's member key. ARGV: me, weight, lease seconds,
# claim key prefix, info JSON, member token, then (group, token) pairs of the claims it holds.
# Returns {lost groups, unreadable groups, id1, weight1, info1, id2, ...} over live members,
# or -1 when the member key holds another token (this worker's lease lapsed and its id was
# taken again): it must stop, not take the membership back.
BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[3])
local mine = redis.call('GET', KEYS[5])
if mine and mine ~= ARGV[6] then return -1 end
redis.call('SET', KEYS[5], ARGV[6], 'PX', math.floor(lease * 1000))
redis.call('ZADD', KEYS[1], string.format('%.6f', now + lease), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
local lost = {}
for i = 7, #ARGV, 2 do
  local key = ARGV[4] .. ARGV[i]
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, math.floor(lease * 1000))
  else
    lost[#lost + 1] = ARGV[i]
  end
end
local out = {lost, redis.call('HKEYS', KEYS[4])}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or '1'
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or '{}'
end
return out
"""

# KEYS: the epoch counter. ARGV: me, lease seconds, claim key prefix, groups.
# Returns (group, token) pairs of the groups claimed now. A token is "<epoch>:<me>", the epoch
# drawn from one counter that only grows: a claim lost and taken again has a new token, so
# whatever was opened under the old one is fenced off (A-B-A).
CLAIM = """
local got = {}
for i = 4, #ARGV do
  local key = ARGV[3] .. ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    local token = redis.call('INCR', KEYS[1]) .. ':' .. ARGV[1]
    redis.call('SET', key, token, 'PX', math.floor(tonumber(ARGV[2]) * 1000))
    got[#got + 1] = ARGV[i]
    got[#got + 1] = token
  end
end
return got
"""

# ARGV: claim key prefix, then (group, token) pairs. Deletes the claims still held by token.
RELEASE = """
for i = 2, #ARGV, 2 do
  if redis.call('GET', ARGV[1] .. ARGV[i]) == ARGV[i + 1] then
    redis.call('DEL', ARGV[1] .. ARGV[i])
  end
end
return 1
"""

# ARGV: claim key prefix, cursor key prefix, then (group, token, cursor) triples. Saves the
# cursors whose claim still holds the token they were read under: neither a worker that lost a
# group nor one that lost it and took it back (a new token) can set its owner back.
SAVE = """
for i = 3, #ARGV, 3 do
  if redis.call('GET', ARGV[1] .. ARGV[i]) == ARGV[i + 1] then
    redis.call('SET', ARGV[2] .. ARGV[i], ARGV[i + 2])
  end
end
return 1
"""

# KEYS: unreadable (hash group -> why), the group's claim. ARGV: group, token, why.
# Records the group as unreadable for the whole fleet and frees its claim, if still ours.
DROP_UNREADABLE = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: the member key fencing the move, then one head key per source. ARGV: the member token,
# then the heads. A shared source's head only moves forward, and only for a live member: every
# item of it up to the head was published to the feed by some worker. Returns -1 when fenced.
ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
for i = 2, #KEYS do
  local head = tonumber(redis.call('GET', KEYS[i]))
  if not head or tonumber(ARGV[i]) > head then redis.call('SET', KEYS[i], ARGV[i]) end
end
return 1
"""

# KEYS: the member key, then one head key per source. ARGV: the member token, then the heads.
# Sets each head that does not exist yet (the first worker to start says where the fleet
# starts), for a live member only; returns the heads as they are now, or -1 when fenced.
BEGIN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local out = {}
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i], 'NX')
  out[#out + 1] = redis.call('GET', KEYS[i])
end
return out
"""


#: Each script by the name a worker calls it by.
BY_NAME = {"beat": BEAT, "claim": CLAIM, "release": RELEASE, "save": SAVE,
           "unreadable": DROP_UNREADABLE, "advance": ADVANCE, "begin": BEGIN}
