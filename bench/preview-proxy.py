#!/usr/bin/env python3
"""Serves one project's preview at the root of a loopback origin, as the Worker's preview host
does (bench tooling, not the product): every request to 127.0.0.1:PORT/PATH goes to the
sandbox-proxy's /v1/sandboxes/PROJECT/preview/PATH with the edge's project token, so an app's
absolute paths (/src/main.tsx, /@vite/client) resolve. Used by bench/try-app.sh.

    python3 bench/preview-proxy.py --sandbox http://127.0.0.1:8790 --project p_… --token JWT --port 0
Prints the port it listens on, then serves until killed.
"""
import argparse
import http.client
import http.server
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    up = urllib.parse.urlparse(a.sandbox)
    base = f"/v1/sandboxes/{a.project}/preview"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self):
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "upgrade", "authorization")}
            headers["authorization"] = f"Bearer {a.token}"
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            try:
                conn.request(self.command, base + self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except OSError as e:
                self.send_error(502, str(e))
                return
            finally:
                conn.close()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
