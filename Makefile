# The two commands of the README, and the targets they stand on.
#   make run    create the virtualenv, install everything, start `squeezer serve`
#   make test   install the test tools, lint, check formatting, run the tests
#   make bench  the optimizers against their peers (bench-memory: their peak
#               memory); make bench-api the service
# The tests start the real services they need themselves (a private redis-server,
# moto's S3 server, Celery worker processes) and stop them when they finish.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SYSTEM_PACKAGES := $(VENV)/.system-packages
PORT ?= 8080
DATA_DIR ?= data

.PHONY: run test lint venv system-packages bench-api clean

run: venv system-packages
	$(VENV)/bin/squeezer serve --port $(PORT) --data-dir $(DATA_DIR)

test: venv system-packages lint
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

venv: $(INSTALLED)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[test]'
	touch $@

# Programs the optimizers run that no Python wheel provides.
system-packages: $(SYSTEM_PACKAGES)

$(SYSTEM_PACKAGES): deploy/install-system-packages.sh | $(PY)
	sh deploy/install-system-packages.sh
	touch $@

# What the service adds to the optimizers, and how it scales from 1 to 2 worker
# processes; the report goes to bench-results/api.md. Not part of `make test`.
BENCH_API_ARGS ?=
bench-api: venv system-packages
	$(PY) -m tests.benchmarks.api $(BENCH_API_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

-include tests/benchmarks/bench.mk
