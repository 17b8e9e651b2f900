#!/usr/bin/env python3
"""Re-sign a Notary metadata file after editing it (test helper).
usage: resign.py IN.json OUT.json KEYID PRIVKEY.pem 'python-expr-editing-s'   (s = the "signed" dict)
Writes {"signed":<canonical>,"signatures":[{"keyid","method":"ecdsa","sig"}]} with raw r||s ECDSA-P256-SHA256."""
import sys, json, base64
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
src, dst, keyid, keyfile, expr = sys.argv[1:6]
doc = json.load(open(src)); s = doc["signed"]
exec(expr)
msg = json.dumps(s, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
key = serialization.load_pem_private_key(open(keyfile, "rb").read(), None)
r, t = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
sig = r.to_bytes(32, "big") + t.to_bytes(32, "big")
out = b'{"signed":' + msg + b',"signatures":' + json.dumps([{"keyid": keyid, "method": "ecdsa", "sig": base64.b64encode(sig).decode()}], separators=(",", ":")).encode() + b"}"
open(dst, "wb").write(out)
