"""Admission in one Redis round trip: token revocation, request limits, token budgets and
open streams.

One Lua script, run atomically by Redis and so exact across every edge replica, decides
whether a request gets in: its token is not revoked, its principal is under its request limit
for the current window, (for a stream) a slot is free among its open streams, which it takes,
and (for work that spends tokens) the estimated tokens fit in the current minute's budget,
which it reserves. Custom limits set by an admin live in a Redis hash and override the
defaults the caller passes in; the database is never consulted. What a request holds is given
back in one more round trip when it ends (`settle`); a slot an edge never gave back (it died)
expires after the longest a stream can last.
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from shared.errors import AuthenticationError, RateLimitError
from shared.ids import new_id
from shared.redis_keys import RedisKeys

# KEYS: revoked flag, custom limits hash, request window hash, token budget hash,
#       open streams (sorted set: slot -> expiry ms; '' when the request is not a stream)
# ARGV: now (ms), default request limit, default window (s), default tokens per minute,
#       tokens to reserve, open streams allowed, slot id, slot expiry (ms)
_ADMIT = """
if KEYS[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0, 0, 0, 0} end
local now = tonumber(ARGV[1])
local custom = redis.call('HMGET', KEYS[2], 'requests', 'window_seconds', 'tokens_per_minute')
local limit = tonumber(custom[1]) or tonumber(ARGV[2])
local window = (tonumber(custom[2]) or tonumber(ARGV[3])) * 1000
local budget = tonumber(custom[3]) or tonumber(ARGV[4])
local estimate = tonumber(ARGV[5])

local state = redis.call('HMGET', KEYS[3], 'count', 'reset')
local count, reset = tonumber(state[1]) or 0, tonumber(state[2]) or 0
if now >= reset then count, reset = 0, now + window end
if count >= limit then return {0, limit, 0, reset, 0} end

local streams = KEYS[5]
if streams ~= '' then
  redis.call('ZREMRANGEBYSCORE', streams, '-inf', now)
  local allowed = tonumber(ARGV[6])
  if redis.call('ZCARD', streams) >= allowed then
    return {-3, limit, limit - count, reset, allowed}
  end
end

local reserved = 0
if budget > 0 and estimate > 0 then
  local spent = redis.call('HMGET', KEYS[4], 'used', 'reset')
  local used, minute_end = tonumber(spent[1]) or 0, tonumber(spent[2]) or 0
  if now >= minute_end then used, minute_end = 0, now + 60000 end
  if used + estimate > budget then return {-2, budget, budget - used, minute_end, 0} end
  redis.call('HSET', KEYS[4], 'used', used + estimate, 'reset', minute_end)
  redis.call('PEXPIREAT', KEYS[4], minute_end)
  reserved = estimate
end

redis.call('HSET', KEYS[3], 'count', count + 1, 'reset', reset)
redis.call('PEXPIREAT', KEYS[3], reset)
if streams ~= '' then
  redis.call('ZADD', streams, ARGV[8], ARGV[7])
  redis.call('PEXPIREAT', streams, ARGV[8])
end
return {1, limit, limit - count - 1, reset, reserved}
"""

# KEYS: token budget hash, open streams ('' for none)
# ARGV: now (ms), tokens to add (negative to give back), slot id
_SETTLE = """
if KEYS[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
if tonumber(ARGV[2]) == 0 then return 0 end
local minute_end = tonumber(redis.call('HGET', KEYS[1], 'reset')) or 0
if tonumber(ARGV[1]) >= minute_end then return 0 end
local used = redis.call('HINCRBY', KEYS[1], 'used', ARGV[2])
if used < 0 then redis.call('HSET', KEYS[1], 'used', 0) end
return 1
"""


@dataclass(frozen=True)
class Limits:
    """The defaults for a principal; custom limits in Redis win over them."""

    requests: int
    window_seconds: int
    tokens_per_minute: int = 0  # 0: no token budget


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset_ms: int

    def headers(self, now_ms: int) -> dict[str, str]:
        reset = str(max(0, -(-(self.reset_ms - now_ms) // 1000)))
        values = {"Limit": str(self.limit), "Remaining": str(self.remaining), "Reset": reset}
        headers = {f"RateLimit-{k}": v for k, v in values.items()}
        headers.update({f"X-RateLimit-{k}": v for k, v in values.items()})
        return headers


class Limited(RateLimitError):
    """Refused by a limit; carries the limit's state for the response headers."""

    def __init__(
        self, message: str, decision: Decision, retry_after: float, details: dict[str, int]
    ) -> None:
        super().__init__(message, retry_after=retry_after, details=details)
        self.decision = decision


@dataclass(frozen=True)
class StreamSlot:
    """A stream asks for one of its owner's `allowed` slots, held `ttl_ms` at most."""

    allowed: int
    ttl_ms: int


@dataclass(frozen=True)
class Reservation:
    """What one request holds until it ends: tokens reserved, to settle against what it really
    used, and its stream's slot."""

    budget_key: str
    tokens: int
    streams_key: str = ""
    slot: str = ""


class Admission:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)

    async def admit(
        self,
        *,
        scope: str,
        owner_id: str,
        limits: Limits,
        now_ms: int,
        jti: str | None = None,
        estimate_tokens: int = 0,
        stream: StreamSlot | None = None,
    ) -> tuple[Decision, Reservation | None]:
        """Lets the request in (returning its rate-limit state) or raises why not."""
        budget_key = self.keys.token_budget(scope, owner_id)
        streams_key = self.keys.open_streams(scope, owner_id) if stream else ""
        slot = new_id("slot") if stream else ""
        keys = [
            self.keys.revoked(jti) if jti else "",
            self.keys.limits(scope, owner_id),
            self.keys.rate_window(scope, owner_id),
            budget_key,
            streams_key,
        ]
        args = [now_ms, limits.requests, limits.window_seconds, limits.tokens_per_minute]
        allowed, expiry = (stream.allowed, now_ms + stream.ttl_ms) if stream else (0, 0)
        verdict, limit, remaining, reset, reserved = await self._admit(
            keys, [*args, estimate_tokens, allowed, slot, expiry]
        )
        decision = Decision(int(limit), int(remaining), int(reset))
        retry_after = max(1.0, (decision.reset_ms - now_ms) / 1000)
        if verdict == -1:
            raise AuthenticationError("Token has been revoked")
        if verdict == 0:
            raise Limited("Too many requests", decision, retry_after, {"limit": decision.limit})
        if verdict == -2:
            raise Limited(
                "Token budget for this minute is spent",
                decision,
                retry_after,
                {"tokens_per_minute": decision.limit, "tokens_left": decision.remaining},
            )
        if verdict == -3:
            # Nobody knows when a stream ends: retry soon.
            raise Limited(
                "Too many open streams; wait for one to end",
                decision,
                1.0,
                {"open_streams": int(reserved)},
            )
        if not reserved and not slot:
            return decision, None
        return decision, Reservation(budget_key, int(reserved), streams_key, slot)

    async def settle(self, reservation: Reservation, used_tokens: int, now_ms: int) -> None:
        """Replace the reserved estimate by what was really used (0 refunds it all), and give
        the stream's slot back."""
        delta = used_tokens - reservation.tokens if reservation.tokens else 0
        if delta or reservation.slot:
            await self._settle(
                [reservation.budget_key, reservation.streams_key],
                [now_ms, delta, reservation.slot],
            )
