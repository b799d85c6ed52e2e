# The two commands a user needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench loadtest soak lint lock audit clean up down

install: $(STAMP)

$(STAMP): requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m services.fleet

test: $(STAMP)
	$(PY) -m pytest

# The gateway against its upstream called directly; writes docs/benchmarks.md (BENCH_REQUESTS=N).
bench: $(STAMP)
	$(PY) -m bench

# Locust load on the queue: throughput, latency, errors, queue depth; fails over 1 % errors.
# Settings: LOADTEST_USERS, LOADTEST_DURATION, LOADTEST_URL, LOADTEST_MIX ... (bench/loadtest_config.py).
loadtest: $(STAMP)
	$(PY) -m bench.loadtest

# The same load for 10 minutes (LOADTEST_DURATION): flags edge or worker memory growth > 10 %.
soak: $(STAMP)
	LOADTEST_SOAK=1 $(PY) -m bench.loadtest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services shared bench

# The SBOM (CycloneDX JSON, SBOM=sbom.cdx.json) of what the image installs (requirements.lock),
# then every package in it with its version.
SBOM ?= sbom.cdx.json
audit: $(STAMP)
	PYTHONWARNINGS=ignore $(VENV)/bin/cyclonedx-py requirements requirements.lock \
		--pyproject pyproject.toml --output-reproducible -o $(SBOM)
	$(PY) -c 'import json, sys; [print(c["name"], c["version"]) for c in json.load(open(sys.argv[1]))["components"]]' $(SBOM)

# Re-pin every dependency (with hashes) after changing pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 -q -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 -q -o requirements-dev.lock

# The whole fleet in containers (docker-compose.yml; secrets from the shell or .env).
up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
