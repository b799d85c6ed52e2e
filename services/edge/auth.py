"""Who is calling: bearer tokens verified locally with the auth service's public key."""

import logging
import time
from dataclasses import dataclass

from fastapi import Request

from shared.errors import AuthenticationError
from shared.tokens import Claims, TokenVerifier

log = logging.getLogger(__name__)

_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Principal:
    user_id: str
    tier: str


class Authenticator:
    """Verifies bearer tokens, remembering verified ones until they expire.

    Signature checks are the edge's largest per-request CPU cost; a repeat caller's token is
    checked once and then found in a bounded map.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self.verified: dict[str, Claims] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Missing bearer token")
        token = token.strip()
        claims = self.verified.get(token)
        if claims is None or claims.exp <= time.time():
            claims = self.verifier.verify(token)
            if len(self.verified) >= _CACHE_LIMIT:
                self.verified.clear()
            self.verified[token] = claims
        return Principal(user_id=claims.sub, tier=claims.tier)


def principal(request: Request) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.authenticate(request.headers.get("authorization"))


def api_key_principal(request: Request) -> Principal:
    """Like `principal`, also accepting the token as `x-api-key` (as the Anthropic SDK sends it)."""
    authorization = request.headers.get("authorization")
    api_key = request.headers.get("x-api-key")
    if not authorization and api_key:
        authorization = f"Bearer {api_key}"
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.authenticate(authorization)
