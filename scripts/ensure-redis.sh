#!/usr/bin/env bash
# Make sure Debian's redis-server binary is on this machine (the Celery broker of tests/distributed);
# install it with apt if not. The tests start and stop their own server on a free port; this only installs.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server found: $(command -v redis-server)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing and apt-get is not available: install a Redis server (redis-server)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "Installing redis-server with apt-get"
$SUDO apt-get update -qq
# The package's own service is not needed (the tests start their own server): do not leave it running.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    $SUDO systemctl stop redis-server || true
fi
echo "redis-server installed: $(command -v redis-server)"
