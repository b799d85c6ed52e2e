"""Every process compose and Kubernetes run exists in the code, and every provider has a pool."""

import importlib.util

import pytest

from shared.providers import PROVIDERS
from tests.deploy.manifests import ROOT, commands, compose, modules, worker_provider


def all_modules() -> list[str]:
    return sorted({m for _, command in commands() for m in modules(command)})


def test_the_deployments_name_every_service() -> None:
    expected = {"edge", "auth", "keyvault", "audit", "console", "workers", "simulator"}
    assert {m.removeprefix("services.") for m in all_modules()} == expected


@pytest.mark.parametrize("module", all_modules())
def test_each_named_service_is_an_entrypoint(module: str) -> None:
    main = ROOT / module.replace(".", "/") / "__main__.py"
    assert main.is_file()
    assert importlib.util.find_spec(f"{module}.__main__") is not None


def providers_in(prefix: str) -> list[str]:
    return sorted(
        p for where, c in commands() if where.startswith(prefix) and (p := worker_provider(c))
    )


@pytest.mark.parametrize("prefix", ["compose:", "k8s:"])
def test_one_worker_pool_per_provider(prefix: str) -> None:
    assert providers_in(prefix) == sorted(PROVIDERS)


def test_each_compose_worker_gets_only_its_own_provider_key() -> None:
    key_names = {PROVIDERS[p].key_setting.upper() for p in PROVIDERS}
    for name, service in compose()["services"].items():
        provider = worker_provider(" ".join(service.get("command", [])))
        keys = key_names & set(service.get("environment", {}))
        assert keys == ({PROVIDERS[provider].key_setting.upper()} if provider else set()), name
