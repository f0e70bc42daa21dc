# The two commands: `make run` (serve the product) and `make test` (the whole suite).
# Both set everything up on a machine with only Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup bench lint services-up services-down clean openapi

run: setup
	$(PY) tools/dev.py run

test: setup
	$(PY) tools/dev.py test

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt tools/sysdeps.py
	$(PYTHON) tools/sysdeps.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

bench: setup
	$(PYTHON) tools/sysdeps.py --bench
	$(PY) benchmarks/run.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

services-up: setup
	$(PY) tools/services.py up

services-down: setup
	$(PY) tools/services.py down

clean: services-down
	rm -rf .d2r

openapi: setup
	$(PY) tools/openapi.py
