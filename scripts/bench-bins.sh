#!/usr/bin/env bash
# How large the files of a binned repository are (BENCHMARKS.md, "Hashed
# bins: file sizes"). Not run in CI.
#
#   scripts/bench-bins.sh [TAGS] [BINS…]     (default 100000 tags; 1024 bins)
#
# For each BINS: a SQLite server, `tagtrust init GUN --bins BINS`, then TAGS
# random tags in one `tag set --from-file` (a bulk import re-signs every bin,
# so the server runs with --max-body-bytes 64 MiB), and the sizes of root,
# timestamp, snapshot, targets and every bin as served. A cold lookup fetches
# root (twice: the first-use root and the 404 next-root probe), timestamp,
# snapshot, targets and one bin (tests/tests/bins.rs counts them), so its
# bytes are the sum printed. Also tries the same tags without bins, which
# the server's per-file limit (--max-file-bytes) refuses beyond a few
# tens of thousands of tags. The server admits up to 16,384 bins
# (--max-parts 16400: enabling N bins is one publish of N + 1 files). The
# gzip column is the same cold lookup by a client that sends
# `Accept-Encoding: gzip` (bytes of the bodies). Sizes do not depend on the build:
# BENCH_TARGET_DIR may point at a debug build (with its `release` symlinked).
set -euo pipefail
TAGS=${1:-100000}
shift || true
BINS=("${@:-1024}")
source "$(dirname "$0")/bench-lib.sh" bins
start --max-body-bytes 67108864 --max-parts 16400
publisher
python3 - "$TAGS" > "$W/tags.txt" <<'PY'
import os, sys
for n in range(int(sys.argv[1])):
    print(f"t{n} sha256:{os.urandom(32).hex()} {1000 + n}")
PY
size() { curl -fs "$url/v2/$1/_trust/tuf/$2" | wc -c; }
gzsize() { curl -fs -H 'Accept-Encoding: gzip' "$url/v2/$1/_trust/tuf/$2" | wc -c; }
echo "| bins | tags | targets.json | snapshot.json | timestamp.json | root.json | bin min / median / max | cold lookup bytes | the same, gzip | import s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for bins in "${BINS[@]}"; do
  gun=bench.example/bins/$bins
  "$TT" --server "$url" init "$gun" --bins "$bins" >/dev/null
  t0=$(date +%s.%N)
  "$TT" --server "$url" tag set "$gun" --from-file "$W/tags.txt" >/dev/null
  t1=$(date +%s.%N)
  names=$(curl -fs "$url/v2/$gun/_trust/tuf/snapshot.json" | python3 -c 'import json,sys; print(" ".join(f for f in json.load(sys.stdin)["signed"]["meta"] if f.startswith("bins-")))')
  # Every bin's size over one keep-alive connection (16,384 curls take minutes).
  sized=$(python3 - "$port" "/v2/$gun/_trust/tuf/" $names <<'PY' | sort -n
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for name in sys.argv[3:]:
    conn.request("GET", sys.argv[2] + name)
    print(len(conn.getresponse().read()), name)
PY
)
  sizes=$(echo "$sized" | cut -d' ' -f1)
  count=$(echo "$sizes" | wc -l)
  min=$(echo "$sizes" | sed -n 1p); max=$(echo "$sizes" | tail -n 1)
  median=$(echo "$sizes" | sed -n "$(( (count + 1) / 2 ))p")
  targets=$(size "$gun" targets.json); snapshot=$(size "$gun" snapshot.json)
  timestamp=$(size "$gun" timestamp.json); root=$(size "$gun" 1.root.json)
  probe=$(curl -s "$url/v2/$gun/_trust/tuf/2.root.json" | wc -c)
  cold=$((root + probe + timestamp + snapshot + targets + median))
  # The bin whose size is the median, compressed.
  mbin=$(echo "$sized" | sed -n "$(( (count + 1) / 2 ))p" | cut -d' ' -f2)
  gz=$(($(gzsize "$gun" 1.root.json) + probe + $(gzsize "$gun" timestamp.json) + $(gzsize "$gun" snapshot.json) \
    + $(gzsize "$gun" targets.json) + $(gzsize "$gun" "$mbin")))
  printf '| %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %.1f |\n' "$bins" "$TAGS" "$targets" "$snapshot" \
    "$timestamp" "$root" "$min" "$median" "$max" "$cold" "$gz" "$(awk "BEGIN{print $t1 - $t0}")"
done
gun=bench.example/flat
"$TT" --server "$url" init "$gun" >/dev/null
if out=$("$TT" --server "$url" tag set "$gun" --from-file "$W/tags.txt" 2>&1); then
  echo "without bins: targets.json $(size "$gun" targets.json) bytes for $TAGS tags (a lookup moves all of it)"
else
  echo "without bins: $TAGS tags in one targets file refused: $out"
fi
