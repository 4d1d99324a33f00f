#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is at /usr/bin/chromium for the browser test (tests/ui/);
# install it with apt if not. Playwright drives this binary: its own browser download is not used.
# Never fails the build: without apt (or root) the UI test skips and says why.
set -uo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    echo "Chromium found at $CHROMIUM"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing and apt-get is not available: tests/ui will be skipped" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "Chromium is missing and neither root nor sudo is available: tests/ui will be skipped" >&2
        exit 0
    fi
    SUDO="sudo -n"
fi
echo "Installing Chromium with apt-get"
if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; then
    echo "Chromium installed at $CHROMIUM"
else
    echo "Installing Chromium with apt-get failed: tests/ui will be skipped" >&2
fi
exit 0
