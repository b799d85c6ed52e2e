"""Which API keys the simulated providers accept, as a real provider knows the keys it issued.

A key is valid when the simulator was started with it (`--api-keys`; the default is the demo key
the fleet and the compose demo hand every worker pool), or when the simulator issued it: such a
key ends with a checksum of the rest (`issue`, used by tests and `POST /_sim/keys`). Any other
key, a made-up one included, gets the provider's authentication error, so checking a key
(`POST /api/v1/keys/validate`) tells real keys from invented ones. A key containing `fail-401`
fails whatever it is (see the directives).
"""

import hashlib
import secrets

from starlette.requests import Request

DEMO_KEY = "sk-simulator"
_CHECK_LENGTH = 8


def _checksum(body: str) -> str:
    return hashlib.sha256(f"simulator-key:{body}".encode()).hexdigest()[:_CHECK_LENGTH]


def issue(prefix: str = "sk") -> str:
    """A new key the simulator accepts, starting with `prefix` (e.g. `sk-ant`, `xai`)."""
    body = f"{prefix}-{secrets.token_urlsafe(18)}"
    return f"{body}-{_checksum(body)}"


def is_valid(key: str, accepted: tuple[str, ...]) -> bool:
    if key in accepted:
        return True
    body, _, check = key.rpartition("-")
    return bool(body) and len(check) == _CHECK_LENGTH and check == _checksum(body)


def known(request: Request, key: str) -> bool:
    """Whether the simulator running `request` accepts `key`."""
    accepted: tuple[str, ...] = request.app.state.config.api_keys
    return is_valid(key, accepted)
