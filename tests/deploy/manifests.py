"""Loading what the deployment files declare: rendered kustomizations, compose, the Dockerfile.

Rendering uses a real kustomize: the `kustomize` binary when it is on PATH, else the one built
into `kubectl` (`kubectl kustomize`, as on this project's machines).
"""

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = DEPLOY / "schemas"
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUSTOMIZATIONS = ("base", "overlays/example", "overlays/redis-cluster", "secrets-template")

Manifest = dict[str, Any]

_MODULE = re.compile(r"python -m (services\.[a-z_]+)")
_PROVIDER = re.compile(r"--provider (\S+)")


def kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise RuntimeError("rendering the manifests needs `kustomize` or `kubectl` on PATH")


@cache
def render(kustomization: str) -> tuple[Manifest, ...]:
    """Every object `kustomize build deploy/k8s/<kustomization>` prints."""
    result = subprocess.run(
        [*kustomize_command(), str(K8S / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: tuple[Manifest, ...], kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(obj: Manifest) -> list[Manifest]:
    spec: Manifest = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@cache
def compose() -> Manifest:
    """docker-compose.yml with its YAML anchors and merge keys resolved, as compose reads it."""
    loaded: Manifest = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def command_line(command: list[str] | str) -> str:
    """A container command as one line: an exec list, or `sh -c` with its script."""
    return command if isinstance(command, str) else " ".join(command)


def commands() -> list[tuple[str, str]]:
    """(where, command line) of every fleet process compose and the rendered k8s base run."""
    found = [
        (f"compose:{name}", command_line(service["command"]))
        for name, service in compose()["services"].items()
        if "command" in service and "services." in command_line(service["command"])
    ]
    for obj in render("base"):
        if obj["kind"] in ("Deployment", "Job"):
            found += [
                (f"k8s:{obj['metadata']['name']}", command_line(c["command"]))
                for c in containers(obj)
            ]
    return found


def modules(command: str) -> list[str]:
    return _MODULE.findall(command)


def worker_provider(command: str) -> str | None:
    match = _PROVIDER.search(command)
    return match.group(1) if match else None
