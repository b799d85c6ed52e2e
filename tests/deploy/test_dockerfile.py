"""The Dockerfile: pinned base, hash-checked wheels, a non-root final stage without build tools."""

import re

from tests.deploy.manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
# An exact patch release (python:3.11.14-slim-bookworm), or any tag pinned by digest.
PINNED = re.compile(r"^python:3\.11\.\d+-slim-[a-z]+$|@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(r"\b(apt-get|apk|gcc|g\+\+|make|build-essential|pip install)\b")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_base_image_is_pinned() -> None:
    args = dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)
    for stage in stages():
        image = stage[0][1].split()[-3] if " AS " in stage[0][1] else stage[0][1].split()[-1]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert PINNED.search(image), image


def test_dependencies_install_hash_checked_from_the_runtime_lock() -> None:
    (install,) = [a for i, a in instructions() if i == "RUN" and "pip install" in a]
    assert "--require-hashes" in install
    assert "-r /tmp/requirements.lock" in install


def test_final_stage_is_non_root_and_has_no_build_tools() -> None:
    final = stages()[-1]
    users = [a for i, a in final if i == "USER"]
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root UID, so runAsNonRoot can check"
    assert not any(BUILD_TOOLS.search(a) for i, a in final if i == "RUN")
    copies = [a for i, a in final if i == "COPY"]
    assert all(a.startswith("--from=builder") for a in copies)
    env = " ".join(a for i, a in final if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    (healthcheck,) = [a for i, a in final if i == "HEALTHCHECK"]
    # Exec form, so it needs no shell; what it checks: tests/e2e/test_image_healthcheck.py.
    assert healthcheck.endswith('CMD ["python", "-m", "shared.healthcheck"]')
    assert "METRICS_PORT=9100" in env  # where a worker pool's /health/live answers


def test_the_build_context_holds_only_the_lock_and_the_code() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    assert {r for r in rules if r.startswith("!")} == {
        "!requirements.lock",
        "!services/",
        "!shared/",
    }
