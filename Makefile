# Thin targets: each calls one script. See README.md.
.PHONY: run test test-fast bench bench-quick install lint

run: install
	scripts/run.sh

test: install
	scripts/test.sh $(ARGS)

test-fast: install
	scripts/test.sh --fast

bench: install
	scripts/bench.sh

bench-quick: install
	scripts/bench.sh --quick

install:
	scripts/install.sh

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
