#!/usr/bin/env bash
# The whole suite: unit, integration, chaos, browser. Same command locally and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh
exec .venv/bin/pytest "$@"
