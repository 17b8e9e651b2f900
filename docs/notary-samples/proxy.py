#!/usr/bin/env python3
"""Tiny logging reverse proxy: listen 127.0.0.1:LPORT, forward to 127.0.0.1:UPORT, log every exchange as JSON lines."""
import http.server, http.client, json, sys, base64, threading
LPORT, UPORT, LOG = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def enc(b):
    try: return b.decode("utf-8")
    except UnicodeDecodeError: return "base64:" + base64.b64encode(b).decode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _do(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        c = http.client.HTTPConnection("127.0.0.1", UPORT, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse(); rb = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in ("transfer-encoding", "connection", "content-length"): continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rb)))
        self.end_headers(); self.wfile.write(rb)
        with lock, open(LOG, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "req_headers": dict(self.headers.items()),
                "req_body": enc(body), "status": r.status, "resp_headers": r.getheaders(), "resp_body": enc(rb)}) + "\n")
    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _do
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", LPORT), H).serve_forever()
