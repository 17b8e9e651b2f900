#!/usr/bin/env python3
"""POST role files to a notary-server the way the CLI does (multipart/form-data, field "files", filename=ROLE).
usage: post.py URL GUN role=path [role=path ...]   prints status, headers and body"""
import sys, urllib.request, uuid
url, gun, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
b = uuid.uuid4().hex
body = b""
for p in parts:
    role, path = p.split("=", 1)
    body += (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode() + open(path, "rb").read() + b"\r\n"
body += f"--{b}--\r\n".encode()
req = urllib.request.Request(f"{url}/v2/{gun}/_trust/tuf/", data=body, method="POST",
                             headers={"Content-Type": f"multipart/form-data; boundary={b}"})
try:
    r = urllib.request.urlopen(req); print(r.status, dict(r.headers), r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, dict(e.headers), e.read().decode())
