"""The rendered Kubernetes manifests (base and example overlay) and the Dockerfile through a
security scanner, checkov, so a regression is caught here rather than by an adopter's CI.

checkov runs from its own virtualenv (`make scanner`, which `make test` runs first: its pins
would downgrade the dev dependencies). Where it is not installed the test skips and says why.
A deliberately broken copy of a worker Deployment is scanned beside the real manifests, to show
the scanner sees the two findings this project fixed: secrets in environment variables and a
worker without a readiness probe.
"""

import copy
import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT, containers, of_kind, render

SCANNER = Path(os.environ.get("CHECKOV") or ROOT / ".venv-scan" / "bin" / "checkov")
RENDERED = {"base.yaml": "base", "example.yaml": "overlays/example"}
REGRESSION = "regression.yaml"
# Offline (no download of checks or guidelines), every check of both frameworks.
OPTIONS = ["--framework", "kubernetes", "dockerfile", "--output", "json", "--compact"]
OPTIONS += ["--skip-download"]
# What the scanner flags and an operator's overlay decides, with the reason it is left.
ACCEPTED = {
    "CKV_K8S_14": "image tag: the base names the image without a tag; an overlay sets the "
    "release (`images:`), as the example overlay does",
    "CKV_K8S_43": "image digest: an overlay pins the digest of the release it deploys "
    "(`images: digest:`); the example cannot know a real one",
    "CKV_K8S_15": "imagePullPolicy Always: with a pinned tag or digest the default pulls that "
    "very image; Always makes every pod start depend on the registry",
    "CKV_DOCKER_7": "base image tag: FROM uses ARG PYTHON_IMAGE, pinned to a release and a "
    "digest (test_dockerfile.py); the scanner does not resolve ARGs",
}

Findings = dict[str, set[str]]  # file -> check ids that failed on it


def broken_worker() -> dict[str, Any]:
    """A worker Deployment as it was before: its secret in env, no readiness probe."""
    worker = copy.deepcopy(of_kind(render("base"), "Deployment")["worker-anthropic"])
    worker["metadata"]["name"] = "regression-worker"
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    del container["readinessProbe"]
    container["env"].append(
        {
            "name": "ANTHROPIC_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "gateway-provider-keys", "key": "X"}},
        }
    )
    return worker


def scan(folder: Path) -> list[dict[str, Any]]:
    for name, kustomization in RENDERED.items():
        (folder / name).write_text(yaml.safe_dump_all(render(kustomization)))
    (folder / REGRESSION).write_text(yaml.safe_dump(broken_worker()))
    (folder / "image").mkdir()
    shutil.copy(ROOT / "Dockerfile", folder / "image" / "Dockerfile")
    result = subprocess.run(
        [str(SCANNER), "--directory", str(folder), *OPTIONS],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if not SCANNER.exists():
        pytest.skip(
            f"checkov is not installed at {SCANNER}: `make scanner` installs it (it needs the "
            "package registry); the manifests were not scanned"
        )
    return scan(tmp_path_factory.mktemp("scan"))


def findings(reports: list[dict[str, Any]]) -> Findings:
    found: Findings = defaultdict(set)
    for report in reports:
        for check in report["results"]["failed_checks"]:
            found[check["file_path"].lstrip("/")].add(check["check_id"])
    return found


def test_the_scanner_read_every_manifest_and_the_dockerfile(reports: list[dict[str, Any]]) -> None:
    summaries = {report["check_type"]: report["summary"] for report in reports}
    assert set(summaries) == {"kubernetes", "dockerfile"}
    # It counts each object and each container of a pod, the broken worker's included.
    scanned = [*(o for k in RENDERED.values() for o in render(k)), broken_worker()]
    pods = [o for o in scanned if o["kind"] in ("Deployment", "Job")]
    assert summaries["kubernetes"]["resource_count"] == len(scanned) + sum(
        len(containers(o)) for o in pods
    )
    assert summaries["dockerfile"]["resource_count"] == 1
    assert all(s["parsing_errors"] == 0 and s["passed"] > 0 for s in summaries.values())


def test_the_scanner_catches_secrets_in_env_and_a_worker_without_readiness(
    reports: list[dict[str, Any]],
) -> None:
    assert {"CKV_K8S_35", "CKV_K8S_9"} <= findings(reports)[REGRESSION]


def test_nothing_is_flagged_beyond_what_an_operators_overlay_decides(
    reports: list[dict[str, Any]],
) -> None:
    flagged = {f: ids for f, ids in findings(reports).items() if f != REGRESSION}
    names = {
        check["check_id"]: check["check_name"]
        for report in reports
        for check in report["results"]["failed_checks"]
    }
    unexpected = {f: {i: names[i] for i in ids - ACCEPTED.keys()} for f, ids in flagged.items()}
    assert {f: found for f, found in unexpected.items() if found} == {}
    # Each accepted finding is still made: one that no longer is leaves the list.
    assert set().union(*flagged.values()) == ACCEPTED.keys()
