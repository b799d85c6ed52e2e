"""The Lua scripts of admission (`admission.py`): admit a request, settle what it held, and
`admit_then`, which admits a request and runs the next step of its work in the same call.

Every scope of a request (its user, and its gateway API key) is decided in one run: each is
checked first, and only when all admit is anything counted, so a refusal by one scope leaves
every other scope's counters as they were.
"""

# KEYS: revoked flag, then per scope (8): custom limits hash, request window hash, token budget
#       hash, open streams (sorted set: slot -> expiry ms; read only for a stream),
#       then the scope's spend hash of each budget period (day, week, month, none)
# ARGV: now (ms), number of scopes, then per scope (11): default request limit, default window
#       (s), default tokens per minute, tokens to reserve, open streams allowed, slot id, slot
#       expiry (ms), worst-case cost to reserve (1e-8 USD; 0: spends nothing, -1: unpriced),
#       then when the day's, week's and month's spend hashes expire (ms); last, '1' when the
#       revoked flag is to be checked
# Every key is in one slot (`shared/redis_keys.py`): a name the request does not use is passed
# as another of the same slot and left alone.
# Returns {1, 0, then per scope: limit, remaining, reset, tokens reserved, budget, spent,
#          reserved spend (this request's included), budget period (1-4; 0: no budget)},
#         or when refused {verdict, scope number, then four figures}: -1 revoked; 0 request
#         limit (limit, remaining, reset, -); -2 token budget (budget, left, minute end, -);
#         -3 open streams (limit, remaining, reset, streams allowed); -4 spend budget (budget,
#         spent, reserved, period); -5 unpriced model under a budget (budget, -, -, period).
ADMIT = """
if ARGV[#ARGV] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0, 0, 0, 0, 0} end
local PERIODS = {day = 1, week = 2, month = 3, none = 4}
local now = tonumber(ARGV[1])
local plans = {}
for i = 1, tonumber(ARGV[2]) do
  local k, a = 1 + (i - 1) * 8, 2 + (i - 1) * 11
  local custom = redis.call('HMGET', KEYS[k + 1], 'requests', 'window_seconds',
                            'tokens_per_minute', 'budget_units', 'budget_period')
  local limit = tonumber(custom[1]) or tonumber(ARGV[a + 1])
  local window = (tonumber(custom[2]) or tonumber(ARGV[a + 2])) * 1000
  local budget = tonumber(custom[3]) or tonumber(ARGV[a + 3])
  local estimate = tonumber(ARGV[a + 4])

  local state = redis.call('HMGET', KEYS[k + 2], 'count', 'reset')
  local count, reset = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  if now >= reset then count, reset = 0, now + window end
  if count >= limit then return {0, i, limit, 0, reset, 0} end

  local streams = KEYS[k + 4]
  if ARGV[a + 6] ~= '' then
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

  local cost, units = tonumber(ARGV[a + 8]), tonumber(custom[4]) or 0
  local period, spent, held = 0, 0, 0
  if units > 0 then
    period = PERIODS[custom[5]] or 4
    if cost < 0 then return {-5, i, units, 0, 0, period} end
    local spend = redis.call('HMGET', KEYS[k + 4 + period], 'spent', 'reserved')
    spent, held = tonumber(spend[1]) or 0, tonumber(spend[2]) or 0
    if cost > 0 and spent + held + cost > units then
      return {-4, i, units, spent, held, period}
    end
  else
    cost = 0
  end
  plans[i] = {k = k, a = a, limit = limit, count = count, reset = reset, used = used,
              minute_end = minute_end, reserved = reserved, cost = cost, units = units,
              period = period, spent = spent, held = held}
end

local result = {1, 0}
for i, p in ipairs(plans) do
  if p.reserved > 0 then
    redis.call('HSET', KEYS[p.k + 3], 'used', p.used + p.reserved, 'reset', p.minute_end)
    redis.call('PEXPIREAT', KEYS[p.k + 3], p.minute_end)
  end
  if p.count == 0 then  -- a new window
    redis.call('HSET', KEYS[p.k + 2], 'count', 1, 'reset', p.reset)
    redis.call('PEXPIREAT', KEYS[p.k + 2], p.reset)
  else
    redis.call('HINCRBY', KEYS[p.k + 2], 'count', 1)
  end
  if ARGV[p.a + 6] ~= '' then
    redis.call('ZADD', KEYS[p.k + 4], ARGV[p.a + 7], ARGV[p.a + 6])
    redis.call('PEXPIREAT', KEYS[p.k + 4], ARGV[p.a + 7])
  end
  if p.cost > 0 then
    redis.call('HINCRBY', KEYS[p.k + 4 + p.period], 'reserved', p.cost)
    if p.period < 4 then
      redis.call('PEXPIREAT', KEYS[p.k + 4 + p.period], ARGV[p.a + 8 + p.period])
    end
  end
  for _, v in ipairs({p.limit, p.limit - p.count - 1, p.reset, p.reserved, p.units, p.spent,
                      p.held + p.cost, p.period}) do
    result[#result + 1] = v
  end
end
return result
"""

# KEYS: token budget hash, open streams, spend hash, the limits hash holding the spend budget
#       (one slot; a name not used is another of the same slot, left alone)
# ARGV: now (ms), tokens to add (negative to give back), slot id ('' for none), then with a
#       spend only: spend reserved, spend used
#       (1e-8 USD), when the spend hash expires (ms; 0: never), number of alert thresholds,
#       then the thresholds (shares of the budget, increasing)
# Returns {} without a spend hash, else {budget, spent, still reserved, then the numbers of
# the thresholds this spend crossed first in its period}: each is reported once.
SETTLE = """
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
if tonumber(ARGV[2]) ~= 0 then
  local minute_end = tonumber(redis.call('HGET', KEYS[1], 'reset')) or 0
  if tonumber(ARGV[1]) < minute_end then
    local used = redis.call('HINCRBY', KEYS[1], 'used', ARGV[2])
    if used < 0 then redis.call('HSET', KEYS[1], 'used', 0) end
  end
end
if ARGV[4] == nil then return {} end
local held = redis.call('HINCRBY', KEYS[3], 'reserved', -tonumber(ARGV[4]))
if held < 0 then
  redis.call('HSET', KEYS[3], 'reserved', 0)
  held = 0
end
local used = tonumber(ARGV[5])
local spent = redis.call('HINCRBY', KEYS[3], 'spent', used)
if tonumber(ARGV[6]) > 0 then redis.call('PEXPIREAT', KEYS[3], ARGV[6]) end
local budget = tonumber(redis.call('HGET', KEYS[4], 'budget_units')) or 0
local result = {budget, spent, held}
if budget > 0 and used > 0 then
  local done = tonumber(redis.call('HGET', KEYS[3], 'alerted')) or 0
  local reached = done
  for t = done + 1, tonumber(ARGV[7]) do
    if spent >= tonumber(ARGV[7 + t]) * budget then reached = t else break end
  end
  if reached > done then
    redis.call('HSET', KEYS[3], 'alerted', reached)
    for t = done + 1, reached do result[#result + 1] = t end
  end
end
return result
"""


def admit_then(script: str) -> str:
    """One script: ADMIT, then `script` only if the request was let in; one round trip where
    there were two. KEYS and ARGV: ADMIT's (1 + 8 per scope keys, 3 + 11 per scope values),
    then `script`'s. Returns {ADMIT's answer} when refused, {ADMIT's answer, `script`'s}."""
    return f"""
local scopes = tonumber(ARGV[2])
local nkeys, nargs = 1 + 8 * scopes, 3 + 11 * scopes
local function part(list, first, last)
  local taken = {{}}
  for i = first, last do taken[#taken + 1] = list[i] end
  return taken
end
local admitted = (function(KEYS, ARGV)
{ADMIT}
end)(part(KEYS, 1, nkeys), part(ARGV, 1, nargs))
if admitted[1] ~= 1 then return {{admitted}} end
return {{admitted, (function(KEYS, ARGV)
{script}
end)(part(KEYS, nkeys + 1, #KEYS), part(ARGV, nargs + 1, #ARGV))}}
"""
