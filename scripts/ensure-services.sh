#!/usr/bin/env bash
# Make sure what the tests need is installed and running: redis-server (binary:
# tests start their own), PostgreSQL on 127.0.0.1:5432, Chromium, docker-compose,
# openssl (the TLS tests' throw-away CA) and the invoice fonts (non-Latin names).
# Installs with apt-get when run as root; otherwise says what is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v pg_ctlcluster >/dev/null || command -v pg_ctl >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v openssl >/dev/null || need+=(openssl)
# The default paths of INVOICE_FONT / INVOICE_BOLD_FONT and INVOICE_FALLBACK_FONT.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || need+=(fonts-droid-fallback)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} — install them (e.g. sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
PGHOST=127.0.0.1
if ! pg_isready -q -h "$PGHOST" -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -n "$version" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p 5432 && break; sleep 1; done
fi
pg_isready -q -h "$PGHOST" -p 5432 || { echo "PostgreSQL is not answering on $PGHOST:5432" >&2; exit 1; }
# The tests connect as postgres over loopback without a password. A fresh
# Debian install asks for one there: allow the postgres role on 127.0.0.1 only.
if ! psql -h "$PGHOST" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf 2>/dev/null | sort -V | tail -1)
  if [ -n "$hba" ] && ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
    echo "allowing the postgres role on 127.0.0.1 without a password ($hba)"
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    version=$(basename "$(dirname "$(dirname "$hba")")")
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  fi
fi
# ...and to a database named "test".
if ! psql -h "$PGHOST" -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  su postgres -c "psql -c 'select 1'" >/dev/null 2>&1 && su postgres -c "createdb test" 2>/dev/null || true
  psql -h "$PGHOST" -U postgres -d test -c 'select 1' >/dev/null || {
    echo "cannot connect as postgres to database test on $PGHOST (set TEST_POSTGRES_URL)" >&2; exit 1; }
fi
