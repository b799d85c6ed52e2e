"""TokenSigner / TokenVerifier / load_signing_key, without a database."""

import base64
import os
import stat
import threading
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import AuthenticationError
from shared.tokens import (
    DEV_KEY_FILE,
    SigningKeyError,
    TokenSigner,
    TokenVerifier,
    key_id,
    load_signing_key,
)
from tests.auth.support import make_settings

ISS, AUD = "ai-gateway", "ai-gateway"


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(Ed25519PrivateKey.generate(), issuer=ISS, audience=AUD, expiry_seconds=60)


def _public_pem(signer: TokenSigner) -> bytes:
    return signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "usr_1",
        "tier": "free",
        "iat": now,
        "exp": now + 60,
        "jti": "j1",
        "iss": ISS,
        "aud": AUD,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _sign(signer: TokenSigner, **overrides: object) -> str:
    return jwt.encode(
        _claims(**overrides), signer._key, algorithm="EdDSA", headers={"kid": signer.kid}
    )


def test_issue_and_verify_roundtrip(signer: TokenSigner) -> None:
    token = signer.issue("usr_abc", "pro")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == signer.kid == key_id(signer.public_key)
    claims = signer.verifier().verify(token)
    assert (claims.sub, claims.tier) == ("usr_abc", "pro")
    assert claims.exp - claims.iat == 60
    assert claims.jti != signer.verifier().verify(signer.issue("usr_abc", "pro")).jti


def test_jwks_shape_and_verification(signer: TokenSigner) -> None:
    jwks = signer.jwks()
    [key] = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
    assert key["alg"] == "EdDSA" and key["use"] == "sig" and key["kid"] == signer.kid
    assert len(base64.urlsafe_b64decode(key["x"] + "==")) == 32
    assert "d" not in key
    verifier = TokenVerifier.from_jwks(jwks, issuer=ISS, audience=AUD)
    assert verifier.verify(signer.issue("usr_x", "free")).sub == "usr_x"


def test_key_id_is_the_rfc_7638_thumbprint() -> None:
    """The example key of RFC 8037, appendix A.2, and its thumbprint from appendix A.3."""
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    key = Ed25519PublicKey.from_public_bytes(x)
    assert key_id(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_jwks_without_a_usable_ed25519_signing_key_is_refused(signer: TokenSigner) -> None:
    [key] = signer.jwks()["keys"]
    for unusable in (
        {"keys": []},
        {"keys": [{**key, "use": "enc"}]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"keys": [{**key, "alg": "HS256"}]},
    ):
        with pytest.raises(ValueError):
            TokenVerifier.from_jwks(unusable, issuer=ISS, audience=AUD)


def test_from_public_pem(signer: TokenSigner) -> None:
    verifier = TokenVerifier.from_public_pem(_public_pem(signer).decode(), issuer=ISS, audience=AUD)
    assert verifier.verify(signer.issue("usr_p", "free")).sub == "usr_p"


def _rejects(verifier: TokenVerifier, token: str, message: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        verifier.verify(token)
    assert info.value.message == message
    assert info.value.status == 401
    assert token not in info.value.message


def test_rejects_alg_none(signer: TokenSigner) -> None:
    token = jwt.encode(_claims(), None, algorithm="none", headers={"kid": signer.kid})
    _rejects(signer.verifier(), token, "Invalid token")


def test_rejects_hs256_signed_with_public_key(signer: TokenSigner) -> None:
    # The classic key-confusion attack: pyjwt itself refuses a PEM as an HMAC secret, so the
    # token is forged by hand.
    import hashlib
    import hmac
    import json

    def seg(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = seg(json.dumps({"alg": "HS256", "typ": "JWT", "kid": signer.kid}).encode())
    body = seg(json.dumps(_claims()).encode())
    mac = hmac.new(_public_pem(signer), head + b"." + body, hashlib.sha256).digest()
    token = (head + b"." + body + b"." + seg(mac)).decode()
    _rejects(signer.verifier(), token, "Invalid token")


def test_rejects_wrong_audience_issuer_expired(signer: TokenSigner) -> None:
    verifier = signer.verifier()
    _rejects(verifier, _sign(signer, aud="someone-else"), "Invalid token audience")
    _rejects(verifier, _sign(signer, iss="evil"), "Invalid token issuer")
    past = int(time.time()) - 3600
    _rejects(verifier, _sign(signer, iat=past - 60, exp=past), "Token expired")
    _rejects(signer.verifier(), signer.issue("usr", "free") + "x", "Invalid token")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti"])
def test_rejects_missing_claims(signer: TokenSigner, missing: str) -> None:
    token = _sign(signer, **{missing: None})
    with pytest.raises(AuthenticationError, match="Invalid token"):
        signer.verifier().verify(token)


def test_rejects_other_key_and_garbage(signer: TokenSigner) -> None:
    other = TokenSigner(Ed25519PrivateKey.generate(), issuer=ISS, audience=AUD, expiry_seconds=60)
    _rejects(signer.verifier(), other.issue("usr", "free"), "Invalid token: unknown signing key")
    forged = jwt.encode(_claims(), other._key, algorithm="EdDSA", headers={"kid": signer.kid})
    _rejects(signer.verifier(), forged, "Invalid token")
    _rejects(signer.verifier(), "not-a-token", "Invalid token")


def test_dev_key_generated_once_and_reused(tmp_path: Path) -> None:
    settings = make_settings("postgresql://unused", tmp_path / "nested" / "data")
    first = load_signing_key(settings)
    path = settings.data_dir / DEV_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = load_signing_key(settings)
    assert key_id(first.public_key()) == key_id(second.public_key())
    assert [p.name for p in path.parent.iterdir()] == [DEV_KEY_FILE]


def test_dev_key_concurrent_start(tmp_path: Path) -> None:
    settings = make_settings("postgresql://unused", tmp_path)
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        kids.append(key_id(load_signing_key(settings).public_key()))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kids) == 8 and len(set(kids)) == 1


def test_production_requires_configured_key(tmp_path: Path) -> None:
    settings = make_settings("postgresql://unused", tmp_path, NODE_ENV="production")
    with pytest.raises(SigningKeyError, match="production"):
        load_signing_key(settings)
    assert not (tmp_path / DEV_KEY_FILE).exists()


def test_configured_key_is_used(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    for value in (pem, pem.replace("\n", "\\n")):
        settings = make_settings(
            "postgresql://unused", tmp_path, NODE_ENV="production", JWT_PRIVATE_KEY=value
        )
        assert key_id(load_signing_key(settings).public_key()) == key_id(key.public_key())
    assert not (tmp_path / DEV_KEY_FILE).exists()
    bad = make_settings("postgresql://unused", tmp_path, JWT_PRIVATE_KEY="nope")
    with pytest.raises(SigningKeyError, match="JWT_PRIVATE_KEY"):
        load_signing_key(bad)
