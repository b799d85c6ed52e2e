"""Supply chain: what is installed is exactly what was locked, and listed in an SBOM.

Every dependency is pinned to one version with its hashes (`make lock`), installed with
`--require-hashes` (`make install`, the Dockerfile), the image's base is pinned by digest and
runs as a non-root user, and `make audit` writes a CycloneDX SBOM listing every locked package.
"""

import json
import re
import subprocess
from pathlib import Path

from tests.deploy.test_dockerfile import instructions, stages

ROOT = Path(__file__).parents[2]
LOCKS = ("requirements.lock", "requirements-dev.lock")
# name[extras]==version [; marker] --hash=sha256:... (one or more)
_PINNED = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]+\])?==([^\s;]+)(\s*;[^-]+)?"
    r"((\s+--hash=sha256:[0-9a-f]{64})+)$"
)


def entries(lock: str) -> list[str]:
    """The lock's requirement entries: continuation lines joined, comment lines dropped."""
    text = re.sub(r"\s*\\\n\s*", " ", (ROOT / lock).read_text())
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def locked(lock: str) -> dict[str, str]:
    """Normalised package name -> pinned version; every entry must be `==` with hashes."""
    pins = {}
    for entry in entries(lock):
        match = _PINNED.match(entry)
        assert match, f"{lock}: not pinned with == and --hash: {entry[:120]}"
        pins[normalised(match.group(1))] = match.group(3)
    return pins


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_locked_dependency_is_pinned_with_hashes() -> None:
    for lock in LOCKS:
        assert len(locked(lock)) > 10, lock


def test_installs_refuse_anything_unhashed() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and " -r " in line]
    assert installs
    assert all("--require-hashes" in line for line in installs), installs
    (docker_install,) = [a for i, a in instructions() if i == "RUN" and "pip install" in a]
    assert "--require-hashes" in docker_install


def test_the_image_base_is_pinned_by_digest_and_runs_as_non_root() -> None:
    args = dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)
    for stage in stages():
        image = next(word for word in stage[0][1].split() if not word.startswith("--"))
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), image
    users = [a for i, a in stages()[-1] if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users


def test_make_audit_writes_an_sbom_of_every_locked_package(tmp_path: Path) -> None:
    sbom = tmp_path / "sbom.cdx.json"
    # `-o` keeps make from reinstalling the virtualenv when its stamp looks old.
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "audit", f"SBOM={sbom}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(sbom.read_text())
    assert document["bomFormat"] == "CycloneDX"
    listed = {normalised(c["name"]): c["version"] for c in document["components"]}
    assert listed == locked("requirements.lock")
    printed = set(result.stdout.split("\n"))
    assert all(f"{c['name']} {c['version']}" in printed for c in document["components"])
