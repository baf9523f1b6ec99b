#!/bin/sh
# System packages some tests need: Mosquitto (the service on an external broker),
# PostgreSQL (the PostgreSQL store; tests start throwaway servers of their own) and
# Chromium with its driver (the console's browser tests run it headless).
set -e
missing=""
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    missing="$missing mosquitto"
fi
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing="$missing postgresql"
fi
if ! command -v chromium >/dev/null 2>&1; then
    missing="$missing chromium"
fi
if ! command -v chromedriver >/dev/null 2>&1; then
    missing="$missing chromium-driver"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "system-deps: install the Debian packages$missing (needs root)" >&2
    exit 1
fi
# The Debian package starts a cluster of its own; the project never uses it.
$SUDO apt-get install -y -q $missing >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q $missing >/dev/null
}
