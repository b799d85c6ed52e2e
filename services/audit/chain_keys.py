"""The versioned secrets the audit chain is keyed with: `AUDIT_HMAC_KEYS`, "1:<base64>,2:<...>".

Each row's hash is an HMAC-SHA256 under one version (stored on the row); the highest version
chains new rows, every listed version verifies, so a key can be rotated (`python -m
services.audit rekey` re-chains every row under the newest). Whoever can write the table but
does not hold the key cannot make a changed row, or a new one, match.
"""

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from shared.dev_secrets import dev_secret
from shared.settings import Settings

MIN_KEY_BYTES = 32
DEV_KEYS_FILE = "audit_hmac_keys"


class ChainKeyError(RuntimeError):
    """`AUDIT_HMAC_KEYS` is missing or malformed; the audit service cannot start."""


class ChainKeys:
    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise ChainKeyError("no audit HMAC key configured")
        if any(len(k) < MIN_KEY_BYTES for k in keys.values()):
            raise ChainKeyError(f"every audit HMAC key must be at least {MIN_KEY_BYTES} bytes")
        self._keys = keys
        self.newest = max(keys)

    @classmethod
    def parse(cls, text: str) -> "ChainKeys":
        keys: dict[int, bytes] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            version, sep, encoded = item.partition(":")
            try:
                keys[int(version)] = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error):
                raise ChainKeyError("AUDIT_HMAC_KEYS must look like 1:<base64>") from None
            if not sep:
                raise ChainKeyError("AUDIT_HMAC_KEYS must look like 1:<base64>")
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ChainKeys":
        if settings.audit_hmac_keys is not None:
            return cls.parse(settings.audit_hmac_keys.get_secret_value())
        if settings.node_env == "production":
            raise ChainKeyError("AUDIT_HMAC_KEYS is not set: production needs it")
        path = Path(settings.data_dir) / DEV_KEYS_FILE
        text = dev_secret(path, lambda: b"1:" + base64.b64encode(os.urandom(MIN_KEY_BYTES)))
        return cls.parse(text.decode())

    def has(self, version: int) -> bool:
        return version in self._keys

    def mac(self, version: int, data: bytes) -> str:
        return hmac.new(self._keys[version], data, hashlib.sha256).hexdigest()
