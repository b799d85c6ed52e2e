"""A circuit breaker per provider, its state in one Redis hash (`breaker(provider)`) so every
worker and every edge replica sees the same breaker. Each transition is one Lua script, so
concurrent callers never race.

    closed ──(≥ BREAKER_MIN_REQUESTS calls in the last BREAKER_WINDOW,
              of which a share ≥ BREAKER_FAILURE_RATE failed)──▶ open
    open ──(BREAKER_COOLDOWN passed; the next `check`)──▶ half_open
    half_open: `check` lets BREAKER_PROBES calls through per probe round (a round lasts
        BREAKER_COOLDOWN; probes that never report are forgotten when it ends)
    half_open ──(a probe reports success)──▶ closed, with an empty window
    half_open ──(a probe reports failure)──▶ open for another cooldown

Callers that are about to call upstream use `check` (or `allow`) and then `record` the outcome:
`ok=False` for an upstream failure (5xx, 529, timeouts, connection errors, broken streams),
`ok=True` when the provider answered (4xx included: the provider is healthy, the request was
not). Rate limiting (429) is neither: a throttled provider is alive, and one user's key hitting
its quota must not open the breaker for everyone; callers simply do not record it.

Readers that must not use up probe slots (the edge, health) use `state` and `retry_after`.

Hash fields: `st` (closed|open|half_open, absent = closed), `until` (ms: end of the cooldown
or of the probe round), `probes` (probes let through this round), and the sliding window as
per-bucket counters `o:<bucket>` (successes) and `f:<bucket>` (failures), buckets being
1/30 of the window (at least 100 ms). The hash expires after 2 × (window + cooldown) of quiet.
Time comes from Redis (`TIME`), so process clocks do not matter.
"""

from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.redis_keys import RedisKeys
from shared.settings import Settings

BreakerState = Literal["closed", "open", "half_open"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: cooldown_ms, probes, ttl_ms -> {allowed 0|1, ms until a call may pass}
_CHECK = (
    _NOW
    + """
local st = redis.call('HGET', KEYS[1], 'st')
if not st or st == 'closed' then return {1, 0} end
local cooldown, probes, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local untl = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if st == 'open' then
  if now < untl then return {0, untl - now} end
  st = 'half_open'
end
local issued = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0')
if st ~= redis.call('HGET', KEYS[1], 'st') or now >= untl then
  issued, untl = 0, now + cooldown
end
if issued >= probes then return {0, untl - now} end
redis.call('HSET', KEYS[1], 'st', st, 'until', untl, 'probes', issued + 1)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, 0}
"""
)

# ARGV: ok 0|1, window_ms, bucket_ms, min_requests, failure_rate, cooldown_ms, ttl_ms,
#       successes tallied before this outcome and not yet recorded (counted while closed)
# -> state
_RECORD = (
    _NOW
    + """
local ok, window, bucket_ms = ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3])
local earlier = tonumber(ARGV[8])
local min_requests, rate = tonumber(ARGV[4]), tonumber(ARGV[5])
local cooldown, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local function trip()
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'st', 'open', 'until', now + cooldown, 'probes', 0)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 'open'
end
local st = redis.call('HGET', KEYS[1], 'st') or 'closed'
if st == 'half_open' then
  if ok then
    redis.call('DEL', KEYS[1])
    return 'closed'
  end
  return trip()
end
-- open: the outcome of a call that started before the breaker opened; it changes nothing
if st == 'open' then return 'open' end
local bucket = math.floor(now / bucket_ms)
local oldest = bucket - math.ceil(window / bucket_ms) + 1
if earlier > 0 then redis.call('HINCRBY', KEYS[1], 'o:' .. bucket, earlier) end
local count = redis.call('HINCRBY', KEYS[1], (ok and 'o:' or 'f:') .. bucket, 1)
-- A success cannot trip the breaker: the window is only pruned, once per bucket.
if ok and count > 1 + earlier then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 'closed'
end
local total, failed = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local kind = string.sub(fields[i], 1, 2)
  if kind == 'o:' or kind == 'f:' then
    if tonumber(string.sub(fields[i], 3)) < oldest then
      redis.call('HDEL', KEYS[1], fields[i])
    else
      local n = tonumber(fields[i + 1])
      total = total + n
      if kind == 'f:' then failed = failed + n end
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
if not ok and total >= min_requests and failed >= rate * total then return trip() end
return 'closed'
"""
)

# -> {state, ms until a call may pass}; read only
_STATE = (
    _NOW
    + """
local st = redis.call('HGET', KEYS[1], 'st') or 'closed'
if st == 'closed' then return {st, 0} end
local untl = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if st == 'open' and now >= untl then return {'half_open', 0} end
if st == 'half_open' then return {st, 0} end
return {st, untl - now}
"""
)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds until a call may be let through again (0 when allowed)


@dataclass(frozen=True)
class BreakerConfig:
    window: float
    min_requests: int
    failure_rate: float
    cooldown: float
    probes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "BreakerConfig":
        return cls(
            window=settings.breaker_window.seconds,
            min_requests=settings.breaker_min_requests,
            failure_rate=settings.breaker_failure_rate,
            cooldown=settings.breaker_cooldown.seconds,
            probes=settings.breaker_probes,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Breaker:
    """`check`/`allow` before an upstream call, `record` after it; `state` to look only."""

    def __init__(self, redis: Redis, keys: RedisKeys, config: BreakerConfig | Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.config = (
            config if isinstance(config, BreakerConfig) else BreakerConfig.from_settings(config)
        )
        window_ms = max(1, int(self.config.window * 1000))
        cooldown_ms = max(1, int(self.config.cooldown * 1000))
        self._window_ms = window_ms
        self._bucket_ms = max(100, window_ms // 30)
        self._cooldown_ms = cooldown_ms
        self._ttl_ms = 2 * (window_ms + cooldown_ms)
        self._check = redis.register_script(_CHECK)
        self._record = redis.register_script(_RECORD)
        self._state = redis.register_script(_STATE)

    async def check(self, provider: str) -> Verdict:
        """May a call go upstream now? In half-open this uses up one probe slot when it says
        yes, so call it only right before calling upstream, and `record` the outcome."""
        args = [self._cooldown_ms, self.config.probes, self._ttl_ms]
        allowed, wait_ms = await self._check(keys=[self.keys.breaker(provider)], args=args)
        return Verdict(allowed=bool(allowed), retry_after=max(0, int(wait_ms)) / 1000)

    async def allow(self, provider: str) -> bool:
        return (await self.check(provider)).allowed

    @property
    def bucket_seconds(self) -> float:
        """The window's resolution: successes tallied for this long are still counted in
        the right part of the window."""
        return self._bucket_ms / 1000

    def _record_args(self, ok: bool, earlier: int) -> list[int | str]:
        return [
            1 if ok else 0,
            self._window_ms,
            self._bucket_ms,
            self.config.min_requests,
            repr(self.config.failure_rate),
            self._cooldown_ms,
            self._ttl_ms,
            earlier,
        ]

    async def record(self, provider: str, ok: bool, earlier: int = 0) -> BreakerState:
        """Adds one upstream call's outcome, after `earlier` successes of calls made while
        the breaker was closed and not recorded yet; returns the state it leaves the breaker
        in."""
        args = self._record_args(ok, earlier)
        state = await self._record(keys=[self.keys.breaker(provider)], args=args)
        return cast(BreakerState, _text(state))

    def closed_in(self, pipe: Pipeline, provider: str) -> None:
        """Queues on `pipe` a look at whether the breaker is closed, for `is_closed` to read
        from the pipeline's replies: a call may then go upstream without `check`, which would
        only say yes."""
        pipe.hget(self.keys.breaker(provider), "st")

    @staticmethod
    def is_closed(reply: bytes | str | None) -> bool:
        return reply is None or _text(reply) == "closed"

    async def status(self, provider: str) -> tuple[BreakerState, float]:
        """(state, seconds left of the cooldown); an open breaker whose cooldown has passed
        reads as half_open. Changes nothing."""
        state, wait_ms = await self._state(keys=[self.keys.breaker(provider)])
        return cast(BreakerState, _text(state)), max(0, int(wait_ms)) / 1000

    async def state(self, provider: str) -> BreakerState:
        return (await self.status(provider))[0]

    async def retry_after(self, provider: str) -> float:
        """Seconds until an open breaker lets a probe through (0 unless open)."""
        return (await self.status(provider))[1]
