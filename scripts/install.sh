#!/usr/bin/env bash
# Create .venv and install shop from a lock file with hashes (idempotent, fast when done).
#   scripts/install.sh       requirements/run.lock: what running needs (`make run`)
#   scripts/install.sh dev   requirements/dev.lock: that plus the test, bench, lock and audit tools
# Every package comes from the lock, pinned and checked against its hash: nothing is resolved here,
# so a compromised or re-published release on the index cannot slip in. `make lock` rewrites the locks.
set -euo pipefail
cd "$(dirname "$0")/.."
set_name=${1:-run}
case "$set_name" in
  run | dev) ;;
  *) echo "usage: scripts/install.sh [run|dev]" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "shop needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi

lock=requirements/$set_name.lock
stamp=.venv/.installed-$set_name
# Fresh when the stamp is newer than the lock and pyproject.toml (entry points, package data).
fresh() { [ -f "$1" ] && [ ! "$lock" -nt "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
# The dev lock holds every runtime pin at the same version: a dev install serves `make run` too.
if fresh "$stamp" || { [ "$set_name" = run ] && fresh .venv/.installed-dev; }; then
  exit 0
fi

if [ -x .venv/bin/python ]; then
  echo "installing shop's $set_name dependencies into .venv ($lock or pyproject.toml changed)"
else
  took=$([ "$set_name" = run ] && echo "about 30 s" || echo "2 to 3 minutes: test browser driver, plotting")
  echo "installing shop's $set_name dependencies into .venv (first run, $took; again only when the lock changes)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
# shop itself: its dependencies are already there, and its build backend (setuptools) came from the lock.
# (setuptools warns that an editable install imports from the work tree: that is the point.)
PYTHONWARNINGS="ignore:Editable installation" \
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
touch "$stamp"
