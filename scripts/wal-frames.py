#!/usr/bin/env python3
"""The pages the last write transactions put in a tagtrust SQLite WAL, by b-tree.

    scripts/wal-frames.py DATA_DIR [TRANSACTIONS]   (default: the last 2)

Copies DATA_DIR/tagtrust.db and its -wal and -shm aside (opening the live
files could checkpoint them), reads the WAL's frame headers (page number,
and the database size that marks a commit frame), splits the frames into
transactions, and names each page's b-tree with the `sqlite3` CLI's
`dbstat` table. What BENCHMARKS.md's count of WAL frames per tag set comes
from: run it on a server's data directory after a few `tag set`s.
"""
import collections
import os
import shutil
import struct
import subprocess
import sys
import tempfile

data, last = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
copy = tempfile.mkdtemp()
for suffix in ("", "-wal", "-shm"):
    path = os.path.join(data, "tagtrust.db" + suffix)
    if os.path.exists(path):
        shutil.copy(path, os.path.join(copy, "tagtrust.db" + suffix))
wal = open(os.path.join(copy, "tagtrust.db-wal"), "rb").read()
page_size = struct.unpack(">I", wal[8:12])[0]
salt = wal[16:24]
transactions, current, offset = [], [], 32
# A frame: 24-byte header (page, commit size, salt, checksum), then the page;
# frames left from before the WAL's last restart carry another salt.
while offset + 24 + page_size <= len(wal) and wal[offset + 8 : offset + 16] == salt:
    page, commit = struct.unpack(">II", wal[offset : offset + 8])
    current.append(page)
    if commit:
        transactions.append(current)
        current = []
    offset += 24 + page_size
out = subprocess.run(
    ["sqlite3", os.path.join(copy, "tagtrust.db"), "SELECT pageno, name FROM dbstat"],
    capture_output=True, text=True, check=True,
).stdout
owner = dict((int(p), name) for p, name in (line.split("|", 1) for line in out.splitlines()))
owner[1] = "page 1 (" + owner.get(1, "sqlite_schema") + ")"
print(f"{sum(map(len, transactions))} frames in {len(transactions)} transactions since the WAL restarted")
for pages in transactions[-last:]:
    counts = collections.Counter(owner.get(p, f"page {p} (not in dbstat)") for p in pages)
    print(f"{len(pages)} frames: " + ", ".join(f"{name} {n}" for name, n in counts.most_common()))
shutil.rmtree(copy)
