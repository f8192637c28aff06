"""The HTTP relay both bench proxies use (bench tooling, not the product): a threaded loopback
server whose every request is sent on to one upstream, the answer passed back buffered (with
its length) or streamed as it comes (chunked)."""
import http.client
import http.server

HOP = ("transfer-encoding", "content-length", "connection")


def serve(listen_host, listen_port, upstream, prepare, stream=False, timeout=60, done=None):
    """Serves until killed. `prepare(handler, body)` gives the (path, headers) to send upstream;
    `done(handler, body, status, answer)` sees each answer once it has been passed back."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self):
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n) if n else b""
            path, headers = prepare(self, body)
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=timeout)
            try:
                conn.request(self.command, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                answer = self.pass_back(resp, stream)
            except OSError as e:
                self.send_error(502, str(e))
                return
            finally:
                conn.close()
            if done:
                done(self, body, resp.status, answer)

        def pass_back(self, resp, stream):
            data = b"" if stream else resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            if not stream:
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return data
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            raw = bytearray()
            try:
                while chunk := resp.read1(65536):
                    raw += chunk
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # a side went away mid-answer (a cancel): keep what came
            return bytes(raw)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

    srv = http.server.ThreadingHTTPServer((listen_host, listen_port), Handler)
    return srv
