"""Whether a request gets in, and how much of its caller's budget it holds.

Every authenticated request is admitted once: the user's request window (and the gateway API
key's own, when the key has limits), the JWT's revocation, for a stream a slot among the
user's open streams (`MAX_OPEN_STREAMS`, every key of the user included; and among the key's
own with `MAX_OPEN_STREAMS_PER_KEY`), for work that spends tokens a reservation of its
estimated tokens, and for work that costs money a reservation of its worst-case cost in the
user's and the key's spend budgets; all are given back when the job ends.
Every response of a limited route carries the `RateLimit-*` headers of the tightest limit, and
a caller with a spend budget the `X-Budget-*` headers of the tighter budget (`spend.py`).
"""

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from redis.exceptions import RedisError

from services.edge.admission import (
    Admission,
    Decision,
    Limited,
    Limits,
    Reservation,
    Scope,
    StreamSlot,
    Then,
)
from services.edge.auth import Principal
from services.edge.spend import budget_headers
from shared.errors import GatewayError
from shared.http import add_response_headers
from shared.schemas import ChatRequest
from shared.settings import Settings

# A key's own limits only exist when set; until then it shares its owner's.
_UNLIMITED = Limits(requests=2**62, window_seconds=3600)
# Tokens assumed for an answer whose `max_tokens` is not given.
DEFAULT_ANSWER_TOKENS = 1024
# A stream ends by its job's deadline (`REQUEST_TIMEOUT` after admission); its slot a little later.
_SLOT_GRACE_MS = 10_000


@dataclass(frozen=True)
class Gate:
    admission: Admission
    settings: Settings

    def user_limits(self, tier: str) -> Limits:
        s = self.settings
        if tier == "paid":
            return Limits(
                s.paid_rate_limit_max, s.paid_rate_limit_window.whole_seconds, s.tokens_per_minute
            )
        return Limits(s.rate_limit_max, s.rate_limit_window.whole_seconds, s.tokens_per_minute)

    def stream_slot(self, allowed: int) -> StreamSlot:
        ttl_ms = int(self.settings.request_timeout.seconds * 1000) + _SLOT_GRACE_MS
        return StreamSlot(allowed, ttl_ms)

    async def admit(
        self,
        request: Request,
        caller: Principal,
        estimate_tokens: int = 0,
        stream: bool = False,
        cost_units: int | None = 0,
    ) -> list[Reservation]:
        """Counts the request against its user and (for a gateway API key) the key, in one
        atomic step: refused by either, it is counted by neither. `cost_units`: its
        worst-case cost in 1e-8 USD (0: it costs nothing; None: its model has no price)."""
        held, _ = await self.admit_then(request, caller, estimate_tokens, stream, cost_units)
        return held

    async def admit_then(
        self,
        request: Request,
        caller: Principal,
        estimate_tokens: int = 0,
        stream: bool = False,
        cost_units: int | None = 0,
        then: Then | None = None,
    ) -> tuple[list[Reservation], Any]:
        """`admit`, running `then` in the same call when the request gets in: what it holds
        and what `then` answered."""
        request.state.admitted = True
        scopes = self._scopes(caller, estimate_tokens, stream, cost_units)
        now = now_ms()
        admitted, followed = await self._admit_scopes(
            request, now, scopes, jti=caller.jti, then=then
        )
        # The headers tell of the tightest limit and the tighter budget.
        decision = min((d for d, _ in admitted), key=lambda d: d.remaining)
        add_response_headers(request, decision.headers(now))
        budgets = [d.budget for d, _ in admitted if d.budget is not None]
        add_response_headers(request, budget_headers(budgets))
        return [held for _, held in admitted if held is not None], followed

    def _scopes(
        self, caller: Principal, estimate_tokens: int, stream: bool, cost_units: int | None
    ) -> list[Scope]:
        scopes = [
            Scope(
                "user",
                caller.user_id,
                self.user_limits(caller.tier),
                estimate_tokens,
                self.stream_slot(self.settings.max_open_streams) if stream else None,
                cost_units,
            )
        ]
        if caller.key_id is not None:
            per_key = self.settings.max_open_streams_per_key
            slot = self.stream_slot(per_key) if stream and per_key else None
            scopes.append(
                Scope(
                    "key",
                    caller.key_id,
                    _UNLIMITED,
                    estimate_tokens,
                    slot,
                    cost_units,
                    caller.user_id,
                )
            )
        return scopes

    async def charge(self, caller: Principal) -> None:
        """Counts a request that was refused before admission against its caller's request
        limits (nothing reserved); a caller over its limit already is left as it is."""
        with contextlib.suppress(GatewayError, RedisError):
            await self.admission.admit_all(self._scopes(caller, 0, False, 0), now_ms=now_ms())

    async def _admit_scopes(
        self,
        request: Request,
        now: int,
        scopes: list[Scope],
        *,
        jti: str | None = None,
        then: Then | None = None,
    ) -> tuple[list[tuple[Decision, Reservation | None]], Any]:
        try:
            return await self.admission.admit_then(scopes, now_ms=now, jti=jti, then=then)
        except Limited as exc:
            add_response_headers(request, exc.decision.headers(now))
            raise

    async def admit_client(self, request: Request) -> None:
        """Per client address, for the routes that hand out tokens."""
        host = request.client.host if request.client else "unknown"
        limits = Limits(
            self.settings.auth_rate_limit_max, self.settings.auth_rate_limit_window.whole_seconds
        )
        now = now_ms()
        ((decision, _),), _ = await self._admit_scopes(
            request, now, [Scope("client", host, limits)]
        )
        add_response_headers(request, decision.headers(now))


def now_ms() -> int:
    return int(time.time() * 1000)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """About four characters a token, tool definitions included."""
    characters = sum(len(m.text()) for m in request.messages)
    if request.tools:
        characters += sum(len(t.model_dump_json()) for t in request.tools)
    return characters // 4 + 1


def estimate_chat_tokens(request: ChatRequest) -> int:
    """Prompt plus the longest answer it may get."""
    return estimate_prompt_tokens(request) + (request.max_tokens or DEFAULT_ANSWER_TOKENS)


def estimate_text_tokens(texts: list[str]) -> int:
    return sum(len(t) for t in texts) // 4 + len(texts)
