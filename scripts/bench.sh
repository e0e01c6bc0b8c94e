#!/usr/bin/env bash
# `make bench` / `make bench-quick`: the benchmarks against their baselines, with a report.
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres) and redis-server on PATH; starts and
# stops everything else itself. See README.md, section Benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench "$@"
