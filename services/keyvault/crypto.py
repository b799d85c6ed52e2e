"""AES-256-GCM sealing of provider keys under versioned master keys.

Each seal uses a fresh random 96-bit nonce and binds the ciphertext to its row through the
associated data (user, provider, key id): a ciphertext copied to another row does not open.
Master keys come from `KEYVAULT_MASTER_KEYS` ("1:<base64>,2:<base64>"); the highest version
seals, every listed version opens, so rotation can re-seal rows while the service serves.
"""

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.dev_secrets import dev_secret
from shared.errors import GatewayError
from shared.settings import Settings

NONCE_BYTES = 12
KEY_BYTES = 32
DEV_MASTER_KEYS_FILE = "keyvault_master_keys"


class MasterKeyError(RuntimeError):
    """The configured master keys are missing or malformed; the service cannot start."""


class KeyUnreadable(GatewayError):
    """A stored key did not open: tampered, moved to another row, or its master key is gone."""

    status = 500


@dataclass(frozen=True)
class Sealed:
    version: int
    nonce: bytes
    ciphertext: bytes


def associated_data(user_id: str, provider: str, key_id: str) -> bytes:
    return f"provider-key|{user_id}|{provider}|{key_id}".encode()


class MasterKeys:
    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise MasterKeyError("no master key configured")
        if any(len(k) != KEY_BYTES for k in keys.values()):
            raise MasterKeyError(f"every master key must be {KEY_BYTES} bytes (AES-256)")
        self._ciphers = {version: AESGCM(key) for version, key in keys.items()}
        self.newest = max(keys)

    @classmethod
    def parse(cls, text: str) -> "MasterKeys":
        keys: dict[int, bytes] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            version, sep, encoded = item.partition(":")
            try:
                keys[int(version)] = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error) as exc:
                raise MasterKeyError("KEYVAULT_MASTER_KEYS must look like 1:<base64>") from exc
            if not sep:
                raise MasterKeyError("KEYVAULT_MASTER_KEYS must look like 1:<base64>")
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> "MasterKeys":
        if settings.keyvault_master_keys is not None:
            return cls.parse(settings.keyvault_master_keys.get_secret_value())
        if settings.node_env == "production":
            raise MasterKeyError("KEYVAULT_MASTER_KEYS is not set: production needs master keys")
        path = Path(settings.data_dir) / DEV_MASTER_KEYS_FILE
        text = dev_secret(path, lambda: b"1:" + base64.b64encode(os.urandom(KEY_BYTES)))
        return cls.parse(text.decode())

    def seal(self, plaintext: str, aad: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self.newest].encrypt(nonce, plaintext.encode(), aad)
        return Sealed(self.newest, nonce, ciphertext)

    def open(self, sealed: Sealed, aad: bytes) -> str:
        cipher = self._ciphers.get(sealed.version)
        if cipher is None:
            raise KeyUnreadable(
                f"The stored key was sealed with master key version {sealed.version}, "
                "which is not configured"
            )
        try:
            return cipher.decrypt(sealed.nonce, sealed.ciphertext, aad).decode()
        except InvalidTag as exc:
            raise KeyUnreadable("The stored key failed its integrity check") from exc


def mask(key: str) -> str:
    """Enough of a key to recognise it, never enough to use it: `sk-ant-...xyz`.

    Keeps the vendor prefix (up to the last `-` or `_` in the first 8 characters) and the
    last 3 characters.
    """
    head = key[:8]
    cut = max(head.rfind("-"), head.rfind("_"))
    prefix = head[: cut + 1] if cut > 0 else key[:3]
    return f"{prefix}...{key[-3:]}"
