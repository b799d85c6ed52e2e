# The two commands a user needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The manifest scanner (checkov) in a virtualenv of its own: its pins clash with the dev ones.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
# Where `make coverage` keeps its data and HTML report (git-ignored).
COVERAGE_DIR := .data/coverage

.PHONY: install scanner run test test-cluster coverage bench loadtest soak lint lock audit clean up down

install: $(STAMP)

$(STAMP): requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	touch $(STAMP)

# Installed once for tests/deploy/test_scanner.py; without it (no package registry) that test
# skips and says why, and the rest of the suite runs.
scanner: $(SCAN_STAMP)

$(SCAN_STAMP): requirements-scan.lock
	@{ $(PYTHON) -m venv $(SCAN_VENV) \
		&& $(SCAN_VENV)/bin/python -m pip install --quiet --upgrade pip \
		&& $(SCAN_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps \
			-r requirements-scan.lock \
		&& touch $(SCAN_STAMP); } \
		|| echo "checkov could not be installed into $(SCAN_VENV): the manifest scan will skip"

run: $(STAMP)
	$(PY) -m services.fleet

# The tests that matter again on a Redis Cluster of three masters started for the run (they
# skip, saying why, where redis-server or redis-cli is missing): limits, chat, queue shards,
# breaker and fallbacks, crash recovery, audit.
CLUSTER_TESTS = tests/edge/test_admission.py tests/edge/test_spend_admission.py \
	tests/edge/test_breaker.py tests/e2e/test_chat.py tests/e2e/test_admission.py \
	tests/e2e/test_queue_shards.py tests/e2e/test_reliability_workers.py \
	tests/e2e/test_worker_recovery.py tests/e2e/test_audit.py

test: $(STAMP) | $(SCAN_STAMP)
	$(PY) -m pytest
	$(PY) -m pytest --redis-cluster $(CLUSTER_TESTS)

test-cluster: $(STAMP)
	$(PY) -m pytest --redis-cluster $(CLUSTER_TESTS)

# The suite under coverage.py, with every Python process it starts measured too (the fleet's
# services, workers, load generator: `patch = ["subprocess"]` in pyproject.toml), combined
# into one figure: prints the total and the 15 least-covered modules, writes the HTML report
# to .data/coverage/html/index.html. Arguments for pytest: PYTEST_ARGS="tests/unit -x".
coverage: $(STAMP) | $(SCAN_STAMP)
	rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	status=0; COVERAGE_FILE=$(CURDIR)/$(COVERAGE_DIR)/data \
		$(PY) -m coverage run -m pytest $(PYTEST_ARGS) || status=$$?; \
	$(PY) -m coverage combine --quiet --data-file=$(COVERAGE_DIR)/data $(COVERAGE_DIR) \
	&& $(PY) -m coverage report --data-file=$(COVERAGE_DIR)/data --sort=cover \
		> $(COVERAGE_DIR)/report.txt \
	&& $(PY) -m coverage html --data-file=$(COVERAGE_DIR)/data -q -d $(COVERAGE_DIR)/html \
	&& head -n 17 $(COVERAGE_DIR)/report.txt && echo "..." && grep "^TOTAL" $(COVERAGE_DIR)/report.txt \
	&& echo "HTML report: $(COVERAGE_DIR)/html/index.html" || status=1; \
	exit $$status

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
	$(VENV)/bin/uv pip compile --group pyproject.toml:scan --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 -q -o requirements-scan.lock

# The whole fleet in containers (docker-compose.yml; secrets from the shell or .env).
up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache .ruff_cache .mypy_cache
