"""The Kubernetes manifests, rendered by kustomize, against the official schemas and each other."""

import copy
import json
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from shared.providers import PROVIDERS
from shared.redis_keys import WORKER_GROUP, RedisKeys
from shared.settings import Settings
from tests.deploy.manifests import (
    KUSTOMIZATIONS,
    SCHEMAS,
    Manifest,
    containers,
    of_kind,
    render,
    worker_provider,
)

# The oldest Kubernetes the manifests target, and the newest whose schemas the package ships.
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication.json",
}
HTTP_SERVICES = {"edge": 3001, "auth": 3002, "keyvault": 3003, "audit": 3004}
OVERLAY_NAMESPACE = "ai-gateway-example"
OVERLAY_IMAGE = "registry.example.com/ai-gateway:0.1.0"
SECRETS = "/run/secrets"  # where every pod mounts its secrets volume


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def validate(obj: Manifest, version: str) -> None:
    """Raises unless `obj` is valid for its kind: official schemas, or a pinned CRD schema."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        crd_validator(*key).validate(obj)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


def errors(obj: Manifest, version: str = K8S_VERSIONS[-1]) -> str | None:
    try:
        validate(obj, version)
    except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
        return str(exc.message)
    return None


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_rendered_object_validates(kustomization: str, version: str) -> None:
    objects = render(kustomization)
    assert objects
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": err
        for o in objects
        if (err := errors(o, version)) is not None
    }
    assert problems == {}


def test_the_validators_reject_what_the_api_server_would() -> None:
    objects = render("base")
    deployment = copy.deepcopy(of_kind(objects, "Deployment")["edge"])
    deployment["spec"]["replicas"] = "two"
    assert errors(deployment) is not None
    typo = copy.deepcopy(of_kind(objects, "Deployment")["edge"])
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert errors(typo) is not None
    scaled = copy.deepcopy(of_kind(objects, "ScaledObject")["worker-anthropic"])
    scaled["spec"]["triggers"][0]["metadata"]["pendingEntriesCount"] = 48
    assert errors(scaled) is not None
    del scaled["spec"]["scaleTargetRef"]
    assert errors(scaled) is not None


def test_unknown_kinds_are_not_skipped() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}, "1.29")


def test_every_pod_is_locked_down_and_sized() -> None:
    for obj in [
        *of_kind(render("base"), "Deployment").values(),
        *of_kind(render("base"), "Job").values(),
    ]:
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        for container in containers(obj):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]) == {"requests", "limits"}


def test_each_http_service_has_probes_a_service_and_a_disruption_budget() -> None:
    objects = render("base")
    deployments = of_kind(objects, "Deployment")
    services, budgets = of_kind(objects, "Service"), of_kind(objects, "PodDisruptionBudget")
    config = of_kind(objects, "ConfigMap")["gateway-config"]["data"]
    for name, port in HTTP_SERVICES.items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        (container,) = containers(deployments[name])
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert services[name]["spec"]["ports"][0]["port"] == port
        for selector in (services[name]["spec"]["selector"], budgets[name]["spec"]["selector"]):
            labels = selector.get("matchLabels", selector)
            assert labels.items() <= pod_labels.items()
        if name != "edge":
            assert config[f"{name.upper()}_URL"] == f"http://{name}:{port}"
            assert config[f"{name.upper()}_PORT"] == str(port)
        # Tokens are verified with the public key: without it a pod would fetch the auth
        # service's JWKS, which the NetworkPolicies allow only from the edge and workers.
        assert "JWT_PUBLIC_KEY_FILE" in {e["name"] for e in container.get("env", [])}, name
    assert config["PORT"] == "3001"
    hpa = of_kind(objects, "HorizontalPodAutoscaler")["edge"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "edge"


def worker_deployments() -> dict[str, Manifest]:
    """Provider -> its worker Deployment, in the rendered base."""
    found = {}
    for obj in of_kind(render("base"), "Deployment").values():
        (container,) = containers(obj)
        provider = worker_provider(" ".join(container["command"]))
        if provider:
            found[provider] = obj
    return found


def test_each_worker_pool_has_probes_on_its_metrics_port_and_a_budget() -> None:
    objects = render("base")
    budgets = of_kind(objects, "PodDisruptionBudget")
    config = of_kind(objects, "ConfigMap")["gateway-config"]["data"]
    deployments = worker_deployments()
    assert set(deployments) == set(PROVIDERS)
    for deployment in deployments.values():
        name = deployment["metadata"]["name"]
        (container,) = containers(deployment)
        assert container["ports"] == [
            {"name": "metrics", "containerPort": int(config["METRICS_PORT"])}
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "metrics"}
        # Ready: connected to Redis and consuming (tests/e2e/test_worker_probes.py).
        ready = container["readinessProbe"]["httpGet"]
        assert ready == {"path": "/health/ready", "port": "metrics"}
        budget = budgets[name]["spec"]
        assert budget["maxUnavailable"] == 1
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= pod_labels.items()


def test_each_worker_pool_scales_on_its_own_stream() -> None:
    scaled_objects = of_kind(render("base"), "ScaledObject")
    keys = RedisKeys()
    for provider, deployment in worker_deployments().items():
        name = deployment["metadata"]["name"]
        scaled = scaled_objects[name]
        assert scaled["spec"]["scaleTargetRef"]["name"] == name
        assert scaled["spec"]["minReplicaCount"] >= 1
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["stream"] == keys.jobs(provider)
        assert trigger["metadata"]["consumerGroup"] == WORKER_GROUP
        assert int(trigger["metadata"]["pendingEntriesCount"]) > 0
        assert trigger["authenticationRef"]["name"] in of_kind(
            render("base"), "TriggerAuthentication"
        )
    assert len(scaled_objects) == len(worker_deployments())


def secret_references(obj: Any) -> set[tuple[str, str | None]]:
    """(secret, key) pairs an object reads; key None for a whole-Secret envFrom."""
    found: set[tuple[str, str | None]] = set()
    if isinstance(obj, dict):
        if isinstance(obj.get("secret"), dict):  # a source of a projected volume
            found |= {(obj["secret"]["name"], i["key"]) for i in obj["secret"]["items"]}
        if "secretKeyRef" in obj and not obj["secretKeyRef"].get("optional"):
            found.add((obj["secretKeyRef"]["name"], obj["secretKeyRef"]["key"]))
        if "secretRef" in obj:
            found.add((obj["secretRef"]["name"], None))
        if {"parameter", "name", "key"} <= obj.keys():
            found.add((obj["name"], obj["key"]))
        for value in obj.values():
            found |= secret_references(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= secret_references(item)
    return found


def test_the_secret_template_holds_every_secret_the_base_reads() -> None:
    template = {
        name: set(obj["stringData"])
        for name, obj in of_kind(render("secrets-template"), "Secret").items()
    }
    for secret, key in secret_references(list(render("base"))):
        assert secret in template
        assert key is None or key in template[secret]
    assert of_kind(render("base"), "Secret") == {}


def test_only_keyvault_and_the_workers_read_the_decrypt_token() -> None:
    readers = {
        name
        for kind in ("Deployment", "Job")
        for name, obj in of_kind(render("base"), kind).items()
        if ("gateway-decrypt-token", "KEYVAULT_SERVICE_TOKEN") in secret_references(obj)
    }
    workers = {d["metadata"]["name"] for d in worker_deployments().values()}
    assert readers == {"keyvault", *workers}
    edge = of_kind(render("base"), "Deployment")["edge"]
    assert ("gateway-internal-token", "INTERNAL_SERVICE_TOKEN") in secret_references(edge)


def test_secrets_reach_the_pods_as_mounted_files_only() -> None:
    """Each Secret key a pod reads is a file in its read-only secrets volume, named by the
    setting it holds and handed over as `<SETTING>_FILE`; none is an environment variable."""
    settings = {str(field.alias) for field in Settings.model_fields.values()}
    for kind in ("Deployment", "Job"):
        for name, obj in of_kind(render("base"), kind).items():
            pod = obj["spec"]["template"]["spec"]
            projected = [v for v in pod.get("volumes", []) if "projected" in v]
            if name == "console":  # it holds no secret at all
                assert projected == [], name
                assert all(secret_references(c) == set() for c in containers(obj)), name
                continue
            (volume,) = projected
            assert volume["projected"]["defaultMode"] == 0o440
            assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
            keys = {key for _, key in secret_references(volume)}
            assert keys <= settings, name
            for container in containers(obj):
                assert secret_references(container) == set(), f"{name}: a secret in its env"
                mount = {"name": volume["name"], "mountPath": SECRETS, "readOnly": True}
                assert mount in container["volumeMounts"], name
                files = {
                    e["name"].removesuffix("_FILE"): e["value"]
                    for e in container["env"]
                    if e["name"].endswith("_FILE")
                }
                assert files == {key: f"{SECRETS}/{key}" for key in keys}, name


def test_only_the_edge_and_the_console_are_reachable_from_outside() -> None:
    policies = of_kind(render("base"), "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    from_outside = [
        p
        for p in policies.values()
        for rule in p["spec"].get("ingress", [])
        for peer in rule["from"]
        if "ingress-nginx" in json.dumps(peer)
    ]
    selected = sorted(json.dumps(p["spec"]["podSelector"]) for p in from_outside)
    assert selected == sorted(
        json.dumps({"matchLabels": {"app.kubernetes.io/name": name}})
        for name in ("edge", "console")
    )
    (ingress,) = of_kind(render("base"), "Ingress").values()
    paths = [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    backends = {path["path"]: path["backend"]["service"]["name"] for path in paths}
    # The public API and the console: the edge's /metrics is for Prometheus inside the cluster.
    assert backends == {
        "/api": "edge",
        "/v1": "edge",
        "/health": "edge",
        "/docs": "edge",
        "/openapi.json": "edge",
        "/console": "console",
    }


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions In/NotIn) picks `labels`."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        inside = value in expression["values"]
        if inside != (expression["operator"] == "In"):
            return False
    return True


def test_the_console_reaches_the_edge_alone_and_holds_no_secret() -> None:
    objects = render("base")
    console = of_kind(objects, "Deployment")["console"]
    labels = console["spec"]["template"]["metadata"]["labels"]
    (container,) = containers(console)
    assert container["ports"] == [{"name": "http", "containerPort": 3005}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert secret_references(console) == set()
    config = of_kind(objects, "ConfigMap")["gateway-config"]["data"]
    assert config["EDGE_URL"] == "http://edge:3001"
    assert config["CONSOLE_SECURE_COOKIES"] == "true"
    egress = [
        rule
        for policy in of_kind(objects, "NetworkPolicy").values()
        if "Egress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get("egress", [])
    ]
    open_ports = {port["port"] for rule in egress if "to" not in rule for port in rule["ports"]}
    assert open_ports == {53}  # names only: not Redis, not PostgreSQL
    (to_edge,) = [rule for rule in egress if "to" in rule]
    assert to_edge["to"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "edge"}}}
    ]
    assert to_edge["ports"] == [{"protocol": "TCP", "port": 3001}]


def test_only_the_workers_leave_the_cluster() -> None:
    policies = of_kind(render("base"), "NetworkPolicy")
    deny = policies["default-deny-egress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Egress"]}
    leaving = {
        json.dumps(p["spec"]["podSelector"], sort_keys=True): peer["ipBlock"]
        for p in policies.values()
        for rule in p["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    }
    worker = {"matchLabels": {"app.kubernetes.io/component": "worker"}}
    assert list(leaving) == [json.dumps(worker, sort_keys=True)]
    assert "169.254.0.0/16" in leaving[json.dumps(worker, sort_keys=True)]["except"]
    # A rule without `to` opens its ports to anywhere: only DNS and the datastores' ports.
    anywhere = {
        port["port"]
        for p in policies.values()
        for rule in p["spec"].get("egress", [])
        if "to" not in rule
        for port in rule["ports"]
    }
    assert anywhere == {53, 6379, 5432}
    database_users = policies["database-users-to-postgresql"]["spec"]
    assert database_users["egress"] == [{"ports": [{"protocol": "TCP", "port": 5432}]}]
    (selector,) = database_users["podSelector"]["matchExpressions"]
    assert "worker" not in selector["values"]


def test_the_example_overlay_sets_namespace_image_replicas_and_host() -> None:
    objects = render("overlays/example")
    assert len(objects) == len(render("base"))
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == OVERLAY_NAMESPACE
        else:
            assert obj["metadata"]["namespace"] == OVERLAY_NAMESPACE
        if obj["kind"] in ("Deployment", "Job"):
            assert {c["image"] for c in containers(obj)} == {OVERLAY_IMAGE}
    deployments = of_kind(objects, "Deployment")
    assert deployments["auth"]["spec"]["replicas"] == 3
    assert deployments["keyvault"]["spec"]["replicas"] == 3
    assert of_kind(objects, "Ingress")["edge"]["spec"]["rules"][0]["host"] == "gateway.example.org"
    assert {s["spec"]["maxReplicaCount"] for s in of_kind(objects, "ScaledObject").values()} == {50}


def test_the_redis_cluster_overlay_runs_the_fleet_and_keda_on_a_cluster() -> None:
    objects = render("overlays/redis-cluster")
    assert len(objects) == len(render("base"))
    config = of_kind(objects, "ConfigMap")["gateway-config"]["data"]
    # REDIS_URL comes from the gateway-datastores Secret the operator fills in.
    operator_secret = {"REDIS_URL": "redis://redis-cluster.redis:6379"}
    assert Settings.model_validate({**config, **operator_secret}).redis_cluster
    keys = RedisKeys()
    for provider, deployment in worker_deployments().items():
        (trigger,) = of_kind(objects, "ScaledObject")[deployment["metadata"]["name"]]["spec"][
            "triggers"
        ]
        assert trigger["type"] == "redis-cluster-streams"
        assert trigger["metadata"]["stream"] == keys.jobs(provider)
        assert "databaseIndex" not in trigger["metadata"]
    (auth,) = of_kind(objects, "TriggerAuthentication").values()
    assert {"parameter": "addresses", "name": "gateway-datastores", "key": "REDIS_ADDRESSES"} in (
        auth["spec"]["secretTargetRef"]
    )
