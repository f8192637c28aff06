#!/usr/bin/env bash
# Tries a generated app in a real browser: runs a person's checks (the step format of
# core/src/agent/checks.rs, e.g. bench/prompt-checks/1-todo.json) in headless Chromium against
# the project's running preview, and saves a screenshot. For judging the PROMPTS.md apps
# (docs/BENCHMARKS.md); it reuses the sandbox's check runner on the host. A check the step
# format cannot say (e.g. "the QR code changes") is a playwright-core script, CHECK.mjs,
# run with the same KILN_DEV_URL.
#
#   bench/try-app.sh PROJECT_ID CHECKS.json|CHECK.mjs [SANDBOX_URL]   (as root, after ./kiln up)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pid=$1 checks=$2 sandbox=${3:-http://127.0.0.1:8790}
secret=$(sed -n 's/^KILN_SANDBOX_JWT_SECRET=//p' "$ROOT/.dev.vars" | tail -n 1)
token=$(python3 - "$secret" "$pid" <<'EOF'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
secret, pid = sys.argv[1].encode(), sys.argv[2]
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
body = b64(json.dumps({"project_id": pid, "iat": now, "exp": now + 300}).encode())
sig = b64(hmac.new(secret, head + b"." + body, hashlib.sha256).digest())
print((head + b"." + body + b"." + sig).decode())
EOF
)
curl -fsS -o /dev/null -X POST "$sandbox/v1/sandboxes/$pid/dev-server" \
  -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{"action":"start"}'
layer=$(ls -d /var/cache/kiln-sandbox/layers/tools-*/node_modules | head -n 1)
work=$(mktemp -d)
# The app at the root of an origin of its own, as the Worker's preview host serves it (its
# absolute paths, /src/main.tsx and /@vite/client, must resolve there).
python3 "$ROOT/bench/preview-proxy.py" --sandbox "$sandbox" --project "$pid" --token "$token" \
  >"$work/port" &
proxy=$!
trap 'kill $proxy 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
ln -s "$layer" "$work/node_modules"
cp "$ROOT/sandbox-proxy/lib/check.mjs" "$work/"
cat >"$work/shot.mjs" <<'EOF'
import { chromium } from 'playwright-core';
const b = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-proxy-server', '--disable-background-networking'] });
const p = await b.newPage({ viewport: { width: 1100, height: 800 } });
await p.goto(process.env.KILN_DEV_URL, { waitUntil: 'networkidle', timeout: 30000 }).catch(() => {});
await p.screenshot({ path: process.argv[2], fullPage: true });
console.log((await p.evaluate(() => document.body.innerText)).slice(0, 800));
await b.close();
EOF
export KILN_DEV_URL="http://127.0.0.1:$(cat "$work/port")/"
mkdir -p "$ROOT/target/try"
node "$work/shot.mjs" "$ROOT/target/try/$pid.png" || true
case $checks in
  *.mjs) cp "$checks" "$work/person.mjs" && node "$work/person.mjs" ;;
  *) node "$work/check.mjs" "$(realpath "$checks")" ;;
esac
