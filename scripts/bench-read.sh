#!/usr/bin/env bash
# The read path beside nginx serving the same bytes, optionally before and
# after a change, in one run (BENCHMARKS.md, "The read path"). Not run in CI.
#
#   [BENCH_BEFORE=DIR] [BENCH_PG=1] scripts/bench-read.sh
#
# One repository of $BENCH_TAGS tags (860: a 95 KB targets.json) is
# published to a SQLite tagtrust-server (and, with BENCH_PG=1, to one on a
# fresh PostgreSQL database); its timestamp.json and N.targets.json are
# copied byte for byte into a directory nginx serves (scripts/nginx-conf.sh:
# a worker per CPU, no access log, sendfile).
# Then, $BENCH_ROUNDS (3) times, each server in turn: `wrk $BENCH_WRK`
# (-t2 -c64 -d8s) on each file after a 2 s warm-up, and the server's CPU time
# over the run (utime+stime from /proc, all of nginx's workers) divided by
# the requests: CPU per request, which the load of other processes moves less
# than req/s. DIR, if given, holds the `tagtrust-server` to compare with (a
# release build of the earlier commit), served from a copy of the same data.
# Prints one Markdown table of medians with ratios to nginx, and each
# server's peak RSS after the load.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh" read
TAGS=${BENCH_TAGS:-860}
ROUNDS=${BENCH_ROUNDS:-3}
WRK_ARGS=${BENCH_WRK:--t2 -c64 -d8s}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# CPU ticks (utime+stime) of the given processes.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

start
publisher
read_repository "$TAGS"
files=(timestamp.json "$tv.targets.json")
sizes="timestamp.json $(stat -c %s "$W/www$base/timestamp.json") B, $tv.targets.json $(stat -c %s "$W/www$base/$tv.targets.json") B"

# Servers: name=url pids…
declare -A URL PIDS
URL[after]=$url PIDS[after]=$pid
stop_all=()
if [[ -n ${BENCH_BEFORE:-} ]]; then
  # The same data, a copy, served by the earlier build (SQLite allows one
  # writer; both only read here, but the scheduler may write).
  cp -a "$W/data" "$W/data-before"
  bport=$(free_port)
  "$BENCH_BEFORE/tagtrust-server" --listen "127.0.0.1:$bport" --data-dir "$W/data-before" >>"$W/before.log" 2>&1 &
  PIDS[before]=$! URL[before]=http://127.0.0.1:$bport
  stop_all+=("${PIDS[before]}")
  for _ in $(seq 100); do curl -fs "${URL[before]}/healthz" >/dev/null && break; sleep 0.1; done
fi
if [[ -n ${BENCH_PG:-} ]]; then
  db=benchread$$
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" test
  pgport=$(free_port)
  "$TTS" --listen "127.0.0.1:$pgport" --data-dir "$W/data-pg" --database-url "postgres://postgres@127.0.0.1:5432/$db" >>"$W/pg.log" 2>&1 &
  PIDS[postgres]=$! URL[postgres]=http://127.0.0.1:$pgport
  stop_all+=("${PIDS[postgres]}")
  for _ in $(seq 100); do curl -fs "${URL[postgres]}/healthz" >/dev/null && break; sleep 0.1; done
  token=$("$TTS" token create --data-dir "$W/data-pg" --database-url "postgres://postgres@127.0.0.1:5432/$db" --scope 'push:*' 2>/dev/null)
  # The same repository published again (other keys: the same sizes).
  TAGTRUST_HOME=$W/home-pg TAGTRUST_TOKEN=$token "$TT" --server "${URL[postgres]}" init "$gun" >/dev/null
  TAGTRUST_HOME=$W/home-pg TAGTRUST_TOKEN=$token "$TT" --server "${URL[postgres]}" tag set "$gun" --from-file "$W/tags.txt" >/dev/null
fi
ngport=$(free_port)
mkdir -p "$W/nginx"
source scripts/nginx-conf.sh
nginx_conf "$W/nginx" "$W/www" "$ngport" > "$W/nginx/nginx.conf"
"$NGINX" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log"
trap 'kill $pid "${stop_all[@]}" 2>/dev/null || true; kill "$(cat "$W/nginx/nginx.pid")" 2>/dev/null || true; [[ -n ${db:-} ]] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" test; rm -rf "$W"' EXIT
sleep 0.5
URL[nginx]=http://127.0.0.1:$ngport
PIDS[nginx]=$(pgrep -P "$(cat "$W/nginx/nginx.pid")" | tr '\n' ' ')

servers=(nginx)
[[ -n ${BENCH_BEFORE:-} ]] && servers+=(before)
servers+=(after)
[[ -n ${BENCH_PG:-} ]] && servers+=(postgres)
results=$W/results.txt
: > "$results"
for round in $(seq "$ROUNDS"); do
  for file in "${files[@]}"; do
    for s in "${servers[@]}"; do
      # The PostgreSQL server's targets has its own version number.
      f=$file
      if [[ $s == postgres && $file == *.targets.json ]]; then
        f=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["signed"]["version"])' < <(curl -fs "${URL[$s]}$base/targets.json")).targets.json
      fi
      wrk -t2 -c64 -d2s "${URL[$s]}$base/$f" >/dev/null
      # shellcheck disable=SC2086
      t0=$(ticks ${PIDS[$s]})
      # shellcheck disable=SC2086
      out=$(wrk $WRK_ARGS --latency "${URL[$s]}$base/$f")
      # shellcheck disable=SC2086
      t1=$(ticks ${PIDS[$s]})
      python3 - "$s" "${file%%.*}" "$((t1 - t0))" "$hz" "$out" >> "$results" <<'PY'
import re, sys
server, file, ticks, hz, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def ms(v):
    n, unit = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if errors:
    sys.exit(f"{server} answered {errors.group(1)} errors")
cpu_us = ticks / hz * 1e6 / total
print(server, "targets" if file.isdigit() else file, rps, p50, p99, cpu_us)
PY
      echo "bench-read.sh: round $round $s $f: $(tail -n 1 "$results") (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
  done
done
# Peak resident memory of each server after the load (VmHWM; nginx's
# largest worker).
rss=""
for s in "${servers[@]}"; do
  peak=0
  for p in ${PIDS[$s]}; do
    kb=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status")
    ((kb > peak)) && peak=$kb
  done
  rss+="$s $((peak / 1024)) MiB; "
done
echo
echo "$(nproc) CPUs, $(uname -r); $sizes; wrk $WRK_ARGS; medians of $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peak RSS after the load: ${rss%; }"
echo
python3 - "$results" "${servers[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
servers = sys.argv[2:]
print("| file | server | req/s | × nginx | p50 ms | p99 ms | p99 × nginx | server CPU µs/request |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for file in ("timestamp", "targets"):
    med = {}
    for s in servers:
        r = [x for x in rows if x[0] == s and x[1] == file]
        med[s] = [statistics.median(float(x[i]) for x in r) for i in (2, 3, 4, 5)]
    for s in servers:
        rps, p50, p99, cpu = med[s]
        n = med["nginx"]
        print(f"| {file} | {s} | {rps:,.0f} | {rps / n[0]:.2f} | {p50:.2f} | {p99:.2f} | {p99 / n[2]:.2f} | {cpu:.1f} |")
PY
