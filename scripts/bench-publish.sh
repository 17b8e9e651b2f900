#!/usr/bin/env bash
# The server's share of one `tagtrust tag set`, before and after a change,
# in one run (BENCHMARKS.md, "Server-side publish, before and after").
# Not run in CI.
#
#   BENCH_BEFORE=DIR scripts/bench-publish.sh [SIZES…]   (default: 10 10000 100000)
#
# DIR holds the `tagtrust` and `tagtrust-server` binaries to compare with
# (a release build of the earlier commit); the current tree's release build
# is the other side (bench-lib.sh builds it). For each build and each SIZE:
# a fresh SQLite server, one repository of SIZE tags in $BENCH_BINS (1,024)
# hashed bins and, up to 10,000 tags, one without bins (both seeded with one
# `tag set --from-file`); then $BENCH_RUNS (10) publishes of one tag into
# each, through bench-proxy.py, which times the server's part of the POST
# (last request byte to last response byte), and the end-to-end wall time
# of each `tag set`. Prints one Markdown table of medians (and the slowest
# server time, where a COMMIT that checkpoints SQLite's WAL shows).
#
# BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432 runs every server on
# PostgreSQL instead: a fresh database on that server for each one
# (created here, dropped after), not SQLite.
#
# Above 100,000 tags the seed is split by bin into publishes of at most
# 100,000 tags each (a publish that touches every bin uploads all of them:
# ~110 MB at a million tags), and BENCH_BINS above 1,024 raises the
# server's --max-parts: `BENCH_BINS=4096 scripts/bench-publish.sh 1000000`.
set -euo pipefail
SIZES=("$@")
((${#SIZES[@]})) || SIZES=(10 10000 100000)
BEFORE=${BENCH_BEFORE:?BENCH_BEFORE=DIR with the binaries to compare with}
source "$(dirname "$0")/bench-lib.sh" publish
BINS=${BENCH_BINS:-1024}
RUNS=${BENCH_RUNS:-10}
PROXY=$PWD/scripts/bench-proxy.py
PG_BASE=${BENCH_DATABASE_URL:-}
pg_db=
drop_db() { [[ -z $pg_db ]] || psql "$PG_BASE/postgres" -qAtc "DROP DATABASE IF EXISTS $pg_db" >/dev/null; pg_db=; }
trap 'kill $pid "${others[@]}" 2>/dev/null || true; drop_db; rm -rf "$W"' EXIT
backend=SQLite
[[ -z $PG_BASE ]] || backend="PostgreSQL $(psql "$PG_BASE/postgres" -qAtc 'show server_version')"
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.1f}" if v else "-")'; }
slowest() { python3 -c 'import sys; v=[float(x) for x in sys.stdin.read().split()]; print(f"{max(v):.1f}" if v else "-")'; }
now_ms() { date +%s%3N; }

# One tag set into $2 through the proxy, $RUNS times: the server's POST
# time and the wall time, one "server wall" line per run, into $3.
publish_runs() { # client gun out
  for _ in $(seq "$RUNS"); do
    : > "$W/proxy.jsonl"
    t0=$(now_ms)
    "$1" --server "http://127.0.0.1:$pport" tag set "$2:latest" "sha256:$(openssl rand -hex 32)" --size 1234 >/dev/null
    t1=$(now_ms)
    sleep 0.2 # the relay logs an exchange when the connection closes
    local server; server=$(python3 -c 'import json,sys; print(sum(e["server_ms"] for e in map(json.loads, open(sys.argv[1])) if e["method"] == "POST"))' "$W/proxy.jsonl")
    echo "$server $((t1 - t0))" >> "$3"
  done
}

# Publish the tags of $W/tags.txt into $2 with client $1: in one tag set,
# or (bins, over 100,000 tags) in tag sets of whole bins, ≤ 100,000 tags each.
seed() { # client gun kind
  if [[ $3 == flat ]] || (($(wc -l < "$W/tags.txt") <= 100000)); then
    "$1" --server "$url" tag set "$2" --from-file "$W/tags.txt" >/dev/null
    return
  fi
  rm -f "$W"/seed-*.txt
  python3 - "$W/tags.txt" "$BINS" "$W/seed" <<'PY'
import hashlib, sys
path, bins, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bits = bins.bit_length() - 1
by_bin = {}
for line in open(path):
    tag = line.split()[0]
    # TAP 15: a target's bin is the first bit_length bits of its name's sha256.
    b = int.from_bytes(hashlib.sha256(tag.encode()).digest()[:4], "big") >> (32 - bits)
    by_bin.setdefault(b, []).append(line)
chunk, n, files = [], 0, 0
for b in sorted(by_bin):
    if n + len(by_bin[b]) > 100000 and chunk:
        open(f"{out}-{files:03d}.txt", "w").writelines(chunk)
        chunk, n, files = [], 0, files + 1
    chunk += by_bin[b]
    n += len(by_bin[b])
open(f"{out}-{files:03d}.txt", "w").writelines(chunk)
PY
  local part listed
  for part in "$W"/seed-*.txt; do
    "$1" --server "$url" tag set "$2" --from-file "$part" >/dev/null
  done
  # Counted by this tree's client: older ones listed at most 32 bins.
  listed=$("$TT" --server "$url" list "$2" -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [[ $listed == $(wc -l < "$W/tags.txt") ]] || { echo "seeded $listed tags, not $(wc -l < "$W/tags.txt")" >&2; exit 1; }
}

rows=()
for side in before after; do
  if [[ $side == before ]]; then client=$BEFORE/tagtrust server_bin=$BEFORE/tagtrust-server; else client=$TT server_bin=$TTS; fi
  for n in "${SIZES[@]}"; do
    rm -rf "$W/data" "$W/home"
    # A new port each time: the previous server may still hold its own.
    port=$(free_port)
    url=http://127.0.0.1:$port
    if [[ -n $PG_BASE ]]; then
      pg_db=tagtrust_benchpub_$$_${side}_$n
      psql "$PG_BASE/postgres" -qAtc "CREATE DATABASE $pg_db" >/dev/null
      DBARGS=(--database-url "$PG_BASE/$pg_db")
    fi
    TTS=$server_bin start --max-body-bytes 67108864 --max-file-bytes 67108864 --max-parts $((BINS + 16))
    TTS=$server_bin publisher
    pport=$(free_port)
    python3 "$PROXY" "$pport" "$port" "$W/proxy.jsonl" 3600 >/dev/null 2>&1 &
    proxy=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$pport/healthz" >/dev/null && break; sleep 0.1; done
    tag_list "$n" > "$W/tags.txt"
    kinds=(bins)
    ((n > 10000)) || kinds+=(flat)
    for kind in "${kinds[@]}"; do
      gun=bench.example/$kind/n$n
      if [[ $kind == bins ]]; then "$client" --server "$url" init "$gun" --bins "$BINS" >/dev/null
      else "$client" --server "$url" init "$gun" >/dev/null; fi
      seed "$client" "$gun" "$kind"
      "$client" --server "http://127.0.0.1:$pport" tag set "$gun:warm" "sha256:$(openssl rand -hex 32)" --size 1 >/dev/null
      out=$W/runs-$side-$kind-$n.txt
      : > "$out"
      publish_runs "$client" "$gun" "$out"
      rows+=("$n|$kind|$side|$(cut -d' ' -f1 "$out" | median)|$(cut -d' ' -f2 "$out" | median)|$(cut -d' ' -f1 "$out" | slowest)")
      echo "bench-publish.sh: $side $kind $n tags: server $(cut -d' ' -f1 "$out" | median) ms (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
    kill "$proxy"
    stop
    drop_db
    tail -n 3 "$W/server.log" >&2
  done
done

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $backend, load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs each, medians (ms)"
echo
echo "| tags | bins | server before | server after | after ÷ before | slowest server before | slowest after | end to end before | end to end after |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
python3 - "$BINS" "${rows[@]}" <<'PY'
import sys
bin_count = int(sys.argv[1])
rows = [r.split("|") for r in sys.argv[2:]]
by = {(n, k, s): (float(a), float(b), float(m)) for n, k, s, a, b, m in rows}
for n, k in sorted({(n, k) for n, k, *_ in rows}, key=lambda x: (int(x[0]), x[1])):
    (sb, eb, mb), (sa, ea, ma) = by[(n, k, "before")], by[(n, k, "after")]
    bins = f"{bin_count:,}" if k == "bins" else "none"
    r = sa / sb
    ratio = f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"
    print(f"| {int(n):,} | {bins} | {sb:.1f} | {sa:.1f} | {ratio} | {mb:.1f} | {ma:.1f} | {eb:.0f} | {ea:.0f} |")
PY
