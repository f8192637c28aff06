#!/usr/bin/env bash
# Benchmark: latency and throughput of an authenticated read (GET /api/projects/:id) under 16
# concurrent connections, and the size of the release .wasm. Prints figures; asserts nothing.
# Run through `./kiln bench` (which installs wrk and builds the Worker first).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$PATH" WRANGLER_SEND_METRICS=false
DURATION=${BENCH_DURATION:-20s}
state=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
url="http://127.0.0.1:$port"

wrangler d1 migrations apply DB --local --persist-to "$state" >/dev/null 2>&1
setsid wrangler dev --local --ip 127.0.0.1 --port "$port" --persist-to "$state" \
  --show-interactive-dev-session=false --var "KILN_JWT_SECRET:$secret" --var "KILN_PASSWORD_PEPPER:$secret" \
  >"$state/wrangler.log" 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state"' EXIT
until curl -fsS -o /dev/null "$url/api/health" 2>/dev/null; do sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -fsS "$url/api/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.test","password":"bench-password"}' | json '["token"]')
project=$(curl -fsS "$url/api/projects" -H 'content-type: application/json' \
  -H "authorization: Bearer $token" -d '{"name":"bench"}' | json '["id"]')

wrk -t2 -c16 -d5s -H "authorization: Bearer $token" "$url/api/projects/$project" >/dev/null # warm-up
out=$(wrk -t2 -c16 -d"$DURATION" --latency -H "authorization: Bearer $token" "$url/api/projects/$project")
echo "$out" | grep -qE "Non-2xx|Socket errors" && { echo "$out"; echo "bench: errors during the run" >&2; exit 1; }

p50=$(echo "$out" | awk '$1=="50%"{print $2}')
p99=$(echo "$out" | awk '$1=="99%"{print $2}')
rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
wasm=worker/build/index_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)

echo "GET /api/projects/:id (valid token, 16 connections, $DURATION, wrangler dev --local, $(nproc) cores)"
echo "  p50 latency:  $p50"
echo "  p99 latency:  $p99"
echo "  throughput:   $rps req/s"
echo "release .wasm:  $((raw / 1024)) KiB, $((gz / 1024)) KiB gzipped"
