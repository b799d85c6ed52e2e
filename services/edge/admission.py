"""Admission in one Redis round trip: token revocation, request limits, token budgets, spend
budgets and open streams.

One Lua script (`admission_scripts.py`), run atomically by Redis and so exact across every edge
replica, decides whether a request gets in: its token is not revoked, and each of its
principals (its user and, for a gateway API key, the key; all or none of them count the
request) is under its request limit for the current window, (for a stream) a slot is free
among its open streams, which it takes, (for work that spends tokens) the estimated tokens fit
in the current minute's budget, and (for work that costs money, under a spend budget) its
worst-case cost fits in what the budget's period has left; both are reserved. Custom limits and
budgets live in a Redis hash and override the defaults the caller passes in; the database is
never consulted. What a request holds is given back in one more round trip when it ends
(`settle`), the spend replaced by what the request really cost; a slot an edge never gave back
(it died) expires after the longest a stream can last.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from services.edge.admission_scripts import ADMIT, SETTLE
from shared.budgets import PERIODS, BudgetState, iso, spend_keys, window
from shared.cost import from_units
from shared.errors import AuthenticationError, RateLimitError
from shared.ids import new_id
from shared.redis_keys import RedisKeys
from shared.redis_trips import SharedTrips


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
    budget: BudgetState | None = None  # the principal's spend budget, this request admitted

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


class BudgetExceeded(RateLimitError):
    """402: the request's worst-case cost does not fit in what a spend budget has left."""

    status = 402


@dataclass(frozen=True)
class Spend:
    """Spend held in one budget period's hash, to settle against what the request cost."""

    key: str
    units: int  # reserved, in 1e-8 USD
    expiry_ms: int  # when the hash may go (0: never)
    limits_key: str  # where the budget it counts against is published
    scope: str
    owner_id: str
    period: str
    ends: datetime | None


@dataclass(frozen=True)
class Settled:
    """A spend budget after a request settled: its figures and the alert thresholds (their
    numbers, from 1) the request's cost crossed first in this period."""

    spend: Spend
    budget: int
    spent: int
    reserved: int
    crossed: tuple[int, ...] = ()

    def state(self) -> BudgetState:
        return BudgetState(
            self.budget, self.spend.period, self.spent, self.reserved, self.spend.ends
        )


@dataclass(frozen=True)
class Then:
    """The step a request's work takes once admitted, run by Redis in the admission's call:
    `script` is `admission_scripts.admit_then` of it, registered; `keys` and `args` its own.
    A single server's only: in a cluster its names are in other slots than the admission's."""

    script: AsyncScript
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True)
class Reservation:
    """What one request holds until it ends: tokens reserved, to settle against what it really
    used, its stream's slot, and its spend."""

    budget_key: str
    tokens: int
    streams_key: str = ""
    slot: str = ""
    spend: Spend | None = None


@dataclass(frozen=True)
class Scope:
    """One principal a request is counted against: `scope` is "user", "key" or "client"."""

    scope: str
    owner_id: str
    limits: Limits
    estimate_tokens: int = 0
    stream: StreamSlot | None = None
    cost_units: int | None = 0  # worst-case cost (1e-8 USD); 0: spends nothing; None: unpriced
    user_id: str = ""  # a gateway API key's user (its names share the user's slot)


class Admission:
    def __init__(
        self, redis: Redis, keys: RedisKeys, thresholds: tuple[float, ...] = (0.8, 1.0)
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.thresholds = thresholds
        self._admit = redis.register_script(ADMIT)
        self._settle = redis.register_script(SETTLE)
        self._trips = SharedTrips(redis)  # concurrent admissions share round trips

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
        user_id: str = "",
    ) -> tuple[Decision, Reservation | None]:
        """Lets the request in for one principal (returning its rate-limit state) or raises
        why not."""
        scopes = [Scope(scope, owner_id, limits, estimate_tokens, stream, user_id=user_id)]
        (admitted,) = await self.admit_all(scopes, now_ms=now_ms, jti=jti)
        return admitted

    async def admit_all(
        self, scopes: list[Scope], *, now_ms: int, jti: str | None = None
    ) -> list[tuple[Decision, Reservation | None]]:
        """Lets the request in for every scope at once (returning each one's rate-limit state
        and holdings, in order) or raises why not, having counted it for none."""
        admitted, _ = await self.admit_then(scopes, now_ms=now_ms, jti=jti)
        return admitted

    async def admit_then(
        self, scopes: list[Scope], *, now_ms: int, jti: str | None = None, then: Then | None = None
    ) -> tuple[list[tuple[Decision, Reservation | None]], Any]:
        """`admit_all`, and when the request gets in, `then` in the same call: what the
        admission let in and what `then`'s script answered (None without one)."""
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        windows = [window(p, now) for p in PERIODS]
        first = scopes[0]
        if jti:  # a user's token: its user is the first scope
            revoked = self.keys.revoked(first.owner_id, jti)
        else:
            revoked = self.keys.rate_window(first.scope, first.owner_id, first.user_id)
        keys: list[str] = [revoked]
        args: list[str | int] = [now_ms, len(scopes)]
        held: list[tuple[Scope, str, str, str, list[str]]] = []
        for s in scopes:
            budget_key = self.keys.token_budget(s.scope, s.owner_id, s.user_id)
            streams_key = self.keys.open_streams(s.scope, s.owner_id, s.user_id)
            slot = new_id("slot") if s.stream else ""
            spends = spend_keys(self.keys, s.scope, s.owner_id, now, s.user_id)
            keys += [
                self.keys.limits(s.scope, s.owner_id, s.user_id),
                self.keys.rate_window(s.scope, s.owner_id, s.user_id),
                budget_key,
                streams_key,
                *spends,
            ]
            allowed, expiry = (s.stream.allowed, now_ms + s.stream.ttl_ms) if s.stream else (0, 0)
            limits = s.limits
            args += [limits.requests, limits.window_seconds, limits.tokens_per_minute]
            args += [s.estimate_tokens, allowed, slot, expiry]
            args += [-1 if s.cost_units is None else s.cost_units]
            args += [w.expiry_ms for w in windows[:3]]
            held.append((s, budget_key, streams_key if slot else "", slot, spends))
        args.append(1 if jti else 0)
        followed = None
        if then is None:
            answer = await self._admit(keys, args)
        else:
            answer, *after = await self._run_then(then, [*keys, *then.keys], [*args, *then.args])
            followed = after[0] if after else None
        verdict, *rest = [int(v) for v in answer]
        if verdict != 1:
            self._refuse(verdict, scopes, rest, now)
        admitted = []
        for i, (s, budget_key, streams_key, slot, spends) in enumerate(held):
            limit, remaining, reset, reserved, units, spent, holding, period = rest[
                1 + 8 * i : 9 + 8 * i
            ]
            budget = None
            spend = None
            if period:
                span = windows[period - 1]
                budget = BudgetState(units, PERIODS[period - 1], spent, holding, span.ends)
                if s.cost_units:
                    spend = Spend(
                        spends[period - 1],
                        s.cost_units,
                        span.expiry_ms,
                        self.keys.limits(s.scope, s.owner_id, s.user_id),
                        s.scope,
                        s.owner_id,
                        budget.period,
                        span.ends,
                    )
            decision = Decision(limit, remaining, reset, budget)
            reservation = (
                Reservation(budget_key, reserved, streams_key, slot, spend)
                if reserved or slot or spend
                else None
            )
            admitted.append((decision, reservation))
        return admitted, followed

    async def _run_then(self, then: Then, keys: list[str], args: list[Any]) -> Any:
        """`then.script` by its SHA1, in a round trip shared with the admissions that run in
        the same turn of the event loop; loaded first if Redis does not know it."""
        try:
            (answer,) = await self._trips.run(
                lambda pipe: pipe.evalsha(then.script.sha, len(keys), *keys, *args)
            )
        except NoScriptError:
            answer = await then.script(keys, args)
        return answer

    async def settle(
        self, reservation: Reservation, used_tokens: int, now_ms: int, cost_units: int = 0
    ) -> Settled | None:
        """Replace the reserved estimate by what was really used (0 refunds it all) and the
        reserved spend by what the request cost, and give the stream's slot back; the spend
        budget as it then stands."""
        delta = used_tokens - reservation.tokens if reservation.tokens else 0
        spend = reservation.spend
        if not (delta or reservation.slot or spend):
            return None
        unused = reservation.budget_key  # stands for a name not used: same slot, left alone
        keys = [reservation.budget_key, reservation.streams_key or unused]
        args: list[str | int | float] = [now_ms, delta, reservation.slot]
        if spend is not None:
            keys += [spend.key, spend.limits_key]
            args += [spend.units, cost_units, spend.expiry_ms]
            args += [len(self.thresholds), *self.thresholds]
        else:
            keys += [unused, unused]
        answer = [int(v) for v in await self._settle(keys, args)]
        if spend is None or not answer:
            return None
        budget, spent, still, *crossed = answer
        return Settled(spend, budget, spent, still, tuple(crossed))

    @staticmethod
    def _refuse(verdict: int, scopes: list[Scope], rest: list[int], now: datetime) -> NoReturn:
        scope_number, *figures = rest[:5]
        if verdict in (-4, -5):
            scope = scopes[scope_number - 1].scope
            budget, spent, reserved, period = figures
            span = window(PERIODS[period - 1], now)
            details: dict[str, object] = {
                "code": "budget_exceeded" if verdict == -4 else "unpriced_model",
                "scope": scope,
                "budget_usd": from_units(budget),
                "spent_usd": from_units(spent),
                "reserved_usd": from_units(reserved),
                "resets_at": iso(span.ends),
            }
            message = (
                f"The {scope}'s spend budget cannot cover this request's worst-case cost"
                if verdict == -4
                else f"The {scope} has a spend budget and this model has no price"
            )
            retry_after = span.retry_after(now) if verdict == -4 else None
            raise BudgetExceeded(message, retry_after=retry_after, details=details)
        _refuse(verdict, scope_number, *figures, now_ms=int(now.timestamp() * 1000))


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
