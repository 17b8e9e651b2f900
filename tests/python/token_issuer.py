#!/usr/bin/env python3
"""Minimal registry-token-spec issuer for tests (docker distribution "token" auth).
usage: token_issuer.py PORT KEY.pem CERT.pem LOG.jsonl [x5c|kid] [response,fields] [issuer]
GET /auth?service=S&scope=repository:NAME:push,pull&account=U with Basic auth (any user, password "secret")
-> {"token","access_token","expires_in","issued_at"}; JWT ES256 with x5c (leaf DER) or kid (libtrust fingerprint)."""
import sys, json, base64, time, hashlib, uuid, http.server, urllib.parse
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography import x509
PORT, KEY, CERT, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
MODE = sys.argv[5] if len(sys.argv) > 5 else "x5c"
FIELDS = sys.argv[6].split(",") if len(sys.argv) > 6 else ["token", "access_token", "expires_in", "issued_at"]
ISS = sys.argv[7] if len(sys.argv) > 7 else "tagtrust-test-issuer"
key = serialization.load_pem_private_key(open(KEY, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(CERT, "rb").read())
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def libtrust_kid(pub):
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path); q = urllib.parse.parse_qs(u.query)
        authz = self.headers.get("Authorization", "")
        user = pw = None
        if authz.startswith("Basic "):
            user, _, pw = base64.b64decode(authz[6:]).decode().partition(":")
        rec = {"path": self.path, "query": q, "authorization": authz, "user": user}
        if pw is not None and pw != "secret":
            self.send_response(401); self.end_headers(); rec["status"] = 401
        else:
            access = []
            for sc in q.get("scope", []):
                for one in sc.split(" "):
                    typ, name, actions = one.split(":")[0], ":".join(one.split(":")[1:-1]), one.split(":")[-1]
                    # anonymous users get pull only
                    acts = actions.split(",") if user else [a for a in actions.split(",") if a == "pull"]
                    access.append({"type": typ, "name": name, "actions": acts})
            now = int(time.time())
            hdr = {"typ": "JWT", "alg": "ES256"}
            if MODE == "x5c": hdr["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
            else: hdr["kid"] = libtrust_kid(key.public_key())
            claims = {"iss": ISS, "sub": user or "", "aud": q.get("service", [""])[0],
                      "exp": now + 300, "nbf": now - 5, "iat": now, "jti": uuid.uuid4().hex, "access": access}
            si = b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())
            r, s = utils.decode_dss_signature(key.sign(si.encode(), ec.ECDSA(hashes.SHA256())))
            tok = si + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
            full = {"token": tok, "access_token": tok, "expires_in": 300,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
            body = json.dumps({k: v for k, v in full.items() if k in FIELDS}).encode()
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            rec.update(status=200, header=hdr, claims=claims)
        with open(LOG, "a") as f: f.write(json.dumps(rec) + "\n")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
