# Holdout — the two commands a newcomer needs are `make demo` and `make test`.
# Both build .venv from scratch on a machine with Python 3.11+ and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
PORT   ?= 8000
STAMP  := $(VENV)/.installed
# Local development: the embedded defaults (a development secret key, SQLite under var/, the
# Redis that `manage.py serve` starts) and DEBUG on. Without it the settings start in production mode and ask for
# SECRET_KEY and DATABASE_URL, as gunicorn in production does.
export HOLDOUT_DEV ?= 1

.PHONY: help install demo serve worker migrate seed test test-fast lint format bench clean

help:
	@echo "make demo    install, migrate, seed demo challenges, serve on http://127.0.0.1:$(PORT) with a worker"
	@echo "make test    install and run the whole test suite"
	@echo "make serve   run the web server only      make worker  run a Celery worker only"
	@echo "make lint    ruff check + format check    make bench   run the scoring benchmarks"

$(STAMP): requirements.txt requirements-models.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Holdout needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(MANAGE) migrate --noinput

seed: migrate
	$(MANAGE) seed_demo

# Redis, a worker and the web server together on the embedded default (SQLite + a Redis server
# on a unix socket under var/). One supervising process owns the children: it restarts one that
# crashes, and Ctrl-C stops them all.
demo: seed
	$(MANAGE) serve --port $(PORT)

serve: migrate
	$(MANAGE) runserver 127.0.0.1:$(PORT)

# Needs a broker already running: CELERY_BROKER_URL, or the one `make demo` starts.
worker: install
	$(BIN)/celery -A config.celery_app worker --beat --schedule var/celerybeat-schedule \
		--queues scoring,default --loglevel INFO

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything except the tests that start services or a browser.
test-fast: install
	$(BIN)/python -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Ratios against a baseline measured in the same run; see bench/README.md (load: bench/load.py).
bench: install
	$(BIN)/python bench/engine_vs_floor.py
	$(BIN)/python bench/model_scoring.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
