#!/usr/bin/env bash
# Installs the server binaries the tests start on loopback (PostgreSQL), when they are missing. Needs root or sudo.
set -euo pipefail
have_postgres() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if ! have_postgres; then
  echo "PostgreSQL server binaries missing: installing them (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql >/dev/null
fi
have_postgres
