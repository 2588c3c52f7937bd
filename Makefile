# Two commands for a fresh machine with only Python 3.11+: `make run` and `make test`.
# Each creates the project's virtualenv on first use and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit test-integration test-e2e schemas schemas-check clean prometheus-tools bench chaos chromium simulate fuzz interfaces

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/wuguan run

# promtool and prometheus (Debian package) for the alert-rule and Prometheus tests; no-op when present.
prometheus-tools:
	./scripts/ensure-prometheus

# Debian's chromium for the finance dashboard test (headless screenshot and DOM); no-op when present.
chromium:
	./scripts/ensure-chromium

# lint-imports first: the house's dependency rules (pyproject.toml, docs/architecture.md).
# The unit tests are pure and CPU-bound: one pytest-xdist worker per core. The integration and
# e2e tests run two at a time whatever the cores: each spends most of its time waiting for the
# brokers, Postgres and workers it starts (two at a time keep ~one of 2 cores busy), which cuts
# their wall time by ~40 % (CI 15.1 -> 11.3 min); more would crowd the workers some tests time.
# Each pytest-xdist worker has a session broker and Postgres of its own (tests/conftest.py).
# Pointed at a shared broker or Postgres (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL) they run one at
# a time: some integration tests count what reaches a topic that two tests would share there.
TEST_PROCESSES := $(if $(KAFKA_BOOTSTRAP_SERVERS)$(DATABASE_URL),,-n 2)
test: $(STAMP) prometheus-tools chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider -n auto tests/unit
	$(BIN)/python -m pytest -p no:cacheprovider $(TEST_PROCESSES) --durations=15 --ignore=tests/unit

test-unit: $(STAMP) prometheus-tools
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider -n auto tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(TEST_PROCESSES) tests/integration

test-e2e: $(STAMP) prometheus-tools chromium
	$(BIN)/python -m pytest -p no:cacheprovider $(TEST_PROCESSES) tests/e2e

schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

# docs/asyncapi.yaml, docs/openapi.json and docs/rules.md, generated from the code (after `make schemas`).
interfaces: $(STAMP)
	$(BIN)/python -m interfaces.generate

clean:
	rm -rf $(VENV) build *.egg-info

# Throughput against the raw aiokafka+asyncpg ceiling, latency, RSS, rebuild rate, py-spy hot
# spots (BENCH_EVENTS=, BENCH_PROFILE=0); writes bench/results/latest.json. Not part of `make test`.
bench: $(STAMP)
	-$(BIN)/python -m pip install --quiet py-spy  # for the profile; the bench skips it when absent
	$(BIN)/python -m bench

# kill -9 workers and restart Postgres during a 100k-input run; compare with an undisturbed run.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

# Issue 4's full simulation: 90 days for 10,000 accounts, pure and through the real worker.
simulate: $(STAMP)
	WUGUAN_SIM_ACCOUNTS=10000 $(BIN)/python -m pytest -p no:cacheprovider -s tests/unit/test_dunning_simulation.py tests/e2e/test_dunning_simulation_e2e.py

# Issue 19's generated hostile input at full size: 20,000 cases (1,819 per input topic, valid
# events interleaved) through the three workers; `make test` runs 200 per topic.
fuzz: $(STAMP)
	WUGUAN_FUZZ_CASES=1819 $(BIN)/python -m pytest -p no:cacheprovider -s tests/e2e/test_generated_inputs.py
