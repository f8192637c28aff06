#!/usr/bin/env python3
"""Generates the apps of a prompt list on a running Kiln (`./kiln up`, any model) and prints,
per app: time to preview, LLM calls and tokens, acceptance checks written / still failing, and
whether the app passes its prompt's check (a person's check, written once per prompt:
bench/prompt-checks/N-*.json or .mjs), tried in Chromium by bench/try-app.sh when the
generation ends or its cap cancels it (as root; `--no-try` skips it).

    python3 bench/apps.py [--url http://127.0.0.1:8787] [--only 1,3] [--cap-min 15] [--jobs 2]
        [--keep DIR] PROMPTS.md
"""
import glob
import os
import subprocess
import argparse
import concurrent.futures
import json
import re
import sys
import time
import urllib.error
import urllib.request


def call(base, method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=60) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def prompts(path):
    """`1. **Title** — description. Check: …` items of a PROMPTS.md-style list."""
    out = []
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r"^(\d+)\. \*\*(.+?)\*\* — (.+?)(?=^\d+\. |\n\n|\Z)", text, re.S | re.M):
        body = " ".join(m.group(3).split())
        ask, _, check = body.partition(" Check: ")
        out.append((int(m.group(1)), m.group(2), ask, check))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prompts")
    ap.add_argument("--url", default="http://127.0.0.1:8787")
    ap.add_argument("--only", default="")
    ap.add_argument("--cap-min", type=float, default=15.0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--no-try", action="store_true")
    ap.add_argument("--keep", default="", help="a directory for each app's generation, room "
                    "state, files (export.zip) and check output, to read why an app failed")
    a = ap.parse_args()
    only = {int(x) for x in a.only.split(",") if x}
    email = f"bench-{int(time.time())}@kiln.local"
    st, j = call(a.url, "POST", "/api/auth/register", body={"email": email, "password": "bench-password-123"})
    assert st == 201, (st, j)
    token = j["token"]
    todo = [p for p in prompts(a.prompts) if not only or p[0] in only]

    def one(item):
        n, title, ask, check = item
        st, p = call(a.url, "POST", "/api/projects", token, {"name": title[:60]})
        assert st == 201, (st, p)
        pid = p["id"]
        t0 = time.time()
        st, g = call(a.url, "POST", f"/api/projects/{pid}/generate", token, {"prompt": f"{title}: {ask}"})
        assert st == 202, (st, g)
        preview_at, g, steps = None, {}, []
        while time.time() - t0 < a.cap_min * 60:
            time.sleep(2)
            st, g = call(a.url, "GET", f"/api/projects/{pid}/generation", token)
            if st != 200 or not g:
                continue
            if g.get("preview_url") and preview_at is None:
                preview_at = time.time() - t0
            # Where the clock goes: each step as it is first seen (2 s resolution).
            now = (g.get("step") or {}).get("step")
            if not steps or steps[-1][1] != now:
                steps.append((round(time.time() - t0), now))
            if g.get("step", {}).get("step") in ("done", "failed", "cancelled"):
                break
        else:
            call(a.url, "POST", f"/api/projects/{pid}/cancel", token)
        st, f = call(a.url, "GET", f"/api/projects/{pid}/files/.kiln/checks.json", token)
        checks = len(f.get("checks", [])) if st == 200 and isinstance(f, dict) else 0
        totals = g.get("totals", {})
        worked, why, tried = (None, None, "") if a.no_try else try_app(pid, n)
        if a.keep:
            keep(a.url, token, pid, os.path.join(a.keep, str(n)), g, tried)
        row = {
            "n": n, "app": title, "project": pid, "end": (g.get("step") or {}).get("step", "?"),
            "reason": (g.get("step") or {}).get("reason"),
            "preview_s": round(preview_at, 1) if preview_at else None,
            "total_s": round(time.time() - t0, 1),
            "llm_calls": totals.get("llm_calls"), "tokens_out": totals.get("output_tokens"),
            "checks": checks, "unresolved": len(g.get("unresolved", [])),
            "input_tokens": totals.get("input_tokens"), "worked": worked, "why": why,
            "preview": f"{a.url}/preview/{pid}/", "check": check, "steps": steps,
        }
        print(json.dumps(row), flush=True)
        return row

    # A few at a time: the model batches concurrent requests, and one app's sandbox work
    # (install, type-check, browser checks) overlaps another's model calls.
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        rows = sorted(pool.map(one, todo), key=lambda r: r["n"])
    print("\n| # | app | end | time to preview | time to end | LLM calls | tokens in/out | checks | still failing | worked |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pv = f"{r['preview_s']} s" if r["preview_s"] else "—"
        w = {True: "yes", False: f"no: {r['why']}", None: "—"}[r["worked"]]
        print(f"| {r['n']} | {r['app']} | {r['end']} | {pv} | {r['total_s']} s | {r['llm_calls']} | "
              f"{r['input_tokens']}/{r['tokens_out']} | {r['checks']} | {r['unresolved']} | {w} |")
    print(f"\nworked: {sum(1 for r in rows if r['worked'])} of {len(rows)}")
    return 0


def keep(base, token, pid, prefix, generation, tried):
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    _, state = call(base, "GET", f"/api/projects/{pid}/state", token)
    with open(prefix + "-generation.json", "w") as f:
        json.dump({"generation": generation, "state": state}, f, indent=1)
    with open(prefix + "-check.txt", "w") as f:
        f.write(tried)
    req = urllib.request.Request(f"{base}/api/projects/{pid}/export.zip")
    req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r, open(prefix + "-files.zip", "wb") as f:
            f.write(r.read())
    except urllib.error.URLError as e:
        print(f"could not keep the files of {pid}: {e}", file=sys.stderr)


def try_app(pid, n):
    """The prompt's own check against the app's preview: (passed, why not, its output)."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "prompt-checks", f"{n}-*")))
    if not found:
        return None, "no check for this prompt", ""
    try:
        p = subprocess.run(["bash", os.path.join(here, "try-app.sh"), pid, found[0]],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return False, "the check did not finish in 5 minutes", ""
    out = p.stdout + "\n--- stderr\n" + p.stderr
    for line in reversed(p.stdout.splitlines()):
        if line.startswith('{"results"'):
            results = json.loads(line)["results"]
            bad = [r for r in results if not r.get("passed")]
            if not bad:
                return True, None, out
            r = bad[0]
            return False, f"{r.get('error') or 'failed'} (step {r.get('step')})"[:160], out
    return False, (p.stderr.strip().splitlines() or ["no result"])[-1][:160], out


if __name__ == "__main__":
    sys.exit(main())
