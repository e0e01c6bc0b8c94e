#!/usr/bin/env bash
# `make run`: the whole shop on this machine — web, worker and Flower (no beat:
# maintenance runs inside the workers) —
# with SQLite under SHOP_VAR_DIR (var/) unless DATABASE_URL says otherwise, and the Redis at
# REDIS_URL, or a private redis-server on a free port when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."
var=${SHOP_VAR_DIR:-var}  # the app keeps its SQLite file, mail and invoices there too
mkdir -p "$var"
export PATH="$PWD/.venv/bin:$PATH"

# Credentials: generated once, kept under $var (0600, never in the repository).
. scripts/local-secrets.sh "$var"
# The bearer token of GET /metrics (closed without one), kept like the others.
[ -s "$var/metrics-token" ] || (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$var/metrics-token")
export METRICS_TOKEN=${METRICS_TOKEN:-$(cat "$var/metrics-token")}
export SHOP_PORT=${SHOP_PORT:-5000}
export FLOWER_PORT=${FLOWER_PORT:-5555}
export FLOWER_URL=${FLOWER_URL:-http://127.0.0.1:$FLOWER_PORT}
# Links in emails follow the port this shop really listens on.
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$SHOP_PORT}

redis_answers() { python3 - "$1" <<'PY'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
}

# Invoice fonts for names outside Latin-1 (Debian's packages; the default paths
# of INVOICE_FONT and INVOICE_FALLBACK_FONT). Without them only such invoices fail.
fonts=()
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || fonts+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || fonts+=(fonts-droid-fallback)
if [ ${#fonts[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing the invoice fonts: ${fonts[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${fonts[@]}" >/dev/null
  else
    echo "warning: ${fonts[*]} missing: invoices naming customers outside Latin-1 will fail (sudo apt-get install ${fonts[*]})" >&2
  fi
fi

procfile=$var/Procfile
: > "$procfile"
REDIS_URL=${REDIS_URL:-redis://localhost:6379/0}
if redis_answers "$REDIS_URL"; then
  echo "using Redis at $REDIS_URL"
else
  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "no Redis answers at $REDIS_URL and redis-server is missing: installing it (apt-get)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      echo "No Redis answers at $REDIS_URL and redis-server is not installed." >&2
      echo "Install it (sudo apt-get install redis-server), or point REDIS_URL at a running Redis." >&2
      exit 1
    fi
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis_dir=$(cd "$var" && pwd)/redis
  mkdir -p "$redis_dir"
  # appendonly: accepted work in the queues survives a restart of this Redis.
  echo "redis: redis-server --port $port --bind 127.0.0.1 --dir $redis_dir --appendonly yes --save ''" >> "$procfile"
  REDIS_URL=redis://127.0.0.1:$port/0
  echo "starting a private redis-server at $REDIS_URL"
fi
export REDIS_URL

flask --app shop db upgrade
flask --app shop seed

cat >> "$procfile" <<PROCS
web: flask --app shop run --host 127.0.0.1 --port $SHOP_PORT
worker: celery -A tasks worker -Q express,payments,orders,fulfilment -c 4 -l INFO
flower: celery -A tasks flower --address=127.0.0.1 --port=$FLOWER_PORT --max-tasks=10000
PROCS

cat <<MSG

  shop     http://127.0.0.1:$SHOP_PORT/
  admin    http://127.0.0.1:$SHOP_PORT/admin        token: $ADMIN_TOKEN
  Flower   http://127.0.0.1:$FLOWER_PORT/           user: admin  password: $ADMIN_TOKEN
  metrics  curl -H "Authorization: Bearer $METRICS_TOKEN" http://127.0.0.1:$SHOP_PORT/metrics
  API      curl -X POST http://127.0.0.1:$SHOP_PORT/orders -H 'Content-Type: application/json' -d @docs/example-order.json

  Ctrl-C stops everything.

MSG
# Ctrl-C reaches honcho and every process it started (one foreground process
# group); honcho stops them all and exits 130. That is how a person ends
# `make run`, not a failure: exit 0 then, and keep any other status.
trap ':' INT
status=0
honcho start -f "$procfile" -d "$PWD" || status=$?
[ "$status" -ne 130 ] || status=0
exit "$status"
