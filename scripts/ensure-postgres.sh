#!/usr/bin/env bash
# Make sure a PostgreSQL server binary (initdb, pg_ctl) is on this machine; install it with apt if not.
# The tests start and stop their own throwaway server (tests/support/postgres.py); this only installs.
set -euo pipefail

find_bindir() {
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    return 1
}

if bindir=$(find_bindir); then
    echo "PostgreSQL found in $bindir"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is missing and apt-get is not available: install a PostgreSQL server (initdb, pg_ctl)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "Installing PostgreSQL with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
bindir=$(find_bindir)
echo "PostgreSQL installed in $bindir"
