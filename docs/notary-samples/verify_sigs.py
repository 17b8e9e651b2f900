#!/usr/bin/env python3
"""Check which bytes Notary signatures cover: raw `signed` bytes vs re-canonicalised forms.
usage: verify_sigs.py ROOT.json ROLE.json [ROLE=targets]"""
import sys, json, base64, re
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils, padding
from cryptography import x509

def pubkey(k):
    pub = base64.b64decode(k["keyval"]["public"])
    t = k["keytype"]
    if t == "ed25519": return ed25519.Ed25519PublicKey.from_public_bytes(pub)
    if t in ("ecdsa-x509", "rsa-x509"): return x509.load_pem_x509_certificate(pub).public_key()
    return serialization.load_der_public_key(pub)

def verify(key, method, sig, msg):
    try:
        if method == "eddsa": key.verify(sig, msg); return True
        if method == "ecdsa":
            if len(sig) == 64:
                sig = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(sig, msg, ec.ECDSA(hashes.SHA256())); return True
        if method == "rsapss":
            key.verify(sig, msg, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()); return True
        if method == "rsapkcs1v15":
            key.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256()); return True
    except Exception:
        return False
    return False

def raw_signed(raw):
    # the file is {"signed":<...>,"signatures":[...]}; cut out the signed value
    assert raw.startswith(b'{"signed":')
    i = raw.rindex(b',"signatures":')
    return raw[len(b'{"signed":'):i]

def go_float_canon(o):
    # mimic docker/go canonical re-marshal of map[string]interface{} (numbers as float64, 'g' shortest)
    if isinstance(o, dict): return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + go_float_canon(o[k]) for k in sorted(o)) + "}"
    if isinstance(o, list): return "[" + ",".join(go_float_canon(x) for x in o) + "]"
    if isinstance(o, bool) or o is None: return json.dumps(o)
    if isinstance(o, (int, float)):
        s = "%g" % float(o) if abs(o) >= 1e6 else str(int(o))
        return re.sub(r"e\+0?(\d)", lambda m: "e+0" + m.group(1) if len(m.group(1))==1 else m.group(0), s) if "e" in s else s
    return json.dumps(o, ensure_ascii=False)

root = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
doc = json.loads(raw)
keys = dict(root["signed"]["keys"])
keys.update(doc["signed"].get("delegations", {}).get("keys", {}))
candidates = {
    "raw signed bytes": raw_signed(raw),
    "sorted compact (int numbers)": json.dumps(doc["signed"], separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(),
    "go float64 'g' re-marshal": go_float_canon(doc["signed"]).encode(),
}
for s in doc["signatures"]:
    k = keys.get(s["keyid"])
    if not k: print(s["keyid"][:12], "key not in root/delegations"); continue
    pk = pubkey(k)
    sig = base64.b64decode(s["sig"])
    res = {n: verify(pk, s["method"], sig, m) for n, m in candidates.items()}
    print(s["keyid"][:12], s["method"], len(sig), res)
