#!/bin/sh
# System packages some tests need: Mosquitto, for running the service on an external broker.
set -e
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "system-deps: install the Debian package mosquitto (needs root)" >&2
    exit 1
fi
$SUDO apt-get install -y -q mosquitto >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q mosquitto >/dev/null
}
