# Thin targets: each calls one script. See README.md.
# `make run` installs requirements/run.lock (what running needs); every other target requirements/dev.lock.
.PHONY: run test test-fast bench bench-quick install install-dev lint lock audit

run: install
	scripts/run.sh

test: install-dev
	scripts/test.sh $(ARGS)

test-fast: install-dev
	scripts/test.sh --fast

bench: install-dev
	scripts/bench.sh

bench-quick: install-dev
	scripts/bench.sh --quick

install:
	scripts/install.sh run

install-dev:
	scripts/install.sh dev

lint: install-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Regenerate requirements/*.lock after a change to pyproject.toml; existing pins are kept
# (make lock ARGS=--upgrade, or ARGS="--upgrade-package werkzeug", to move them).
lock: install-dev
	scripts/lock.sh $(ARGS)

# Known vulnerabilities in the pinned versions (CI runs it before the tests).
audit: install-dev
	.venv/bin/python scripts/audit.py
