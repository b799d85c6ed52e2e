"""docker-compose.yml against the Compose Specification, and the files it mounts."""

import copy
import json
import re
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from services.fleet.plan import simulator_env
from shared.providers import PROVIDERS
from tests.deploy.manifests import DEPLOY, SCHEMAS, compose

APP_PORTS = {"edge": 3001, "auth": 3002, "keyvault": 3003, "audit": 3004, "console": 3005}
WORKER_METRICS_PORT = 9100
DASHBOARD_METRICS = (
    "gateway_requests_total",
    "gateway_request_duration_seconds_bucket",
    "gateway_tokens_total",
    "gateway_errors_total",
    "gateway_queue_depth",
    "gateway_jobs_in_flight",
    "gateway_breaker_state",
    "gateway_cost_usd_total",
    "gateway_key_spend_today_usd",
    "gateway_unpriced_requests_total",
    "gateway_budget_alerts_total",
)
# Where the gateway defines the metric families it exposes.
METRIC_SOURCES = ("shared/metrics.py", "services/edge/observability.py")


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def compose_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in compose_validator().iter_errors(document)
    ]


def test_compose_file_follows_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


def test_the_compose_validator_rejects_mistakes() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["edge"]["depends_on"]["auth"]["condition"] = "service_ready"
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    found = "\n".join(compose_errors(broken))
    assert "'helthcheck' was unexpected" in found
    assert "services/edge/depends_on" in found


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def test_start_up_order_waits_on_health_and_migrations() -> None:
    for name, service in services().items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services()[dependency], dependency
            if condition["condition"] == "service_completed_successfully":
                assert services()[dependency].get("restart") == "no"
    for name in ("auth", "keyvault", "audit"):
        migrate = services()[name]["depends_on"]["migrate"]
        assert migrate == {"condition": "service_completed_successfully"}
    for name, service in services().items():
        if service.get("restart") != "no":
            assert "healthcheck" in service, name


def test_required_secrets_fail_fast_and_nothing_secret_is_written_down() -> None:
    text = (DEPLOY.parent / "docker-compose.yml").read_text()
    for name in ("POSTGRES_PASSWORD", "JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY", "KEYVAULT_MASTER_KEYS"):
        assert f"${{{name}:?" in text, name
    for name in ("KEYVAULT_SERVICE_TOKEN", "INTERNAL_SERVICE_TOKEN"):
        assert f"{name}: ${{{name}:?" in text, name
    for service in services().values():
        env = service.get("environment", {})
        assert env.get("NODE_ENV", "production") == "production"
        assert env.get("HOST", "0.0.0.0") == "0.0.0.0"


def holders(variable: str) -> set[str]:
    return {n for n, s in services().items() if variable in s.get("environment", {})}


def test_only_the_auth_service_gets_the_signing_key() -> None:
    assert holders("JWT_PRIVATE_KEY") == {"auth"}


def test_only_keyvault_and_the_workers_get_the_decrypt_token() -> None:
    workers = {name for name in services() if name.startswith("worker-")}
    assert len(workers) == len(PROVIDERS)
    assert holders("KEYVAULT_SERVICE_TOKEN") == {"keyvault", *workers}
    assert holders("INTERNAL_SERVICE_TOKEN") == {"edge", "auth", "keyvault"}


def test_simulator_env_file_matches_the_fleets_simulator_wiring() -> None:
    lines = (DEPLOY / "compose" / "simulator.env").read_text().splitlines()
    entries = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert entries.pop("COMPOSE_PROFILES") == "simulator"
    assert entries == simulator_env("http://simulator:3010", tuple(PROVIDERS))
    assert services()["simulator"]["profiles"] == ["simulator"]


def test_prometheus_scrapes_every_fleet_process() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = {f"{name}:{port}" for name, port in APP_PORTS.items()}
    expected |= {
        f"{name}:{WORKER_METRICS_PORT}" for name in services() if name.startswith("worker-")
    }
    assert expected <= targets
    assert all(t.split(":")[0] in services() or t.startswith("localhost") for t in targets)


@pytest.mark.parametrize("metric", DASHBOARD_METRICS)
def test_the_dashboard_charts(metric: str) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gateway.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any(metric in e for e in expressions)


def test_the_dashboard_queries_only_metrics_the_gateway_exposes() -> None:
    dashboard = (DEPLOY / "grafana" / "dashboards" / "gateway.json").read_text()
    queried = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for name in re.findall(r"gateway_[a-z_]+", dashboard)
    }
    defined = "".join((DEPLOY.parent / path).read_text() for path in METRIC_SOURCES)
    assert {name for name in queried if f'"{name}' not in defined} == set()


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    grafana = services()["grafana"]
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith(".")
    )
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "gateway.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gateway.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {source["datasources"][0]["uid"]}
