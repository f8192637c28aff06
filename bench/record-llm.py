#!/usr/bin/env python3
"""A recording pass-through for an OpenAI-compatible model server (bench tooling, not the
product): every request is forwarded to UPSTREAM as it is, its answer streamed back as it
comes, and the pair appended to OUT as one JSON line — the request body, the status, the
answer's text (the SSE deltas joined), its usage, and the wall time. These are the recorded
model calls the quality work keeps as fixtures for the native replay harness
(core/tests/replay.rs).

    python3 bench/record-llm.py --listen 127.0.0.1:8795 --upstream http://127.0.0.1:8791 --out calls.jsonl
"""
import argparse
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relay  # noqa: E402

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8795")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)

    def prepare(handler, _body):
        handler.started = time.time()
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in ("host", "content-length")}
        return handler.path, headers

    def done(handler, body, status, answer):
        if handler.path.rstrip("/").endswith("/chat/completions"):
            record(a.out, body, status, answer, time.time() - handler.started)

    srv = relay.serve(host, int(port), urllib.parse.urlparse(a.upstream), prepare,
                      stream=True, timeout=900, done=done)
    srv.serve_forever()


def record(out, body, status, raw, secs):
    try:
        request = json.loads(body)
    except ValueError:
        request = body.decode(errors="replace")
    text, usage = [], None
    for line in raw.decode(errors="replace").splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        try:
            ev = json.loads(line[5:])
        except ValueError:
            continue
        for ch in ev.get("choices") or []:
            text.append(((ch.get("delta") or {}).get("content")) or "")
        usage = ev.get("usage") or usage
    if not text and raw and not raw.lstrip().startswith(b"data:"):
        try:  # a non-streamed answer
            ev = json.loads(raw)
            text = [ev["choices"][0]["message"]["content"]]
            usage = ev.get("usage")
        except (ValueError, KeyError, IndexError):
            text = [raw.decode(errors="replace")]
    line = json.dumps({"at": round(time.time(), 1), "secs": round(secs, 1), "status": status,
                       "request": request, "answer": "".join(text), "usage": usage})
    with LOCK, open(out, "a", encoding="utf-8") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
