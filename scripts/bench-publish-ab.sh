#!/usr/bin/env bash
# The server's share of one `tag set` for two builds, interleaved: both
# servers run at once and the tag sets alternate between them (A B, B A,
# …), so a drift of the machine lands on both sides alike instead of on
# their ratio (bench-publish.sh runs one build after the other; this
# machine drifts by ±0.3 ms between runs, more than most single changes
# save). Not run in CI.
#
#   scripts/bench-publish-ab.sh DIR_A DIR_B
#
# Each DIR holds `tagtrust` and `tagtrust-server` (release builds; the same
# DIR twice, with BENCH_ARGS_A / BENCH_ARGS_B, compares server settings).
# Per side: a fresh SQLite server behind bench-proxy.py (which times the
# POST from its last request byte to its last response byte), one
# repository of $BENCH_TAGS (10) tags in $BENCH_BINS (1,024; 0: none)
# hashed bins seeded with one `tag set --from-file`, one warm-up tag set,
# then $BENCH_RUNS (40) tag sets of one tag per side. Prints the median,
# quartiles and slowest of each side, in ms, and what the disk under the
# data took to sync a publish's worth of WAL frames in the same run (the
# COMMIT's fsync is a third or more of a binned tag set, and varies with
# the machine's state: compare runs by it). $BENCH_DIR (default /tmp)
# holds the data: /dev/shm (tmpfs, whose fsync costs nothing) measures
# the server's share without the disk's. BENCH_DATABASE_URL=postgres://
# postgres@127.0.0.1:5432 runs both servers on PostgreSQL instead, a fresh
# database each (created here, dropped after).
set -euo pipefail
A=${1:?DIR_A}; B=${2:?DIR_B}
RUNS=${BENCH_RUNS:-40}; BINS=${BENCH_BINS:-1024}; TAGS=${BENCH_TAGS:-10}
cd "$(dirname "$0")/.."
PROXY=$PWD/scripts/bench-proxy.py
W=$(mktemp -d "${BENCH_DIR:-/tmp}/tagtrust-publish-ab.XXXXXX")
pids=()
PG_BASE=${BENCH_DATABASE_URL:-}
pg_dbs=()
drop_dbs() {
  for db in "${pg_dbs[@]}"; do psql "$PG_BASE/postgres" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; done
}
trap 'kill "${pids[@]}" 2>/dev/null || true; drop_dbs; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
gun=bench.example/ab/app
python3 - "$TAGS" > "$W/tags.txt" <<'PY'
import hashlib, sys
for i in range(int(sys.argv[1])):
    print(f"t{i} sha256:{hashlib.sha256(b't%d' % i).hexdigest()} {1000 + i}")
PY

# The environment `tagtrust` runs with for side $1.
as_side() { export TAGTRUST_HOME=$W/$1/home TAGTRUST_PASSPHRASE=bench TAGTRUST_TOKEN; TAGTRUST_TOKEN=$(cat "$W/$1/token"); }

setup() { # side dir extra-args
  local side=$1 dir=$2 port pport
  port=$(free_port); pport=$(free_port)
  mkdir -p "$W/$side"
  local db=()
  if [[ -n $PG_BASE ]]; then
    local name="tagtrust_ab_${side}_$$"
    psql "$PG_BASE/postgres" -qAtc "CREATE DATABASE $name" >/dev/null
    pg_dbs+=("$name")
    db=(--database-url "$PG_BASE/$name")
  fi
  "$dir/tagtrust-server" token create --data-dir "$W/$side/data" "${db[@]}" --scope 'push:*' 2>/dev/null > "$W/$side/token"
  # shellcheck disable=SC2086 # the extra arguments are words
  "$dir/tagtrust-server" --listen "127.0.0.1:$port" --data-dir "$W/$side/data" "${db[@]}" \
    --max-body-bytes 67108864 --max-file-bytes 67108864 --max-parts $((BINS + 16)) $3 \
    >"$W/$side/server.log" 2>&1 &
  pids+=($!)
  python3 "$PROXY" "$pport" "$port" "$W/$side/proxy.jsonl" 3600 >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$pport/healthz" >/dev/null && break; sleep 0.1; done
  echo "$pport" > "$W/$side/pport"
  as_side "$side"
  local init=(init "$gun"); ((BINS == 0)) || init+=(--bins "$BINS")
  "$dir/tagtrust" --server "http://127.0.0.1:$port" "${init[@]}" >/dev/null 2>&1
  "$dir/tagtrust" --server "http://127.0.0.1:$port" tag set "$gun" --from-file "$W/tags.txt" >/dev/null
  "$dir/tagtrust" --server "http://127.0.0.1:$pport" tag set "$gun:warm" "sha256:$(openssl rand -hex 32)" --size 1 >/dev/null
}

# One tag set into side $1 through its proxy; appends the POST's ms.
one() { # side dir
  as_side "$1"
  : > "$W/$1/proxy.jsonl"
  "$2/tagtrust" --server "http://127.0.0.1:$(cat "$W/$1/pport")" tag set "$gun:latest" "sha256:$(openssl rand -hex 32)" --size 1234 >/dev/null
  sleep 0.15 # the relay logs an exchange when the connection closes
  python3 -c 'import json,sys; print(sum(e["server_ms"] for e in map(json.loads, open(sys.argv[1])) if e["method"] == "POST"))' \
    "$W/$1/proxy.jsonl" >> "$W/$1/times"
}

setup a "$A" "${BENCH_ARGS_A:-}"
setup b "$B" "${BENCH_ARGS_B:-}"
for i in $(seq "$RUNS"); do
  if ((i % 2)); then one a "$A"; one b "$B"; else one b "$B"; one a "$A"; fi
done
backend=SQLite
[[ -z $PG_BASE ]] || backend="PostgreSQL $(psql "$PG_BASE/postgres" -qAtc 'show server_version')"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $backend, $TAGS tags, $BINS bins, $RUNS tag sets per side, load $(cut -d' ' -f1-3 /proc/loadavg), data in $W"
# The disk's share: what a binned tag set's COMMIT writes to the WAL (25
# frames of a 24-byte header and a 4 KB page: BENCHMARKS.md, 2026-12-07),
# then one fsync, over the same file in place, as SQLite rewrites its WAL
# after a checkpoint; median of 50.
python3 - "$W/fsync-probe" <<'PY'
import os, statistics, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
page, frames, took = os.urandom(4096), 25, []
for _ in range(50):
    for i in range(frames):
        os.pwrite(fd, b"h" * 24, i * 4120)
        os.pwrite(fd, page, i * 4120 + 24)
    start = time.perf_counter()
    os.fsync(fd)
    took.append(time.perf_counter() - start)
    time.sleep(0.01)
os.close(fd)
os.unlink(sys.argv[1])
print(f"disk: fsync after {frames} WAL frames, median of 50: {statistics.median(took) * 1e6:.0f} µs")
PY
python3 - "$W" "$A ${BENCH_ARGS_A:-}" "$B ${BENCH_ARGS_B:-}" <<'PY'
import statistics, sys
w, names = sys.argv[1], {"a": sys.argv[2], "b": sys.argv[3]}
print("| side | build | median ms | p25 | p75 | slowest |")
print("|---|---|---:|---:|---:|---:|")
for side in "ab":
    v = sorted(float(x) for x in open(f"{w}/{side}/times"))
    print(f"| {side} | {names[side].strip()} | {statistics.median(v):.2f} | {v[len(v) // 4]:.2f} | {v[3 * len(v) // 4]:.2f} | {v[-1]:.2f} |")
PY
