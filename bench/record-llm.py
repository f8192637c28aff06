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
import http.client
import http.server
import json
import threading
import time
import urllib.parse

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8795")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    up = urllib.parse.urlparse(a.upstream)
    host, port = a.listen.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self):
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n) if n else b""
            t0 = time.time()
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=900)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            raw = bytearray()
            try:
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    raw += chunk
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller abandoned the call (a cancel): record what came
            finally:
                conn.close()
            if self.path.rstrip("/").endswith("/chat/completions"):
                record(a.out, body, resp.status, bytes(raw), time.time() - t0)

        do_POST = relay
        do_GET = relay

    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
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
