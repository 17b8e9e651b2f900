#!/usr/bin/env bash
# Instructions per `tag set` into a repository of hashed bins, counted by
# valgrind's callgrind, for this tree's release build and any other builds
# given: the same number whatever else the machine is doing, so a change
# to the publish path can be measured when wall-clock medians drift by
# more than it saves (BENCHMARKS.md, "Server-side publish in instructions").
# Not run in CI.
#
#   scripts/callgrind-publish.sh [DIR…]
#
# For each build (DIR holds another build's `tagtrust-server`, e.g. the
# commit before a change): a fresh SQLite server under callgrind, one
# repository of $BENCH_TAGS (10) tags in $BENCH_BINS (1,024) bins, two
# warm-up tag sets, then the counters zeroed and $BENCH_RUNS (20) tag sets
# by this tree's client (each: the root probe, timestamp, snapshot and one
# bin read, then the POST). Prints the instructions per tag set in all of
# the server's threads and in the thread that ran the POST's `apply`
# (validation, signing, its share of the database calls; SQLite itself
# runs on sqlx's worker thread), and the sha256 part of them: valgrind
# hides the CPU's SHA extensions, so sha256 is counted at its software
# cost, several times what it costs outside valgrind. User-space only.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh" callgrind-publish
BINS=${BENCH_BINS:-1024}
TAGS=${BENCH_TAGS:-10}
RUNS=${BENCH_RUNS:-20}
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
tag_list "$TAGS" > "$W/tags.txt"

# Per tag set: all threads, the apply thread, sha256; for server binary $1.
count() {
  local server=$1 data=$W/data-$RANDOM out=$W/callgrind.out
  rm -f "$out"*
  TAGTRUST_TOKEN=$("$server" token create --data-dir "$data" --scope 'push:*' 2>/dev/null)
  export TAGTRUST_HOME=$W/home-$RANDOM TAGTRUST_PASSPHRASE=bench TAGTRUST_TOKEN
  valgrind --tool=callgrind --callgrind-out-file="$out" "$server" --listen "127.0.0.1:$port" \
    --data-dir "$data" >>"$W/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do curl -fs "$url/healthz" >/dev/null && break; sleep 0.2; done
  local gun=bench.example/callgrind/app
  "$TT" --server "$url" init "$gun" --bins "$BINS" >/dev/null
  "$TT" --server "$url" tag set "$gun" --from-file "$W/tags.txt" >/dev/null
  "$TT" --server "$url" tag set "$gun:warm" "sha256:$(openssl rand -hex 32)" --size 1 >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  for _ in $(seq "$RUNS"); do
    "$TT" --server "$url" tag set "$gun:latest" "sha256:$(openssl rand -hex 32)" --size 1234 >/dev/null
  done
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  # The dump made above is part 1 (the rest of the run goes to the file
  # itself when the server exits).
  python3 - "$out.1" "$RUNS" <<'PY'
import re, subprocess, sys
path, runs = sys.argv[1], int(sys.argv[2])
def annotate(*args):
    return subprocess.run(["callgrind_annotate", "--threshold=100", *args, path],
                          capture_output=True, text=True, check=True).stdout
def first(text, pattern):
    m = re.search(r"^\s*([\d,]+) .*" + pattern, text, re.M)
    return int(m.group(1).replace(",", "")) if m else 0
flat, inclusive = annotate(), annotate("--inclusive=yes")
total = first(flat, "PROGRAM TOTALS")
apply = first(inclusive, re.escape("routes::publish::apply::{{closure}}"))
sha256 = first(flat, re.escape("sha2::sha256::compress256"))
print(f"{total / runs / 1e6:.2f} {apply / runs / 1e6:.2f} {sha256 / runs / 1e6:.2f}")
PY
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $BINS bins, $TAGS tags, $RUNS tag sets each"
echo
echo "| build | all threads (M instructions per tag set) | apply's thread | of all, sha256 |"
echo "|---|---:|---:|---:|"
for build in "$TTS" "$@"; do
  [[ $build == "$TTS" ]] || build=$build/tagtrust-server
  read -r total apply sha256 < <(count "$build")
  echo "| $build | $total | $apply | $sha256 |"
done
