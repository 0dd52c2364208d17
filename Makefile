# `make run` sets everything up and starts TitanFlow with the Meta simulator; `make test` sets up and
# runs the linters and the whole test suite. Both are safe to run again.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE := titanflow.settings

.PHONY: run test setup services browser lint pytest bench clean-demo

run: setup
	$(PY) manage.py load_demo
	$(VENV)/bin/honcho start

test: setup browser lint pytest

setup: $(VENV)/.installed .env services
	$(PY) scripts/ensure_db.py
	$(PY) manage.py migrate --noinput -v 0

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

.env:
	$(PYTHON) scripts/make_env.py

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Tests keep to their own Redis database: a `make run` on the same machine neither takes their
# Celery tasks nor loses its queue and pacing keys to their clean-ups.
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

pytest: $(VENV)/.installed
	REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)

# Starts the Procfile's own processes against the simulator; writes to (and cleans up in) the
# configured database. e.g. BENCH_ARGS="--mps 80 --latency-ms 30" or "--import-rows 50000".
bench: setup
	$(PY) manage.py bench $(BENCH_ARGS)
