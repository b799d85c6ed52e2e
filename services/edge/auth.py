"""Who is calling: a JWT verified locally with the auth service's public key, or a gateway API
key (`gw_…`) resolved through a short Redis cache in front of the auth service.

This only identifies the caller (`deps.authenticated` is the routes' dependency); `limits.py`
decides whether the request gets in (and checks a JWT's revocation in the same Redis round
trip).

Failing costs the caller, not us: an API key auth does not know is remembered briefly, and each
client address gets `AUTH_CLIENT_MAX_FAILURES` failed authentications a window; past them its
failures are answered 429 and an API key not in the cache is not looked up at all.
"""

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import AuthenticationError, RateLimitError, ServiceUnavailable
from shared.redis_keys import RedisKeys
from shared.tokens import Claims, TokenVerifier

_CACHE_LIMIT = 10_000
API_KEY_PREFIX = "gw_"
# How long an edge trusts a resolved API key; revocation also deletes the entry at once.
API_KEY_CACHE_SECONDS = 30
# A key auth does not know, in the same cache: a new key's hash is never one tried before.
_UNKNOWN_KEY = b"-"
TOO_MANY_FAILURES = "Too many failed authentications from this address; try again later"


@dataclass(frozen=True)
class Principal:
    user_id: str
    tier: str
    role: str = "user"
    jti: str | None = None  # JWTs: checked against the deny-list on every request
    key_id: str | None = None  # gateway API keys
    allowed_providers: tuple[str, ...] | None = None
    allowed_models: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Failures:
    """Failed authentications per client address, in a fixed window."""

    redis: Redis
    keys: RedisKeys
    limit: int
    window_seconds: int

    def too_many(self) -> RateLimitError:
        return RateLimitError(TOO_MANY_FAILURES, retry_after=self.window_seconds)

    async def count(self, client: str) -> None:
        """Counts one; raises `too_many()` when the client is past its limit."""
        key = self.keys.auth_failures(client)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=self.window_seconds, nx=True)
                pipe.incr(key)
                _, count = await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailable("The gateway's Redis is unavailable") from exc
        if int(count) > self.limit:
            raise self.too_many()


class ApiKeys:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        auth: httpx.AsyncClient,
        service_token: str,
        failures: Failures,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.auth = auth
        self.headers = {"authorization": f"Bearer {service_token}", "x-service-name": "edge"}
        self.failures = failures

    async def resolve(self, key: str, client: str) -> Principal:
        key_hash = hashlib.sha256(key.encode()).hexdigest()
        cache_key = self.keys.api_key(key_hash)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(cache_key)
                pipe.get(self.keys.auth_failures(client))
                cached, failed = await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailable("The gateway's Redis is unavailable") from exc
        if cached is None:
            if int(failed or 0) >= self.failures.limit:
                raise self.failures.too_many()
            cached = await self._ask_auth(key_hash)
            await self.redis.set(cache_key, cached, ex=API_KEY_CACHE_SECONDS)
        if cached == _UNKNOWN_KEY:
            raise AuthenticationError("Invalid API key")
        found = orjson.loads(cached)
        expires_at = found.get("expires_at_ts")
        if expires_at is not None and expires_at <= time.time():
            raise AuthenticationError("API key expired")
        return Principal(
            user_id=found["user_id"],
            tier=found["tier"],
            role=found["role"],
            key_id=found["key_id"],
            allowed_providers=_tuple(found.get("allowed_providers")),
            allowed_models=_tuple(found.get("allowed_models")),
        )

    async def _ask_auth(self, key_hash: str) -> bytes:
        try:
            response = await self.auth.post(
                "/internal/v1/api-keys/resolve", json={"key_hash": key_hash}, headers=self.headers
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("The auth service is unavailable") from exc
        if response.status_code == 404:
            return _UNKNOWN_KEY
        if response.status_code != 200:
            raise ServiceUnavailable("The auth service could not check the API key")
        found = response.json()
        expires_at = found.get("expires_at")
        if expires_at:
            found["expires_at_ts"] = datetime.fromisoformat(expires_at).timestamp()
        return orjson.dumps(found)


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


class Authenticator:
    """Verifies bearer tokens, remembering verified JWTs until they expire.

    Signature checks are the edge's largest per-request CPU cost; a repeat caller's token is
    checked once and then found in a bounded map. Revocation is not this map's business: the
    admission script checks the deny-list on every request.
    """

    def __init__(self, verifier: TokenVerifier, api_keys: ApiKeys) -> None:
        self.verifier = verifier
        self.api_keys = api_keys
        self.verified: dict[str, Claims] = {}

    async def authenticate(self, authorization: str | None, client: str) -> Principal:
        """The caller; a failure is counted against `client` (429 past its limit)."""
        try:
            return await self._authenticate(authorization, client)
        except AuthenticationError:
            await self.api_keys.failures.count(client)
            raise

    async def _authenticate(self, authorization: str | None, client: str) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Missing bearer token")
        if token.startswith(API_KEY_PREFIX):
            return await self.api_keys.resolve(token, client)
        claims = self.verified.get(token)
        if claims is None or claims.exp <= time.time():
            claims = self.verifier.verify(token)
            if len(self.verified) >= _CACHE_LIMIT:
                self.verified.clear()
            self.verified[token] = claims
        return Principal(user_id=claims.sub, tier=claims.tier, role=claims.role, jti=claims.jti)
