#!/usr/bin/env bash
# Counts the user-space instructions tether spends per proxied call, with callgrind
# (repeatable whatever else the machine is doing, unlike timings). Starts `tether sim
# --no-auth` as the upstream and `tether serve` under valgrind with a throwaway home, sends
# N keep-alive `tools/list` calls (default 1,000) and the same with none, and prints the
# difference per call.
#
#   cargo build --profile dist && bash benches/proxy/instructions.sh [N] [path/to/tether]
#
# TETHER_CALLS_CAPTURE=off|metadata|full (default: metadata, as [calls] capture) chooses what
# is recorded of each call: the cost of recording is the difference between off and metadata.
#
# TETHER_BENCH_PROTOCOL=2025-11-25 sends the calls as a client of that revision does: in a
# session begun with `initialize`, with no `Mcp-Method` field, so the method is read from the
# body (default: 2026-07-28, whose fields name it).
#
# TETHER_BENCH_STORE=COMMAND puts each run's vault in a PostgreSQL store: COMMAND prints the
# address of a fresh, empty database (the store's cost is the difference from the file's).
#
# TETHER_CALLGRIND_KEEP=DIR keeps both runs' callgrind files there (idle.out, calls.out), to
# see where the instructions go: `callgrind_annotate --inclusive=yes DIR/calls.out` (on a
# build with symbols: CARGO_PROFILE_DIST_STRIP=false).
#
# Needs valgrind, python3 and curl.
set -euo pipefail
calls=${1:-1000}
bin=${2:-$(dirname "$0")/../../target/dist/tether}
bin=$(realpath "$bin")

# Prints the instruction total of one `tether serve` that answered $1 calls ($2 names it).
run() {
  local n=$1 home sim port secret vg
  home=$(mktemp -d)
  export TETHER_HOME=$home TETHER_KEY_SOURCE=file DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent
  export TETHER_CALLS_CAPTURE=${TETHER_CALLS_CAPTURE:-metadata}
  if [ -n "${TETHER_BENCH_STORE:-}" ]; then
    TETHER_STORE=$(eval "$TETHER_BENCH_STORE")
    export TETHER_STORE
  fi
  "$bin" sim --no-auth >"$home/sim.url" 2>/dev/null &
  sim=$!
  # A loaded machine can take seconds to start it; without its address no figure is made.
  for _ in $(seq 300); do [ -s "$home/sim.url" ] && break; sleep 0.1; done
  if [ ! -s "$home/sim.url" ]; then
    echo "tether sim did not start within 30 s" >&2
    exit 1
  fi
  "$bin" add open "$(cat "$home/sim.url")" --no-auth >/dev/null
  secret=$("$bin" url open --client bench | sed -n 2p | sed 's|.*/s/||; s|/mcp||' | tr -d ' ')
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  valgrind --tool=callgrind --callgrind-out-file="$home/cg.out" \
    "$bin" serve --bind "127.0.0.1:$port" >/dev/null 2>"$home/valgrind.log" &
  vg=$!
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
  python3 - "$port" "$secret" "$n" "${TETHER_BENCH_PROTOCOL:-2026-07-28}" <<'PY'
import http.client, json, sys
port, secret, n, protocol = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, separators=(",", ":"))
headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
           "mcp-protocol-version": protocol}
if protocol >= "2026-07-28":
    headers["mcp-method"] = "tools/list"
else:
    # Older revisions need a session; both runs begin one, so it is not counted per call.
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": protocol, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    conn.request("POST", f"/s/{secret}/mcp", json.dumps(init), headers)
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
    headers["mcp-session-id"] = answer.getheader("mcp-session-id")
for _ in range(n):
    conn.request("POST", f"/s/{secret}/mcp", body, headers)
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
PY
  kill -INT "$vg"
  wait "$vg" || true
  kill "$sim"
  sed -n 's/^summary: //p' "$home/cg.out"
  if [ -n "${TETHER_CALLGRIND_KEEP:-}" ]; then
    mkdir -p "$TETHER_CALLGRIND_KEEP"
    cp "$home/cg.out" "$TETHER_CALLGRIND_KEEP/$2.out"
  fi
  rm -rf "$home"
}

base=$(run 0 idle)
loaded=$(run "$calls" calls)
echo "tether serve: $(( (loaded - base) / calls )) instructions per proxied call ($calls calls, capture ${TETHER_CALLS_CAPTURE:-metadata}; start-up and shutdown: $base)"
