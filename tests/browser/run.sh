#!/usr/bin/env bash
# Browser test of the tutorial server (issue 5), self-contained:
#
#   tests/browser/run.sh [OUTDIR]          # OUTDIR defaults to target/browser-test
#
# 1. checks Chromium (/usr/bin/chromium, Debian package `chromium`, or $CHROMIUM_PATH) and
#    installs playwright-core with `npm ci` if tests/browser/node_modules is missing;
# 2. builds the tutorial server (`cargo build -p wamp-server --bin wamp-server`), unless
#    $WAMP_SERVER_BIN names a binary to use instead;
# 3. starts it on a free port (`--port 0`) and reads the port from its "listening" line;
# 4. runs the unit checks of wamp1.js, then the browser test (screenshots in OUTDIR);
# 5. checks the WebSocket origin rules: the page's own origin (http://127.0.0.1:PORT with
#    Host 127.0.0.1:PORT, http://localhost:PORT with Host localhost:PORT) gets 101; a foreign
#    origin (http://evil.example, http://localhost:PORT.evil.example, null) must get 403.
#    EXPECT_ORIGIN_CHECK=0 skips the foreign-origin half;
# 6. makes a throwaway CA and a localhost certificate (openssl), restarts the same binary with
#    --tls-cert/--tls-key and runs the browser test again over https://localhost:PORT and wss://
#    (Chromium trusts the certificate's SPKI hash only; screenshots in OUTDIR/tls);
# 7. runs the seed page (the clj-wamp template with the real AutobahnJS 0.8.2, and with our
#    wamp1.js) from ../shared/vendor/seed-page (or $WAMP_SHARED_DIR): seed-page-test.mjs. It
#    skips when the shared folder is absent, and fails then under CI=true.
#
# Always stops the server; fails if a server log shows a panic; exits non-zero on any failure. Every step has a time limit.
# Environment: WAMP_SERVER_BIN, CHROMIUM_PATH, EXPECT_ORIGIN_CHECK (default 1), WAMP_SHARED_DIR,
# SEED_PAGE_RECONNECT (0: skip the ten SIGTERM restarts of the seed-page test),
# BUILD_TIMEOUT (s, default 1800), BROWSER_TEST_TIMEOUT_MS (default 120000), RUST_LOG.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

OUT_DIR="${1:-${BROWSER_TEST_OUT:-target/browser-test}}"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
EXPECT_ORIGIN_CHECK="${EXPECT_ORIGIN_CHECK:-1}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}"
export BROWSER_TEST_TIMEOUT_MS="${BROWSER_TEST_TIMEOUT_MS:-120000}"
# The browser test stops itself after BROWSER_TEST_TIMEOUT_MS; this is the hard limit.
BROWSER_HARD_TIMEOUT=$(( BROWSER_TEST_TIMEOUT_MS / 1000 + 60 ))

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

SERVER_PID=""
SERVER_LOG=""
CHILD_PID=""
# Runs a step in the background and waits for it, so that INT/TERM reach the traps at once.
run_step() {
  "$@" &
  CHILD_PID=$!
  local rc=0
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid="$SERVER_PID"
  SERVER_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true # graceful stop (the server handles Ctrl-C)
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "server $pid did not stop within 5 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
on_exit() {
  local rc=$?
  if [ -n "$CHILD_PID" ]; then
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
  fi
  stop_server
  if [ "$rc" -ne 0 ] && [ -n "$SERVER_LOG" ] && [ -s "$SERVER_LOG" ]; then
    echo "--- last lines of the server log ($SERVER_LOG) ---" >&2
    tail -n 30 "$SERVER_LOG" >&2 || true
  fi
  if [ "$rc" -eq 0 ]; then say "browser test: all passed"; else say "browser test: FAILED (exit $rc)"; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. prerequisites --------------------------------------------------------------------------

say "prerequisites"
command -v node >/dev/null || fail "node is not installed (Node >= 20 needed)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || fail "Node >= 20 needed, found $(node --version)"
[ -x "$CHROMIUM" ] || fail "no Chromium at $CHROMIUM: apt-get install -y chromium (or set CHROMIUM_PATH)"
echo "chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  command -v npm >/dev/null || fail "npm is not installed"
  say "npm ci in tests/browser"
  (cd tests/browser && run_step timeout 300 npm ci --no-audit --no-fund) || fail "npm ci failed"
fi

# --- 2. the server binary ----------------------------------------------------------------------

if [ -n "${WAMP_SERVER_BIN:-}" ]; then
  SERVER_BIN="$WAMP_SERVER_BIN"
  say "using WAMP_SERVER_BIN=$SERVER_BIN"
else
  say "cargo build -p wamp-server --bin wamp-server"
  BUILD_JSON="$(mktemp)"
  run_step timeout "$BUILD_TIMEOUT" cargo build -p wamp-server --bin wamp-server \
    --message-format=json-render-diagnostics >"$BUILD_JSON" \
    || { rm -f "$BUILD_JSON"; fail "cargo build failed (or took more than $BUILD_TIMEOUT s)"; }
  # The executable's path, as cargo reports it (honours CARGO_TARGET_DIR and friends).
  SERVER_BIN="$(node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    let exe = "";
    for (const l of lines) {
      try {
        const m = JSON.parse(l);
        if (m.reason === "compiler-artifact" && m.target && m.target.name === "wamp-server" && m.executable) exe = m.executable;
      } catch {}
    }
    process.stdout.write(exe);' "$BUILD_JSON")"
  rm -f "$BUILD_JSON"
  [ -n "$SERVER_BIN" ] || fail "cargo did not report the wamp-server executable"
fi
[ -x "$SERVER_BIN" ] || fail "server binary $SERVER_BIN is missing or not executable"

# --- 3. start the server -----------------------------------------------------------------------

mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
rm -f "$OUT_DIR"/*.png "$OUT_DIR"/server.stdout
rm -rf "$OUT_DIR"/tls
# Starts "$SERVER_BIN" --bind 127.0.0.1 --port 0 [ARGS...] with its stdout (the "listening"
# line) and stderr (the tracing log) together in $SERVER_LOG, and sets SERVER_PID and PORT.
start_server() {
  say "starting $SERVER_BIN --bind 127.0.0.1 --port 0${*:+ $*} (log in $SERVER_LOG)"
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$SERVER_BIN" --bind 127.0.0.1 --port 0 "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 300); do # up to 30 s
    PORT="$(sed -n 's#^wamp-server listening: page https\{0,1\}://[^/]*:\([0-9][0-9]*\)/.*#\1#p' "$SERVER_LOG" | head -n 1)"
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; fail "the server exited before listening"; }
    sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$SERVER_LOG" >&2; fail "no 'wamp-server listening' line within 30 s"; }
  grep -m 1 '^wamp-server listening:' "$SERVER_LOG"
}
# Stops the server and fails if its log shows a panic.
stop_server_checked() {
  stop_server
  if grep -n 'panicked' "$SERVER_LOG" >&2; then fail "a panic in the server log $SERVER_LOG"; fi
  echo "no panic in $SERVER_LOG"
}

SERVER_LOG="$OUT_DIR/server.log"
start_server
BASE="http://127.0.0.1:$PORT"

# --- 4. unit checks, then the browser test -----------------------------------------------------

say "node --test (wamp1.js unit checks)"
run_step timeout 120 node --test tests/browser/sign-vectors.test.mjs tests/browser/client-protocol.test.mjs \
  tests/browser/ab-api.test.mjs tests/browser/ab-differential.test.mjs \
  || fail "wamp1.js unit checks failed"

say "browser test against $BASE (screenshots in $OUT_DIR)"
run_step timeout -k 10 "$BROWSER_HARD_TIMEOUT" node tests/browser/browser-test.mjs "$BASE" "$OUT_DIR" \
  || fail "browser test failed"

# --- 5. origin allow-list ----------------------------------------------------------------------

# Prints the HTTP status of a WebSocket handshake on /ws with the given Origin and Host header
# (101 = accepted).
ws_handshake_status() {
  timeout 20 node -e '
    const http = require("http");
    const crypto = require("crypto");
    const [port, origin, host] = process.argv.slice(1);
    const req = http.request({
      host: "127.0.0.1", port: Number(port), path: "/ws", timeout: 10000,
      headers: {
        Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": crypto.randomBytes(16).toString("base64"),
        "Sec-WebSocket-Protocol": "wamp", Origin: origin, Host: host,
      },
    });
    req.on("upgrade", (res, socket) => { console.log(res.statusCode); socket.destroy(); process.exit(0); });
    req.on("response", (res) => { console.log(res.statusCode); res.resume(); process.exit(0); });
    req.on("timeout", () => { console.error("handshake timed out"); process.exit(1); });
    req.on("error", (e) => { console.error(`handshake failed: ${e.message}`); process.exit(1); });
    req.end();' "$PORT" "$1" "$2"
}

say "WebSocket origin rules"
for origin in "http://127.0.0.1:$PORT" "http://localhost:$PORT"; do
  host="${origin#http://}"
  status="$(ws_handshake_status "$origin" "$host")" || fail "handshake with Origin $origin did not complete"
  echo "Origin: $origin, Host: $host -> $status"
  [ "$status" = 101 ] || fail "the page's own origin $origin was refused ($status), expected 101"
done
if [ "$EXPECT_ORIGIN_CHECK" = 1 ]; then
  for origin in "http://evil.example" "http://localhost:$PORT.evil.example" "null"; do
    status="$(ws_handshake_status "$origin" "127.0.0.1:$PORT")" || fail "handshake with Origin $origin did not complete"
    echo "Origin: $origin, Host: 127.0.0.1:$PORT -> $status"
    [ "$status" = 403 ] || fail "foreign origin $origin got $status, expected 403"
  done
else
  echo "foreign-origin check skipped (EXPECT_ORIGIN_CHECK=$EXPECT_ORIGIN_CHECK)"
fi

stop_server_checked

# --- 6. the demo page over TLS ----------------------------------------------------------------

# A throwaway CA and a certificate it signed for localhost and 127.0.0.1 (CA:FALSE, as rustls
# wants for an end-entity certificate), made with the openssl CLI.
make_test_cert() {
  local dir="$1"
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=wamp browser test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=localhost" -keyout "$dir/key.pem" -out "$dir/cert.csr" \
    && printf '%s\n' "basicConstraints=critical,CA:FALSE" "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >"$dir/cert.ext" \
    && openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/cert.ext" -out "$dir/cert.pem"
}

say "demo page over TLS (certificate in $OUT_DIR/tls)"
command -v openssl >/dev/null || fail "openssl is not installed (apt-get install -y openssl)"
TLS_DIR="$OUT_DIR/tls"
make_test_cert "$TLS_DIR" >"$TLS_DIR.log" 2>&1 || { cat "$TLS_DIR.log" >&2; fail "making the test certificate failed"; }
openssl verify -CAfile "$TLS_DIR/ca.pem" -verify_hostname localhost "$TLS_DIR/cert.pem" \
  || fail "the test certificate does not verify for localhost"
# The base64 SHA-256 of the certificate's SubjectPublicKeyInfo: Chromium trusts that key only.
SPKI="$(openssl x509 -in "$TLS_DIR/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)"
[ "${#SPKI}" = 44 ] || fail "could not compute the certificate's SPKI hash (got '$SPKI')"
echo "SPKI sha256: $SPKI"
SERVER_LOG="$OUT_DIR/server-tls.log"
start_server --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem"
grep -q "^wamp-server listening: page https://localhost:$PORT/  WAMP wss://localhost:$PORT/ws" "$SERVER_LOG" \
  || fail "the TLS server's listening line does not show https:// and wss://"
TLS_BASE="https://localhost:$PORT"
say "browser test against $TLS_BASE (screenshots in $OUT_DIR/tls)"
BROWSER_TEST_SPKI="$SPKI" NODE_EXTRA_CA_CERTS="$TLS_DIR/ca.pem" \
  run_step timeout -k 10 "$BROWSER_HARD_TIMEOUT" node tests/browser/browser-test.mjs "$TLS_BASE" "$OUT_DIR/tls" \
  || fail "browser test over TLS failed"
stop_server_checked

# --- 7. the seed page: AutobahnJS 0.8.2 and wamp1.js ------------------------------------------

# (the seed-page test runs its own servers)
say "seed page (clj-wamp template) with AutobahnJS 0.8.2 and with wamp1.js"
run_step timeout -k 10 "$(( ${SEED_PAGE_TIMEOUT_MS:-300000} / 1000 + 60 ))" \
  node tests/browser/seed-page-test.mjs "$SERVER_BIN" "$OUT_DIR" \
  || fail "seed-page browser test failed"
