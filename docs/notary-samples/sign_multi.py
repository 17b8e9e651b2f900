#!/usr/bin/env python3
"""Edit + sign a Notary metadata file with several ECDSA P-256 keys (test helper).
usage: sign_multi.py IN.json OUT.json 'python-expr-editing-s' KEYID=key.pem [KEYID=key.pem ...]
helpers available in the expr: cert_key(pem_path) -> (keyid, key object) for an ecdsa-x509 key."""
import sys, json, base64, hashlib
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
def canon(o): return json.dumps(o, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
def cert_key(path):
    k = {"keytype": "ecdsa-x509", "keyval": {"private": None, "public": base64.b64encode(open(path, "rb").read()).decode()}}
    return hashlib.sha256(canon(k)).hexdigest(), k
src, dst, expr = sys.argv[1:4]
doc = json.load(open(src)); s = doc["signed"]
exec(expr)
msg = canon(s); sigs = []
for kv in sys.argv[4:]:
    kid, path = kv.split("=", 1)
    key = serialization.load_pem_private_key(open(path, "rb").read(), None)
    r, t = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    sigs.append({"keyid": kid, "method": "ecdsa", "sig": base64.b64encode(r.to_bytes(32, "big") + t.to_bytes(32, "big")).decode()})
open(dst, "wb").write(b'{"signed":' + msg + b',"signatures":' + json.dumps(sigs, separators=(",", ":")).encode() + b"}")
print(dst, "signed by", [x["keyid"][:12] for x in sigs])
