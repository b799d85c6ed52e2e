"""The provider catalogue: each provider's model list, and model availability checks.

A list is fetched through the provider's worker pool (a `models` job) and kept in Redis for an
hour, shared by every edge replica, plus briefly in process so that checking a model on the hot
path costs no Redis round trip. Concurrent misses for one provider share one fetch. A failed
fetch is not cached in Redis, so the next listing retries it; the hot path remembers a failure
for a few seconds only, so an unreachable provider does not make every request wait for it.

Every `MODEL_REFRESH_INTERVAL` one replica (the holder of a Redis lease) fetches every list
again before it expires, so no request waits for one; like any call to a provider, these count
in its circuit breaker, so an idle provider's breaker still learns how it is doing.
"""

import asyncio
import logging
import random
import time

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.edge.job_queue import JobQueue
from shared.errors import MODEL_NOT_FOUND, GatewayError, InvalidRequest
from shared.identifiers import quoted
from shared.ids import new_trace_id
from shared.messages import ModelsJob, ModelsResult
from shared.providers import PROVIDERS, Capability
from shared.redis_keys import RedisKeys
from shared.schemas import ProviderInfo, ProvidersResponse

log = logging.getLogger(__name__)

REDIS_TTL_SECONDS = 3600
MEMORY_TTL_SECONDS = 60.0
FAILURE_TTL_SECONDS = 5.0
FETCH_TIMEOUT_SECONDS = 4.0
CATALOGUE_USER = "gateway"  # model lists are fetched with the operator's keys, for everyone

# A provider's model list always names its chat models, but not always the models it embeds or
# reranks with (docs/providers.md): Hugging Face's router lists its inference providers' chat models
# while any Hub model embeds or reranks (§8); NIM's hosted retrieval models may be missing from
# its /models (§6); OpenRouter's /models is its chat catalogue (its /embeddings is unconfirmed,
# §4). Only LiteLLM's /v1/models names every model group the key may use, embedders and rerankers
# included (§5). A model the list cannot speak for is left for the provider to judge.
_LISTS_RETRIEVAL_MODELS = frozenset({"litellm"})


class Catalogue:
    def __init__(
        self,
        redis: Redis,
        queue: JobQueue,
        keys: RedisKeys,
        *,
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.keys = keys
        self.fetch_timeout = fetch_timeout
        self.memory: dict[str, tuple[float, list[str] | None]] = {}
        self.fetches: dict[str, asyncio.Future[list[str] | None]] = {}

    async def models(self, provider: str, *, fresh: bool = False) -> list[str] | None:
        """The provider's model list, or None when it cannot be had right now.

        `fresh` skips a remembered failure (but not a remembered list).
        """
        remembered = self.memory.get(provider)
        if (
            remembered is not None
            and remembered[0] > time.monotonic()
            and (remembered[1] is not None or not fresh)
        ):
            return remembered[1]
        fetch = self.fetches.get(provider)
        if fetch is None:
            fetch = asyncio.ensure_future(self._load(provider))
            self.fetches[provider] = fetch
            fetch.add_done_callback(lambda _: self.fetches.pop(provider, None))
        # Shielded: one caller going away must not cancel the fetch others are waiting for.
        return await asyncio.shield(fetch)

    async def _load(self, provider: str) -> list[str] | None:
        models = await self._cached(provider)
        if models is None:
            models = await self._fetch(provider)
            if models is not None:
                await self._store(provider, models)
        ttl = MEMORY_TTL_SECONDS if models is not None else FAILURE_TTL_SECONDS
        self.memory[provider] = (time.monotonic() + ttl, models)
        return models

    async def _cached(self, provider: str) -> list[str] | None:
        try:
            raw = await self.redis.get(self.keys.models(provider))
        except RedisError:
            log.warning("could not read the cached model list of %s", provider, exc_info=True)
            return None
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(m, str) for m in value):
            return value
        return None

    async def _store(self, provider: str, models: list[str]) -> None:
        try:
            await self.redis.set(
                self.keys.models(provider), orjson.dumps(models), ex=REDIS_TTL_SECONDS
            )
        except RedisError:
            log.warning("could not cache the model list of %s", provider, exc_info=True)

    async def _fetch(self, provider: str) -> list[str] | None:
        # Its own trace: the fetch serves every request waiting for this list, not one.
        fields = self.queue.job_fields(user_id=CATALOGUE_USER, trace=new_trace_id())
        fields["deadline"] = fields["ts"] + self.fetch_timeout
        try:
            event = await self.queue.call(ModelsJob(**fields), provider)
        except GatewayError as exc:
            log.warning("model list of %s unavailable: %s", provider, exc.message)
            return None
        except ValueError:  # an answer that does not decode
            log.warning("undecodable answer to a models job of %s", provider, exc_info=True)
            return None
        if not isinstance(event, ModelsResult):
            log.warning("unexpected answer to a models job of %s: %s", provider, event.kind)
            return None
        return list(event.models)

    async def refresh(self) -> dict[str, bool]:
        """Fetches and stores every provider's list now: provider -> whether it answered."""

        async def one(provider: str) -> bool:
            models = await self._fetch(provider)
            if models is not None:
                await self._store(provider, models)
                self.memory[provider] = (time.monotonic() + MEMORY_TTL_SECONDS, models)
            return models is not None

        answered = await asyncio.gather(*(one(p) for p in PROVIDERS))
        return dict(zip(PROVIDERS, answered, strict=True))

    async def keep_fresh(self, interval: float) -> None:
        """Refreshes every list each `interval` seconds (jittered), from the one replica that
        takes the lease for that interval."""
        lease = self.keys.models_refresh_lease()
        while True:
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))
            try:
                won = await self.redis.set(lease, "1", nx=True, px=max(1, int(interval * 800)))
            except RedisError:
                log.warning("could not take the model-list refresh lease", exc_info=True)
                continue
            if won:
                answered = await self.refresh()
                silent = sorted(p for p, ok in answered.items() if not ok)
                log.info("model lists refreshed; no answer from: %s", ", ".join(silent) or "none")

    def listed(self, provider: str, model: str) -> bool:
        """Whether the provider's list, as this process last had it, names the model."""
        remembered = self.memory.get(provider)
        return remembered is not None and model in (remembered[1] or ())

    async def check(self, provider: str, model: str, capability: Capability = "chat") -> None:
        """Rejects a model the provider does not list; an unknown list lets the request pass,
        and so does a retrieval model where the provider's list does not name those."""
        if capability != "chat" and provider not in _LISTS_RETRIEVAL_MODELS:
            return
        models = await self.models(provider)
        if models is None or model in models or model.split(":", 1)[0] in models:
            return
        raise InvalidRequest(
            "Invalid model specified",
            details={
                "provider": provider,
                "model": quoted(model),
                "available_models": models,
                "code": MODEL_NOT_FOUND,
            },
        )

    async def listing(self) -> ProvidersResponse:
        ids = list(PROVIDERS)
        lists = await asyncio.gather(*(self.models(p, fresh=True) for p in ids))
        return ProvidersResponse(
            providers=[
                ProviderInfo(
                    id=p,
                    name=PROVIDERS[p].name,
                    status="active" if models is not None else "unavailable",
                    models=models or [],
                    capabilities=list(PROVIDERS[p].capabilities),
                )
                for p, models in zip(ids, lists, strict=True)
            ]
        )
