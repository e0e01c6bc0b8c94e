#!/usr/bin/env bash
# `make lock`: rewrite requirements/dev.lock and requirements/run.lock from pyproject.toml, with a
# hash for every file of every pinned release. Existing pins are kept unless ARGS say otherwise
# (--upgrade, --upgrade-package NAME). run.lock is constrained by dev.lock: one version of each
# package across both, so a dev install also serves `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUSTOM_COMPILE_COMMAND="make lock"
compile() {
  .venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-find-links --no-emit-index-url "$@"
}
compile --extra test --extra bench --extra dev -o requirements/dev.lock "$@" pyproject.toml requirements/build.in
compile -c requirements/dev.lock -o requirements/run.lock "$@" pyproject.toml requirements/build.in
echo "requirements/dev.lock and requirements/run.lock written; commit them with pyproject.toml"
