"""Admission in one Redis round trip: token revocation, request limits and token budgets.

One Lua script, run atomically by Redis and so exact across every edge replica, decides
whether a request gets in: its token is not revoked, its principal is under its request limit
for the current window, and (for work that spends tokens) the estimated tokens fit in the
current minute's budget, which it reserves. Custom limits set by an admin live in a Redis hash
and override the defaults the caller passes in; the database is never consulted.
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from shared.errors import AuthenticationError, RateLimitError
from shared.redis_keys import RedisKeys

# KEYS: revoked flag, custom limits hash, request window hash, token budget hash
# ARGV: now (ms), default request limit, default window (s), default tokens per minute,
#       tokens to reserve
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
return {1, limit, limit - count - 1, reset, reserved}
"""

# KEYS: token budget hash; ARGV: now (ms), tokens to add (negative to give back)
_SETTLE = """
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
class Reservation:
    """Tokens reserved for one request, to settle against what it really used."""

    budget_key: str
    tokens: int


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
    ) -> tuple[Decision, Reservation | None]:
        """Lets the request in (returning its rate-limit state) or raises why not."""
        budget_key = self.keys.token_budget(scope, owner_id)
        keys = [
            self.keys.revoked(jti) if jti else "",
            self.keys.limits(scope, owner_id),
            self.keys.rate_window(scope, owner_id),
            budget_key,
        ]
        args = [now_ms, limits.requests, limits.window_seconds, limits.tokens_per_minute]
        verdict, limit, remaining, reset, reserved = await self._admit(
            keys, [*args, estimate_tokens]
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
        reservation = Reservation(budget_key, int(reserved)) if reserved else None
        return decision, reservation

    async def settle(self, reservation: Reservation, used_tokens: int, now_ms: int) -> None:
        """Replace the reserved estimate by what was really used (0 refunds it all)."""
        delta = used_tokens - reservation.tokens
        if delta:
            await self._settle([reservation.budget_key], [now_ms, delta])
