#!/usr/bin/env bash
# Benchmark of the browser UI: the JS/CSS a first visit to a workspace loads (gzipped), the
# chunks loaded only on demand, and the time from opening a project to its files shown in
# the tree (local stack, Debian's Chromium, median of 5). Prints figures; asserts nothing.
# Run through `./kiln bench` (which builds the UI and the Worker first).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$PATH" WRANGLER_SEND_METRICS=false

echo "UI bundle (web/dist, gzip -9):"
python3 - <<'PY'
import gzip, pathlib, re
dist = pathlib.Path("web/dist")
html = (dist / "index.html").read_text()
first = set(re.findall(r'(?:src|href)="/(assets/[^"]+)"', html))
total_first = 0
for f in sorted((dist / "assets").iterdir()):
    size = len(gzip.compress(f.read_bytes(), 9))
    rel = f"assets/{f.name}"
    kind = "first load" if rel in first else "on demand"
    if rel in first:
        total_first += size
    print(f"  {f.name:40} {size/1024:7.1f} KB  {kind}")
print(f"  first load of a workspace (JS + CSS): {total_first/1024:.1f} KB gzipped")
PY

state=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
url="http://127.0.0.1:$port"
wrangler d1 migrations apply DB --local --persist-to "$state" >/dev/null 2>&1
setsid wrangler dev --local --ip 127.0.0.1 --port "$port" --persist-to "$state" \
  --show-interactive-dev-session=false --var "KILN_JWT_SECRET:$secret" --var "KILN_PASSWORD_PEPPER:$secret" \
  --var "KILN_APP_ORIGINS:$url" --var "KILN_PREVIEW_URL:http://preview.localhost:$port" \
  >"$state/wrangler.log" 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state"' EXIT
until curl -fsS -o /dev/null "$url/api/health" 2>/dev/null; do sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -fsS "$url/api/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.test","password":"bench-password"}' | json '["token"]')
project=$(curl -fsS "$url/api/projects" -H 'content-type: application/json' \
  -H "authorization: Bearer $token" -d '{"name":"bench"}' | json '["id"]')
for i in $(seq 1 30); do
  head -c 4000 /dev/urandom | base64 | curl -fsS -o /dev/null -X PUT --data-binary @- \
    -H "authorization: Bearer $token" "$url/api/projects/$project/files/src/file$i.ts"
done

node --input-type=module - "$url" "$project" <<'JS'
import { chromium } from 'playwright-core'
const [app, project] = process.argv.slice(2)
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
const times = []
for (let i = 0; i < 5; i++) {
  const page = await (await browser.newContext()).newPage()
  await page.goto(`${app}/api/health`)
  await page.evaluate(() => fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'bench@example.test', password: 'bench-password' }) }))
  const t0 = Date.now()
  await page.goto(`${app}/projects/${project}`)
  await page.getByRole('tab', { name: 'Files' }).click()
  await page.waitForFunction(() => document.querySelectorAll('[role="treeitem"]').length === 30)
  times.push(Date.now() - t0)
  await page.context().close()
}
await browser.close()
times.sort((a, b) => a - b)
console.log(`open a project (30 files) → files in the tree: median ${times[2]} ms (min ${times[0]}, max ${times[4]}; ${times.join(', ')})`)
JS
