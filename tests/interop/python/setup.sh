#!/usr/bin/env bash
# Create (or reuse) the virtualenv with AutobahnPython 0.8.15 + Twisted for the interop peers.
#   tests/interop/python/setup.sh [VENV]     (default: ${INTEROP_VENV:-/tmp/wamp-interop-venv})
# Idempotent: when the venv already matches requirements.txt it returns at once.
# Prints the venv path on stdout (the last line); progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-${INTEROP_VENV:-/tmp/wamp-interop-venv}}"
PYTHON="${PYTHON:-python3}"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.wamp-interop-stamp"

want_stamp() {
    {
        "$PYTHON" -c 'import sys; print(sys.version)'
        cat "$REQ"
    } | sha256sum | cut -d' ' -f1
}

smoke() {
    # the shim and both ends of Autobahn import cleanly
    (cd "$HERE" && timeout 60 "$VENV/bin/python" -c \
        'import ab_compat; from autobahn.wamp1.protocol import WampCraServerProtocol, WampCraClientProtocol' \
        >/dev/null 2>&1)
}

WANT="$(want_stamp)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && smoke; then
    echo "$VENV"
    exit 0
fi

echo "setup.sh: creating virtualenv $VENV" >&2
if [[ ! -x "$VENV/bin/python" ]]; then
    rm -rf "$VENV"
    timeout 120 "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --timeout 60 --retries 2)
SETUPTOOLS="$(grep -E '^setuptools==' "$REQ")"
timeout 300 "${PIP[@]}" install -q "$SETUPTOOLS" >&2
timeout 540 "${PIP[@]}" install -q --no-build-isolation -r "$REQ" >&2

if ! smoke; then
    echo "setup.sh: Autobahn does not import in $VENV (see: cd $HERE && $VENV/bin/python -c 'import ab_compat')" >&2
    exit 1
fi
echo "$WANT" > "$STAMP"
echo "$VENV"
