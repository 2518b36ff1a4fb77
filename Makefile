# The two commands of the README: `make site` (the main job) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup site test unit lint bench clean

setup:
	@scripts/setup

site: setup
	@scripts/site

test: setup
	@scripts/test

unit: setup
	$(PY) -m pytest tests/unit -q

lint: setup
	$(VENV)/bin/ruff check core tests bench

bench: setup
	$(PY) bench/run.py
