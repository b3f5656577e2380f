#!/usr/bin/env bash
# Installs what the tests start or drive on this machine, when it is missing: the PostgreSQL server binaries
# (initdb, pg_ctl), redis-server, and Debian's chromium (a real browser for the report). Needs root or sudo.
set -euo pipefail
have_postgres() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
missing=()
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing what the tests need: ${missing[*]} (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi
have_postgres
command -v redis-server >/dev/null
command -v chromium >/dev/null
