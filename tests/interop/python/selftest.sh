#!/usr/bin/env bash
# Self-test of the interop peers: AutobahnPython client scenarios against the AutobahnPython
# server (ab_server.py), with the "autobahn" expectation profile. Also checks that the runner
# does report deviations (the "spec" profile against Autobahn must fail where Autobahn differs),
# and that the server logged no Python traceback (Autobahn swallows handler exceptions).
#   tests/interop/python/selftest.sh [VENV]
# Every process has a timeout; servers are stopped on any exit.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(timeout 600 "$HERE/setup.sh" "${1:-${INTEROP_VENV:-/tmp/wamp-interop-venv}}" | tail -n1)" || {
    echo "selftest.sh: setup.sh failed" >&2
    exit 1
}
PY="$VENV/bin/python"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/wamp-interop-selftest.XXXXXX")"
SERVER_PIDS=()
PASSED=0
FAILED=0

CLIENT_PID=""

cleanup() {
    local pid
    if [[ -n "$CLIENT_PID" ]]; then kill "$CLIENT_PID" 2>/dev/null || true; fi
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        # give it 5 s to go, then force
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    if [[ "${KEEP_SELFTEST_LOGS:-}" == "" ]]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server NAME [ab_server args...]; sets PORT and SERVER_LOG
start_server() {
    local name="$1"; shift
    local attempt pid
    for attempt in 1 2 3; do
        PORT="$(free_port)"
        SERVER_LOG="$WORK/server-$name.err"
        timeout 600 "$PY" "$HERE/ab_server.py" --port "$PORT" --lifetime 540 "$@" \
            >"$WORK/server-$name.out" 2>"$SERVER_LOG" &
        pid=$!
        SERVER_PIDS+=("$pid")
        for _ in $(seq 100); do   # 10 s
            if grep -q "^READY $PORT\$" "$WORK/server-$name.out" 2>/dev/null; then
                echo "server $name: pid $pid, ws://127.0.0.1:$PORT/ws" >&2
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        echo "server $name: no READY on port $PORT (attempt $attempt):" >&2
        tail -n 5 "$SERVER_LOG" >&2
        kill "$pid" 2>/dev/null || true
    done
    return 1
}

# run_scenario EXPECTED_RC SCENARIO [ab_client args...]
run_scenario() {
    local want="$1" sc="$2"; shift 2
    local out="$WORK/client-$sc-$want.out" err="$WORK/client-$sc-$want.err" rc
    # in the background + wait, so that a signal to this script is handled at once
    timeout 120 "$PY" "$HERE/ab_client.py" --url "ws://127.0.0.1:$PORT/ws" "$@" "$sc" >"$out" 2>"$err" &
    CLIENT_PID=$!
    wait "$CLIENT_PID"
    rc=$?
    CLIENT_PID=""
    if [[ "$rc" == "$want" ]]; then
        PASSED=$((PASSED + 1))
        echo "PASS $sc $* (exit $rc)"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $sc $* (exit $rc, wanted $want)"
        sed 's/^/    /' "$err" | tail -n 20
        head -c 2000 "$out" | sed 's/^/    /'
        echo
    fi
}

check_server_log() {
    local name="$1"
    if grep -q "Traceback" "$SERVER_LOG"; then
        FAILED=$((FAILED + 1))
        echo "FAIL server $name logged a Python traceback:"
        grep -A 15 "Traceback" "$SERVER_LOG" | head -n 40 | sed 's/^/    /'
    else
        PASSED=$((PASSED + 1))
        echo "PASS server $name logged no traceback"
    fi
}

if ! start_server plain; then echo "0 passed, 1 failed"; exit 1; fi
for sc in welcome prefix_call call_args call_errors pubsub_pair unsubscribe \
          cra_unsalted cra_salted cra_wrong_secret cra_swapped cra_anonymous; do
    run_scenario 0 "$sc" --profile autobahn
done
# the runner must notice deviations: Autobahn is not the spec server
run_scenario 1 call_errors --profile spec
run_scenario 1 default_prefixes --profile autobahn
if ! grep -q 'DEVIATION \[call_errors/spec\] throw errorUri' "$WORK/client-call_errors-1.err" 2>/dev/null; then
    FAILED=$((FAILED + 1)); echo "FAIL call_errors --profile spec did not name the throw errorUri deviation"
else
    PASSED=$((PASSED + 1)); echo "PASS deviation report names the check"
fi
check_server_log plain

if ! start_server prefixes --default-prefixes; then echo "$PASSED passed, $((FAILED + 1)) failed"; exit 1; fi
run_scenario 0 default_prefixes --profile autobahn
run_scenario 0 welcome --profile autobahn
check_server_log prefixes

echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" == 0 ]]
