#!/usr/bin/env python3
"""Probe which canonical form notary-server re-computes before verifying: sign OLPC/securesystemslib-style
canonical bytes for edge-case values and see whether notary-server 0.7 accepts them.
usage: canon_probe.py SERVER GUN ROLEFILE.json KEYID KEY.pem START_VERSION"""
import sys, json, base64, subprocess, urllib.request, uuid
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
server, gun, src, keyid, keyfile, ver = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
key = serialization.load_pem_private_key(open(keyfile, "rb").read(), None)
def olpc(o):  # securesystemslib encode_canonical: escape only \ and ", no whitespace, sorted keys, ints only
    if isinstance(o, dict): return "{" + ",".join(olpc(k) + ":" + olpc(o[k]) for k in sorted(o)) + "}"
    if isinstance(o, list): return "[" + ",".join(olpc(x) for x in o) + "]"
    if isinstance(o, str): return '"' + o.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if o is True: return "true"
    if o is False: return "false"
    if o is None: return "null"
    if isinstance(o, float): return repr(o)
    return str(o)
def post(role, body):
    b = uuid.uuid4().hex
    data = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\r\n").encode() + body + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(f"{server}/v2/{gun}/_trust/tuf/", data=data, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={b}"})
    try: return urllib.request.urlopen(req).status, ""
    except urllib.error.HTTPError as e: return e.code, e.read().decode()[:160]
base = json.load(open(src))["signed"]
def variant(name, mutate, pretty=False):
    global ver
    s = json.loads(json.dumps(base)); ver += 1; s["version"] = ver; mutate(s)
    msg = olpc(s).encode("utf-8")
    r, t = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    sig = [{"keyid": keyid, "method": "ecdsa", "sig": base64.b64encode(r.to_bytes(32, "big") + t.to_bytes(32, "big")).decode()}]
    signed_part = json.dumps(s, indent=2, ensure_ascii=True).encode() if pretty else msg
    body = b'{"signed":' + signed_part + b',"signatures":' + json.dumps(sig).encode() + b"}"
    st, err = post("targets/releases", body)
    if st != 200: ver -= 1
    print(f"{name:55s} -> {st} {err}")
    return body
t0 = base["targets"]["rel/1.0"]
variant("baseline (OLPC bytes)", lambda s: None)
variant("target name with < > & (raw in signed bytes)", lambda s: s["targets"].update({"rel/<a>&b": t0}))
variant("target name with U+00E9 (raw UTF-8)", lambda s: s["targets"].update({"rel/caf\u00e9": t0}))
variant("target name with U+2028 (raw UTF-8)", lambda s: s["targets"].update({"rel/a\u2028b": t0}))
variant("target name with control char U+0001 (raw)", lambda s: s["targets"].update({"rel/a\u0001b": t0}))
variant("target name with tab (raw)", lambda s: s["targets"].update({"rel/a\tb": t0}))
variant("custom with integer 12345678901234567890 (>2^53)", lambda s: s["targets"].update({"rel/big": dict(t0, custom={"n": 12345678901234567890})}))
variant("custom with integer 9007199254740993 (2^53+1)", lambda s: s["targets"].update({"rel/b53": dict(t0, custom={"n": 9007199254740993})}))
variant("custom with integer 1000000 (1e6)", lambda s: s["targets"].update({"rel/m": dict(t0, custom={"n": 1000000})}))
variant("custom with float 1.5", lambda s: s["targets"].update({"rel/f": dict(t0, custom={"f": 1.5})}))
variant("custom with negative int -3", lambda s: s["targets"].update({"rel/neg": dict(t0, custom={"n": -3})}))
variant("custom with nested object, null, bool, array", lambda s: s["targets"].update({"rel/o": dict(t0, custom={"z": {"b": None, "a": [True, False]}})}))
body = variant("signed part pretty-printed (sig over canonical)", lambda s: None, pretty=True)
served = urllib.request.urlopen(f"{server}/v2/{gun}/_trust/tuf/targets/releases.json").read()
print("served bytes identical to uploaded pretty-printed bytes:", served == body)
