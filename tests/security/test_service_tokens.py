"""Production refuses service tokens that are not real secrets.

The Kubernetes secrets template gives both service tokens the same placeholder; deployed as
is, the edge's token opened the keyvault's decrypt route. Every service now refuses to start
in production with a token shorter than 32 bytes or a known placeholder, and the keyvault
(which holds both) when the two are equal (shared/service_auth.py).
"""

import secrets
from pathlib import Path

import pytest

from tests.security.support import private_pem, production_env, start_and_wait

MASTER_KEYS = "1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes
SERVICES = {
    "auth": ("services.auth", {"JWT_PRIVATE_KEY": private_pem()}),
    "keyvault": ("services.keyvault", {"KEYVAULT_MASTER_KEYS": MASTER_KEYS}),
    "edge": ("services.edge", {}),
    "worker": ("services.workers", {}),
}


def _start(name: str, env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    module, extra = SERVICES[name]
    args = ("--provider", "deepseek") if name == "worker" else ()
    return start_and_wait(module, env | extra, tmp_path, *args)


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("REPLACE_ME", "must be at least 32 bytes"),
        ("REPLACE_ME" * 4, "is a placeholder"),
        (secrets.token_hex(15), "must be at least 32 bytes"),
        ("a" * 40, "is a placeholder"),
    ],
    ids=["template", "long-template", "short", "one-letter"],
)
def test_every_service_refuses_a_weak_service_token_in_production(
    tmp_path: Path,
    redis_url: str,
    database_url: str,
    service: str,
    token: str,
    message: str,
) -> None:
    env = production_env(tmp_path, redis_url, database_url)
    env |= {"INTERNAL_SERVICE_TOKEN": token, "KEYVAULT_SERVICE_TOKEN": token}
    code, output = _start(service, env, tmp_path)
    assert code != 0
    assert message in output, output
    assert token not in output.replace(message, "")  # the secret is never printed


def test_the_keyvault_refuses_equal_service_tokens_in_production(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    token = secrets.token_urlsafe(32)
    env = production_env(tmp_path, redis_url, database_url)
    env |= {"INTERNAL_SERVICE_TOKEN": token, "KEYVAULT_SERVICE_TOKEN": token}
    code, output = _start("keyvault", env, tmp_path)
    assert code != 0
    assert "are equal" in output, output
    assert token not in output
