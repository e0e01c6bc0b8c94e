#!/usr/bin/env bash
# `make test`: the whole suite (unit, integration, chaos, browser), fast tier first,
# so that a quick failure ends a long run early. `make test-fast` (--fast): the
# unit tests and the in-process tests against a real database, under a minute.
# With other arguments: pytest with them (`make test ARGS="tests/unit -q"`).
set -euo pipefail
cd "$(dirname "$0")/.."
FAST=(
  tests/unit
  tests/integration/test_checkout_api.py
  tests/integration/test_idempotent_steps.py
  tests/integration/test_cancellation.py
  tests/integration/test_order_costs.py
  tests/integration/test_run_lease.py
  tests/integration/test_migrations.py
  tests/integration/test_openapi_fuzz.py
)
if [ "${1:-}" = "--fast" ]; then
  exec .venv/bin/pytest "${FAST[@]}"
fi
scripts/ensure-services.sh
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
.venv/bin/pytest "${FAST[@]}"
exec .venv/bin/pytest tests $(printf -- '--ignore=%s ' "${FAST[@]}")
