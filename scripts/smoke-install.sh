#!/usr/bin/env bash
# Installs the project as a user would, into clean venvs, and checks it runs:
#   1. `pip install` without extras: every module imports, `iotjobs --help`, `--version`,
#      each subcommand's --help, and `iotjobs serve` up to its ready line and a clean
#      Ctrl-C; nothing generic (broker, schemas, ...) lands in site-packages.
#   2. A device: the package with --no-deps plus the `device` extra's requirements:
#      `iotjobs device --help` works and the device SDK loads nothing of the server.
# `make test` runs it. It reuses pip's cache and reaches nothing but the package index.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
GENERIC_NAMES="broker device_sdk jobs_service schemas simulator"
SERVER_MODULES="amqtt uvicorn starlette botocore boto3 croniter cryptography pydantic regex transitions sqlite3"

work=$(mktemp -d "${TMPDIR:-/tmp}/iotjobs-smoke.XXXXXX")
# Away from the source tree, so that nothing there is on the path.
cd "$work"
serve_pid=""
cleanup() {
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

say() { echo "smoke-install: [${SECONDS}s] $*"; }
fail() {
    echo "smoke-install: FAILED: $*" >&2
    exit 1
}

# Venvs without a pip of their own, filled by this Python's pip: ensurepip costs seconds per venv.
if "$PYTHON" -m pip --version >/dev/null 2>&1; then
    new_venv() { "$PYTHON" -m venv --without-pip "$1"; }
    pip_in() {
        local venv=$1
        shift
        "$PYTHON" -m pip --python "$venv/bin/python" "$@"
    }
else
    new_venv() { "$PYTHON" -m venv "$1"; }
    pip_in() {
        local venv=$1
        shift
        "$venv/bin/pip" "$@"
    }
fi

# The environment of a user who has set nothing.
for variable in $(env | grep -o '^IOTJOBS_[A-Z_]*' || true); do unset "$variable"; done

say "building the wheel from the source tree"
# From a copy of what git tracks (or would), so files left in build/ by an earlier build never get in.
mkdir "$work/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$work/src"
else
    cp -R "$ROOT/." "$work/src"
fi
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/iot_jobs_bridge-*.whl)

say "pip install $(basename "$wheel") (no extras) into a clean venv"
# --no-compile: byte-compiling every file of botocore and the rest is most of an install's time.
new_venv "$work/full"
pip_in "$work/full" install --quiet --no-compile "$wheel"
pip_in "$work/full" check >/dev/null || fail "pip check: $(pip_in "$work/full" check)"
site=$("$work/full/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for name in $GENERIC_NAMES; do
    if [ -e "$site/$name" ] || [ -e "$site/$name.py" ]; then
        fail "the install put a top-level '$name' into site-packages"
    fi
done
[ -d "$site/iot_jobs_bridge" ] || fail "no iot_jobs_bridge in $site"

say "every module imports with the declared dependencies alone"
"$work/full/bin/python" - <<'EOF' || fail "a module does not import from a plain install"
import importlib
import pkgutil

import iot_jobs_bridge

names = [m.name for m in pkgutil.walk_packages(iot_jobs_bridge.__path__, "iot_jobs_bridge.")]
for name in names:
    importlib.import_module(name)
assert len(names) > 80, names
EOF

iotjobs="$work/full/bin/iotjobs"
"$iotjobs" --help >/dev/null || fail "iotjobs --help"
expected=$("$work/full/bin/python" -c 'import importlib.metadata as m; print(m.version("iot-jobs-bridge"))')
[ "$("$iotjobs" --version)" = "iotjobs $expected" ] || fail "iotjobs --version printed $("$iotjobs" --version)"
for command in serve device run schedule simulate; do
    "$iotjobs" "$command" --help >/dev/null || fail "iotjobs $command --help"
done

say "iotjobs serve up to its ready line, then Ctrl-C"
"$iotjobs" serve --mqtt-port 0 --http-port 0 --data-dir "$work/data" >"$work/serve.log" 2>&1 &
serve_pid=$!
deadline=$((SECONDS + 60))
# Nothing to wait on but its output: poll it, with a deadline.
until grep -qs '^iotjobs ready mqtt=127.0.0.1:[0-9]* http=127.0.0.1:[0-9]*$' "$work/serve.log"; do
    kill -0 "$serve_pid" 2>/dev/null || fail "iotjobs serve exited before it was ready: $(cat "$work/serve.log")"
    [ "$SECONDS" -lt "$deadline" ] || fail "iotjobs serve was not ready within 60 s: $(cat "$work/serve.log")"
    sleep 0.2
done
kill -INT "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=""
[ "$status" -eq 0 ] || fail "iotjobs serve exited with $status after SIGINT: $(cat "$work/serve.log")"
grep -q '^iotjobs stopping$' "$work/serve.log" || fail "iotjobs serve did not stop cleanly: $(cat "$work/serve.log")"

say "a device: pip install --no-deps plus the device extra's requirements"
new_venv "$work/device"
# The extra's requirements, as the wheel's metadata lists them (docs/device-sdk.md shows them);
# installed first, so that pip does not list the server dependencies --no-deps leaves out.
"$work/device/bin/python" - "$wheel" >"$work/device-requirements.txt" <<'EOF'
import sys
import zipfile
from email.parser import Parser

with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(wheel.read(name).decode())
for requirement in metadata.get_all("Requires-Dist") or []:
    spec, _, marker = requirement.partition(";")
    if marker.strip() == 'extra == "device"':
        print(spec.strip())
EOF
[ -s "$work/device-requirements.txt" ] || fail "the package declares no device extra"
pip_in "$work/device" install --quiet --no-compile -r "$work/device-requirements.txt"
pip_in "$work/device" install --quiet --no-compile --no-deps "$wheel"
for distribution in amqtt uvicorn starlette botocore cryptography pydantic croniter; do
    if pip_in "$work/device" show --quiet "$distribution" >/dev/null 2>&1; then
        fail "the device install pulled in $distribution"
    fi
done
"$work/device/bin/iotjobs" device --help >/dev/null || fail "iotjobs device --help on a device install"
"$work/device/bin/iotjobs" --help >/dev/null || fail "iotjobs --help on a device install"
status=0
"$work/device/bin/iotjobs" serve --help >"$work/serve-on-device.log" 2>&1 || status=$?
if [ "$status" -ne 1 ] ||
    ! grep -q '^iotjobs serve: .* is not installed: this command needs the full install' "$work/serve-on-device.log"; then
    fail "iotjobs serve on a device install: $(cat "$work/serve-on-device.log")"
fi
"$work/device/bin/python" - "$SERVER_MODULES" <<'EOF' || fail "the device SDK loads server modules"
import sys

import iot_jobs_bridge.device_sdk
import iot_jobs_bridge.device_sdk.cli
import iot_jobs_bridge.device_sdk.testing

server = set(sys.argv[1].split())
loaded = sorted({name.split(".")[0] for name in sys.modules} & server)
outside = sorted(
    name for name in sys.modules
    if name.startswith("iot_jobs_bridge.") and name.split(".")[1] not in ("device_sdk", "schemas")
)
if loaded or outside:
    sys.exit(f"loaded {loaded} {outside}")
EOF

say "ok"
