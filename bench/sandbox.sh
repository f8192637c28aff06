#!/usr/bin/env bash
# Benchmark of the sandbox-proxy (needs root): starts the release binary on a free loopback
# port with its own instance tag, and prints the median (and min/p90/max) of N runs of:
#   create → first exec; files written → preview HTTP 200 (react-vite, static);
#   exec round trip; preview proxy round trip.
# Prints figures; asserts nothing. Usage: sudo bench/sandbox.sh [N=20]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${1:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --quiet --release -p kiln-sandbox-proxy
BIN="$CARGO_TARGET_DIR/release/kiln-sandbox-proxy"
state=$(mktemp -d /tmp/kiln-sandbox-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')

KILN_SANDBOX_LISTEN=127.0.0.1:$port KILN_SANDBOX_STATE_DIR=$state KILN_SANDBOX_INSTANCE=b \
  KILN_SANDBOX_SUBNET_OCTET=86 KILN_SANDBOX_JWT_SECRET=$secret "$BIN" >"$state.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state" "$state.log"' EXIT
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
  kill -0 $pid 2>/dev/null || { cat "$state.log" >&2; exit 1; }
  sleep 0.05
done

python3 - "$port" "$secret" "$N" "$ROOT/sandbox-proxy/templates/react-vite" <<'PY'
import base64, hashlib, hmac, json, os, statistics, sys, time, urllib.request, urllib.error

port, secret, n, tpl = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
base = f"http://127.0.0.1:{port}"

def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def token(project):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps({"project_id": project, "exp": int(time.time()) + 240}).encode())
    s = b64(hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{s}"

def call(method, path, tok=None, body=None, cookie=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if tok: req.add_header("authorization", f"Bearer {tok}")
    if body is not None: req.add_header("content-type", "application/json")
    if cookie: req.add_header("cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers

def exec_(pid, tok, cmd, args=()):
    st, body, _ = call("POST", f"/v1/sandboxes/{pid}/exec", tok, {"cmd": cmd, "args": list(args)})
    last = json.loads(body.decode().strip().splitlines()[-1])
    assert last == {"exit_code": 0}, (st, body)

def create(tag, template):
    pid = f"p_bench_{tag}_{os.urandom(4).hex()}"
    tok = token(pid)
    st, body, _ = call("POST", "/v1/sandboxes", tok, {"project_id": pid, "template": template})
    assert st == 201, (st, body)
    return pid, tok

def delete(pid, tok):
    call("DELETE", f"/v1/sandboxes/{pid}", tok)

def app_files(marker):
    files = []
    for rel in ["index.html", "src/main.tsx", "src/index.css"]:
        files.append({"path": rel, "content": open(os.path.join(tpl, rel)).read()})
    files.append({"path": "src/App.tsx", "content":
        f'export default function App() {{ return <h1 className="text-3xl">{marker}</h1> }}\n'})
    return files

def preview_200(pid, tok, files):
    """Files written → dev server started → first 200 on the preview's '/'."""
    t0 = time.perf_counter()
    st, body, _ = call("PUT", f"/v1/sandboxes/{pid}/files", tok, {"files": files})
    assert st == 200, body
    st, body, _ = call("POST", f"/v1/sandboxes/{pid}/dev-server", tok, {"action": "start"})
    d = json.loads(body)
    assert d["state"] == "ready", d
    while True:
        st, body, hdrs = call("GET", d["preview_url"])
        if st == 200: break
        time.sleep(0.01)
    t1 = time.perf_counter()
    cookie = hdrs["set-cookie"].split(";")[0]
    return t1 - t0, cookie

def report(name, xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    print(f"  {name:<48} median {statistics.median(xs)*1000:8.1f} ms   "
          f"min {xs[0]*1000:7.1f}   p90 {p90*1000:7.1f}   max {xs[-1]*1000:7.1f}   (n={len(xs)})")

# Warm the react-vite layer (first install on a host: ~10-40 s; not measured).
pid, tok = create("warm", "react-vite"); delete(pid, tok)

create_exec = []
for i in range(n):
    pid = f"p_bench_ce_{os.urandom(4).hex()}"; tok = token(pid)
    t0 = time.perf_counter()
    st, body, _ = call("POST", "/v1/sandboxes", tok, {"project_id": pid, "template": "static"})
    assert st == 201, body
    exec_(pid, tok, "true")
    create_exec.append(time.perf_counter() - t0)
    delete(pid, tok)

vite, vite_app, static = [], [], []
for i in range(n):
    pid, tok = create(f"rv{i}", "react-vite")
    dt, cookie = preview_200(pid, tok, app_files(f"bench {i}"))
    vite.append(dt)
    t0 = time.perf_counter()
    st, body, _ = call("GET", f"/v1/sandboxes/{pid}/preview/src/App.tsx", cookie=cookie)
    assert st == 200 and f"bench {i}".encode() in body
    vite_app.append(dt + time.perf_counter() - t0)
    delete(pid, tok)
for i in range(n):
    pid, tok = create(f"st{i}", "static")
    dt, _ = preview_200(pid, tok, [{"path": "index.html", "content": f"<h1>bench {i}</h1>"}])
    static.append(dt)
    delete(pid, tok)

pid, tok = create("rt", "static")
exec_(pid, tok, "true")
rt = []
for i in range(n):
    t0 = time.perf_counter(); exec_(pid, tok, "true"); rt.append(time.perf_counter() - t0)
_, cookie = preview_200(pid, tok, [{"path": "index.html", "content": "<h1>x</h1>"}])
proxy = []
for i in range(n):
    t0 = time.perf_counter()
    st, _, _ = call("GET", f"/v1/sandboxes/{pid}/preview/", cookie=cookie)
    assert st == 200
    proxy.append(time.perf_counter() - t0)
delete(pid, tok)

print(f"sandbox-proxy (release, {os.cpu_count()} cores, cgroup "
      f"{json.loads(call('GET', '/healthz')[1])['cgroups']}):")
report("create -> first exec (static)", create_exec)
report("files written -> preview 200 (react-vite)", vite)
report("  ... -> App.tsx transformed 200 (react-vite)", vite_app)
report("files written -> preview 200 (static)", static)
report("exec round trip (`true`)", rt)
report("preview proxy round trip (static '/')", proxy)
PY
