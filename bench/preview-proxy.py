#!/usr/bin/env python3
"""Serves one project's preview at the root of a loopback origin, as the Worker's preview host
does (bench tooling, not the product): every request to 127.0.0.1:PORT/PATH goes to the
sandbox-proxy's /v1/sandboxes/PROJECT/preview/PATH with the edge's project token, so an app's
absolute paths (/src/main.tsx, /@vite/client) resolve. Used by bench/try-app.sh.

    python3 bench/preview-proxy.py --sandbox http://127.0.0.1:8790 --project p_… --token JWT --port 0
Prints the port it listens on, then serves until killed.
"""
import argparse
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relay  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    base = f"/v1/sandboxes/{a.project}/preview"

    def prepare(handler, _body):
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in ("host", "connection", "upgrade", "authorization")}
        headers["authorization"] = f"Bearer {a.token}"
        return base + handler.path, headers

    srv = relay.serve("127.0.0.1", a.port, urllib.parse.urlparse(a.sandbox), prepare)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
