#!/usr/bin/env python3
"""List the multipart parts (filename, version, size) of every POST in a wire log."""
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["method"] != "POST" or "boundary=" not in d["req_headers"].get("Content-Type", ""): continue
    bd = d["req_headers"]["Content-Type"].split("boundary=")[1]
    out = []
    for p in d["req_body"].split("--" + bd)[1:-1]:
        h, body = p.split("\r\n\r\n", 1)
        name = h.split('filename="')[1].split('"')[0]
        s = json.loads(body[:-2])["signed"]
        out.append(f"{name}(v{s['version']},{len(body)-2}B,expires {s['expires']})")
    print(d["path"], d["status"], ", ".join(out))
