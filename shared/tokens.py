"""EdDSA (Ed25519) access tokens: issued by the auth service, verified anywhere with the public key.

The auth service holds the private key (`load_signing_key`) and publishes the public half as a
JWKS (RFC 8037 OKP keys, `kid` = RFC 7638 thumbprint), written and read with PyJWT's JWK
support. Verifiers pin the algorithm to EdDSA, so `alg: none` and HS256-signed-with-the-public-key
tokens are rejected.
"""

import asyncio
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm
from jwt.utils import base64url_encode

from shared.dev_secrets import dev_secret
from shared.errors import AuthenticationError
from shared.settings import Settings

ALGORITHM = "EdDSA"
DEV_KEY_FILE = "jwt_ed25519.pem"
_JWKS_WAIT = 30.0
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]
ROLES = ("user", "admin")


class SigningKeyError(RuntimeError):
    """The signing key is missing, unreadable or not an Ed25519 key."""


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    tier: str
    jti: str
    exp: int
    iat: int
    role: str = "user"  # tokens issued before roles existed carry none: they are users'


def key_id(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: stable for a key, changes when the key is rotated."""
    jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    required = {member: jwk[member] for member in ("crv", "kty", "x")}  # in this order
    return base64url_encode(hashlib.sha256(orjson.dumps(required)).digest()).decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, Any]:
    jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    return {**jwk, "kid": key_id(key), "alg": ALGORITHM, "use": "sig"}


class TokenSigner:
    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str,
        expiry_seconds: int,
    ) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.kid = key_id(self.public_key)
        self.issuer = issuer
        self.audience = audience
        self.expiry_seconds = expiry_seconds
        self._jwks = {"keys": [public_jwk(self.public_key)]}

    @classmethod
    def from_settings(cls, settings: Settings) -> "TokenSigner":
        return cls(
            load_signing_key(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            expiry_seconds=settings.jwt_expiry.whole_seconds,
        )

    def issue(self, sub: str, tier: str, role: str = "user") -> str:
        now = int(time.time())
        claims = {
            "sub": sub,
            "tier": tier,
            "role": role,
            "iat": now,
            "exp": now + self.expiry_seconds,
            "jti": secrets.token_urlsafe(16),
            "iss": self.issuer,
            "aud": self.audience,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(k) for k in self._jwks["keys"]]}

    def verifier(self) -> "TokenVerifier":
        return TokenVerifier(
            {self.kid: self.public_key}, issuer=self.issuer, audience=self.audience
        )


class TokenVerifier:
    """Stateless and cheap: the parsed public keys are kept, nothing else is."""

    def __init__(
        self,
        keys_by_kid: Mapping[str, Ed25519PublicKey],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 0,
    ) -> None:
        if not keys_by_kid:
            raise ValueError("TokenVerifier needs at least one public key")
        self._keys = dict(keys_by_kid)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self._jws = jwt.PyJWT()

    @classmethod
    def from_jwks(
        cls, jwks: Mapping[str, Any], *, issuer: str, audience: str, leeway_seconds: int = 0
    ) -> "TokenVerifier":
        try:
            found = jwt.PyJWKSet.from_dict(dict(jwks)).keys
        except jwt.PyJWKSetError as exc:
            raise ValueError(f"the JWKS holds no usable key: {exc}") from exc
        keys: dict[str, Ed25519PublicKey] = {
            jwk.key_id or key_id(jwk.key): jwk.key
            for jwk in found
            if isinstance(jwk.key, Ed25519PublicKey)
            and jwk.algorithm_name == ALGORITHM
            and jwk.public_key_use in (None, "sig")
        }
        if not keys:
            raise ValueError("the JWKS holds no Ed25519 signing key")
        return cls(keys, issuer=issuer, audience=audience, leeway_seconds=leeway_seconds)

    @classmethod
    def from_public_pem(
        cls, pem: str, *, issuer: str, audience: str, leeway_seconds: int = 0
    ) -> "TokenVerifier":
        key = serialization.load_pem_public_key(pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        return cls(
            {key_id(key): key}, issuer=issuer, audience=audience, leeway_seconds=leeway_seconds
        )

    def verify(self, token: str) -> Claims:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise AuthenticationError("Invalid token: unknown signing key")
            payload = self._jws.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("Token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("Invalid token audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("Invalid token issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"Invalid token: missing claim '{exc.claim}'") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("Invalid token") from exc
        return _claims(payload)


def _claims(payload: Mapping[str, Any]) -> Claims:
    sub, tier, jti = payload.get("sub"), payload.get("tier", "free"), payload.get("jti")
    exp, iat, role = payload.get("exp"), payload.get("iat"), payload.get("role", "user")
    if not (isinstance(sub, str) and sub and isinstance(tier, str) and isinstance(jti, str)):
        raise AuthenticationError("Invalid token")
    if not (isinstance(exp, int) and isinstance(iat, int) and role in ROLES):
        raise AuthenticationError("Invalid token")
    return Claims(sub=sub, tier=tier, jti=jti, exp=exp, iat=iat, role=role)


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """`JWT_PRIVATE_KEY`, or (not in production) a key generated once under DATA_DIR and reused."""
    if settings.jwt_private_key is not None:
        # One-line env files often carry the PEM with literal "\n" sequences.
        pem = settings.jwt_private_key.get_secret_value().replace("\\n", "\n").encode()
        return _parse_private_pem(pem, "JWT_PRIVATE_KEY")
    if settings.node_env == "production":
        raise SigningKeyError(
            "JWT_PRIVATE_KEY is not set: production needs a configured Ed25519 private key (PEM)"
        )
    return _dev_key(Path(settings.data_dir) / DEV_KEY_FILE)


def _parse_private_pem(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{source} is not a readable unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{source} is not an Ed25519 key (EdDSA tokens need Ed25519)")
    return key


def _dev_key(path: Path) -> Ed25519PrivateKey:
    return _parse_private_pem(dev_secret(path, _new_private_pem), str(path))


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


async def load_verifier(settings: Settings, client: httpx.AsyncClient) -> TokenVerifier:
    """From `JWT_PUBLIC_KEY` when configured, else from the auth service's JWKS (waiting for
    the auth service to come up for a while, as at a fleet's start)."""
    issuer, audience = settings.jwt_issuer, settings.jwt_audience
    if settings.jwt_public_key:
        return TokenVerifier.from_public_pem(
            settings.jwt_public_key, issuer=issuer, audience=audience
        )
    url = f"{settings.auth_url}/.well-known/jwks.json"
    deadline = time.monotonic() + _JWKS_WAIT
    while True:
        try:
            response = await client.get(url)
            response.raise_for_status()
            return TokenVerifier.from_jwks(response.json(), issuer=issuer, audience=audience)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
