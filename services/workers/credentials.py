"""Which provider key a job runs with: the caller's own (from the keyvault) or the operator's.

A job never carries a key, only the id of the caller's key. The worker fetches that key from
the keyvault's internal endpoint, authenticated as a service, and keeps it in memory for a
short, bounded time so a busy user's requests do not each cost a decrypt.
"""

import time
from dataclasses import dataclass

import httpx

from shared.errors import InvalidRequest, NotFoundError, ServiceUnavailable

_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Cached:
    secret: str
    expires: float


class KeyClient:
    def __init__(
        self, client: httpx.AsyncClient, keyvault_url: str, service_token: str, ttl: float
    ) -> None:
        self.client = client
        self.url = keyvault_url.rstrip("/")
        self.headers = {"authorization": f"Bearer {service_token}"}
        self.ttl = ttl
        self.cache: dict[tuple[str, str], _Cached] = {}

    async def user_key(self, key_id: str, user_id: str, *, provider: str, trace: str) -> str:
        cached = self.cache.get((key_id, user_id))
        if cached is not None and cached.expires > time.monotonic():
            return cached.secret
        secret = await self._fetch(key_id, user_id, provider=provider, trace=trace)
        if len(self.cache) >= _MAX_ENTRIES:
            self.cache.clear()
        self.cache[(key_id, user_id)] = _Cached(secret, time.monotonic() + self.ttl)
        return secret

    async def _fetch(self, key_id: str, user_id: str, *, provider: str, trace: str) -> str:
        try:
            response = await self.client.get(
                f"{self.url}/internal/v1/keys/{key_id}/secret",
                timeout=5.0,
                params={"user_id": user_id},
                headers={**self.headers, "x-request-id": trace, "x-service-name": "worker"},
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("The keyvault is unavailable") from exc
        if response.status_code == 404:
            raise NotFoundError("Your provider key no longer exists", details={"id": key_id})
        if response.status_code != 200:
            raise ServiceUnavailable("The keyvault could not provide your provider key")
        body = response.json()
        if body.get("provider") != provider:
            raise InvalidRequest(
                f"Key {key_id} is a {body.get('provider')} key, not a {provider} key",
                details={"id": key_id},
            )
        secret: str = body["apiKey"]
        return secret
