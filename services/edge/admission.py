"""Admission in one Redis round trip: token revocation, request limits, token budgets and
open streams.

One Lua script, run atomically by Redis and so exact across every edge replica, decides
whether a request gets in: its token is not revoked, and each of its principals (its user and,
for a gateway API key, the key; all or none of them count the request) is under its request
limit for the current window, (for a stream) a slot is free among its open streams, which it takes,
and (for work that spends tokens) the estimated tokens fit in the current minute's budget,
which it reserves. Custom limits set by an admin live in a Redis hash and override the
defaults the caller passes in; the database is never consulted. What a request holds is given
back in one more round trip when it ends (`settle`); a slot an edge never gave back (it died)
expires after the longest a stream can last.
"""

from dataclasses import dataclass
from typing import NoReturn

from redis.asyncio import Redis

from shared.errors import AuthenticationError, RateLimitError
from shared.ids import new_id
from shared.redis_keys import RedisKeys

# Every scope of a request (its user, and its gateway API key) is decided in one run: each is
# checked first, and only when all admit is anything counted, so a refusal by one scope leaves
# every other scope's counters as they were.
# KEYS: revoked flag ('' for none), then per scope: custom limits hash, request window hash,
#       token budget hash, open streams (sorted set: slot -> expiry ms; '' when not a stream)
# ARGV: now (ms), number of scopes, then per scope: default request limit, default window (s),
#       default tokens per minute, tokens to reserve, open streams allowed, slot id,
#       slot expiry (ms)
# Returns {1, 0, then per scope: limit, remaining, reset, reserved}, or when refused
#         {verdict, scope number, limit, remaining, reset, open streams allowed}.
_ADMIT = """
if KEYS[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0, 0, 0, 0, 0} end
local now = tonumber(ARGV[1])
local plans = {}
for i = 1, tonumber(ARGV[2]) do
  local k, a = 1 + (i - 1) * 4, 2 + (i - 1) * 7
  local custom = redis.call('HMGET', KEYS[k + 1], 'requests', 'window_seconds',
                            'tokens_per_minute')
  local limit = tonumber(custom[1]) or tonumber(ARGV[a + 1])
  local window = (tonumber(custom[2]) or tonumber(ARGV[a + 2])) * 1000
  local budget = tonumber(custom[3]) or tonumber(ARGV[a + 3])
  local estimate = tonumber(ARGV[a + 4])

  local state = redis.call('HMGET', KEYS[k + 2], 'count', 'reset')
  local count, reset = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  if now >= reset then count, reset = 0, now + window end
  if count >= limit then return {0, i, limit, 0, reset, 0} end

  local streams = KEYS[k + 4]
  if streams ~= '' then
    redis.call('ZREMRANGEBYSCORE', streams, '-inf', now)
    local allowed = tonumber(ARGV[a + 5])
    if redis.call('ZCARD', streams) >= allowed then
      return {-3, i, limit, limit - count, reset, allowed}
    end
  end

  local used, minute_end, reserved = 0, 0, 0
  if budget > 0 and estimate > 0 then
    local spent = redis.call('HMGET', KEYS[k + 3], 'used', 'reset')
    used, minute_end = tonumber(spent[1]) or 0, tonumber(spent[2]) or 0
    if now >= minute_end then used, minute_end = 0, now + 60000 end
    if used + estimate > budget then return {-2, i, budget, budget - used, minute_end, 0} end
    reserved = estimate
  end
  plans[i] = {k = k, a = a, limit = limit, count = count, reset = reset, used = used,
              minute_end = minute_end, reserved = reserved}
end

local result = {1, 0}
for i, p in ipairs(plans) do
  if p.reserved > 0 then
    redis.call('HSET', KEYS[p.k + 3], 'used', p.used + p.reserved, 'reset', p.minute_end)
    redis.call('PEXPIREAT', KEYS[p.k + 3], p.minute_end)
  end
  redis.call('HSET', KEYS[p.k + 2], 'count', p.count + 1, 'reset', p.reset)
  redis.call('PEXPIREAT', KEYS[p.k + 2], p.reset)
  if KEYS[p.k + 4] ~= '' then
    redis.call('ZADD', KEYS[p.k + 4], ARGV[p.a + 7], ARGV[p.a + 6])
    redis.call('PEXPIREAT', KEYS[p.k + 4], ARGV[p.a + 7])
  end
  for _, v in ipairs({p.limit, p.limit - p.count - 1, p.reset, p.reserved}) do
    result[#result + 1] = v
  end
end
return result
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


@dataclass(frozen=True)
class Scope:
    """One principal a request is counted against: `scope` is "user", "key" or "client"."""

    scope: str
    owner_id: str
    limits: Limits
    estimate_tokens: int = 0
    stream: StreamSlot | None = None


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
        """Lets the request in for one principal (returning its rate-limit state) or raises
        why not."""
        (admitted,) = await self.admit_all(
            [Scope(scope, owner_id, limits, estimate_tokens, stream)], now_ms=now_ms, jti=jti
        )
        return admitted

    async def admit_all(
        self, scopes: list[Scope], *, now_ms: int, jti: str | None = None
    ) -> list[tuple[Decision, Reservation | None]]:
        """Lets the request in for every scope at once (returning each one's rate-limit state
        and holdings, in order) or raises why not, having counted it for none."""
        keys: list[str] = [self.keys.revoked(jti) if jti else ""]
        args: list[str | int] = [now_ms, len(scopes)]
        held: list[tuple[str, str, str]] = []
        for s in scopes:
            budget_key = self.keys.token_budget(s.scope, s.owner_id)
            streams_key = self.keys.open_streams(s.scope, s.owner_id) if s.stream else ""
            slot = new_id("slot") if s.stream else ""
            keys += [
                self.keys.limits(s.scope, s.owner_id),
                self.keys.rate_window(s.scope, s.owner_id),
                budget_key,
                streams_key,
            ]
            allowed, expiry = (s.stream.allowed, now_ms + s.stream.ttl_ms) if s.stream else (0, 0)
            limits = s.limits
            args += [limits.requests, limits.window_seconds, limits.tokens_per_minute]
            args += [s.estimate_tokens, allowed, slot, expiry]
            held.append((budget_key, streams_key, slot))
        verdict, *rest = [int(v) for v in await self._admit(keys, args)]
        if verdict != 1:
            _refuse(verdict, *rest, now_ms=now_ms)
        admitted = []
        for i, (budget_key, streams_key, slot) in enumerate(held):
            limit, remaining, reset, reserved = rest[1 + 4 * i : 5 + 4 * i]
            decision = Decision(limit, remaining, reset)
            reservation = (
                Reservation(budget_key, reserved, streams_key, slot) if reserved or slot else None
            )
            admitted.append((decision, reservation))
        return admitted

    async def settle(self, reservation: Reservation, used_tokens: int, now_ms: int) -> None:
        """Replace the reserved estimate by what was really used (0 refunds it all), and give
        the stream's slot back."""
        delta = used_tokens - reservation.tokens if reservation.tokens else 0
        if delta or reservation.slot:
            await self._settle(
                [reservation.budget_key, reservation.streams_key],
                [now_ms, delta, reservation.slot],
            )


def _refuse(
    verdict: int, _scope: int, limit: int, remaining: int, reset: int, streams: int, *, now_ms: int
) -> NoReturn:
    decision = Decision(limit, remaining, reset)
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
    # -3: nobody knows when a stream ends, so retry soon.
    raise Limited(
        "Too many open streams; wait for one to end", decision, 1.0, {"open_streams": streams}
    )
