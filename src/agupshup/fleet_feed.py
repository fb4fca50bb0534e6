"""The fleet's exactly-once feed, and how every fleet call to Redis is bounded.

Rules this module enforces:

* :class:`RedisStreamSink` appends a message to one Redis Stream only if its id is new within
  ``dedupe_ttl`` (``SET NX`` with a TTL, then ``XADD``, in one script), and only while the
  fence it is given still holds its token.
* Every call to Redis (:func:`redis_call`) is bounded by a deadline on a clock: redis-py waits
  forever on a blackholed socket; any failure, or no answer in time, is
  :class:`~agupshup.errors.FleetUnavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec

from agupshup.clock import Clock, SystemClock
from agupshup.clock import within as within_deadline
from agupshup.errors import Fenced, FleetUnavailable
from agupshup.models import Message
from agupshup.stores import close_redis, connect_redis

__all__ = ["RedisStreamSink", "redis_call"]

T = TypeVar("T")

# KEYS: the id's dedupe key, the stream, the claim fencing the publish ('' : none).
# ARGV: dedupe TTL (s), MAXLEN (0: none), the token the claim must hold, fields...
# Returns -1 when fenced off, 0 when already published, else the entry's id.
_XADD_ONCE = """
if KEYS[3] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[3] then return -1 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if ARGV[2] == '0' then return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4)) end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))
"""


async def redis_call(
    op: Awaitable[T], what: str, within: tuple[Clock, float] | None = None
) -> T:
    """Await a Redis operation; any failure of Redis is :class:`FleetUnavailable`, and so is
    no answer ``within`` (clock, seconds): redis-py waits forever on a blackholed socket."""
    from redis.exceptions import RedisError

    try:
        if within is None:
            return await op
        clock, seconds = within
        return await within_deadline(clock, clock.monotonic() + seconds, op)
    except TimeoutError:
        raise FleetUnavailable(f"fleet: Redis did not answer during {what}") from None
    except (RedisError, OSError) as exc:
        raise FleetUnavailable(f"fleet: Redis failed during {what}: {type(exc).__name__}") from exc


_WALL = SystemClock()


class RedisStreamSink:
    """One feed for every worker: a Redis Stream holding each message once.

    ``publish`` appends a message (fields ``id`` and ``message``, the JSON of the
    :class:`~agupshup.models.Message`) unless its id was published within ``dedupe_ttl`` seconds
    (which must exceed the longest takeover, a lease plus a checkpoint interval; a day by
    default). ``maxlen`` caps the stream approximately (0: uncapped). ``timeout``: the longest a
    publish waits for Redis (redis-py has no socket timeout by default)."""

    def __init__(
        self,
        redis: Any,
        *,
        stream: str = "agupshup:feed",
        dedupe_ttl: int = 86_400,
        maxlen: int = 0,
        timeout: float = 10.0,
    ) -> None:
        self.redis, self._owns = connect_redis(redis)
        self.stream = stream
        self.dedupe_ttl = dedupe_ttl
        self.maxlen = maxlen
        self.timeout = timeout
        self._script = self.redis.register_script(_XADD_ONCE)
        self._encoder = msgspec.json.Encoder()

    async def publish(self, message: Message, *, fence: tuple[str, str] | None = None) -> bool:
        """Append ``message`` once; False when it was already there. ``fence``: (claim key,
        token): publish only while that claim holds that token, else :class:`Fenced`."""
        claim, token = fence or ("", "")
        keys = [f"{self.stream}:seen:{message.id}", self.stream, claim]
        args = [self.dedupe_ttl, self.maxlen, token, "id", message.id,
                "message", self._encoder.encode(message)]
        out = await redis_call(self._script(keys=keys, args=args), "publish", (_WALL, self.timeout))
        if out == -1:
            raise Fenced(f"fleet: {message.group_name} is no longer held by {token}")
        return bool(out)

    async def aclose(self) -> None:
        await close_redis(self.redis, self._owns)
