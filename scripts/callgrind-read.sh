#!/usr/bin/env bash
# Instructions per cached read, counted by valgrind's callgrind: the same
# number whatever else the machine is doing, so a change to the read path
# can be measured on a busy machine (BENCHMARKS.md, "The read path").
# Not run in CI.
#
#   scripts/callgrind-read.sh [DIR…]
#
# Publishes one repository of $BENCH_TAGS (860) tags to a SQLite server of
# this tree's release build (bench-lib.sh), then for this build, each DIR
# given (a directory holding another build's `tagtrust-server`, e.g. the
# commit before a change) and nginx (one worker, serving the same bytes):
# runs the server under callgrind, makes $BENCH_WARMUP (300) keep-alive GETs,
# zeroes the counters, makes $BENCH_REQUESTS (2,000) more and divides the
# instructions counted by them. User-space instructions only: the kernel's
# part (tagtrust makes 2 system calls per read, nginx 6) is not in it.
# callgrind's count of `rep movsb`/`rep stosb` is one per byte, so large
# copies (a 95 KB body) weigh more than they cost. Profiles are left in
# $BENCH_OUT (callgrind_annotate FILE).
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh" callgrind
TAGS=${BENCH_TAGS:-860}
WARMUP=${BENCH_WARMUP:-300}
REQUESTS=${BENCH_REQUESTS:-2000}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/tagtrust-callgrind.XXXXXX)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }

start
publisher
read_repository "$TAGS"
stop

# N keep-alive GETs of a path on one connection, each answered 200.
cat > "$W/load.py" <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY

# count SERVER PORT PID PATH: instructions per request of PATH (each dump
# is the next $OUT/SERVER.out.N).
count() {
  python3 "$W/load.py" "$2" "$4" "$WARMUP"
  callgrind_control -z "$3" >/dev/null
  python3 "$W/load.py" "$2" "$4" "$REQUESTS"
  callgrind_control -d "$3" >/dev/null
  sleep 0.5
  local dump total
  dump=$(ls -t "$OUT/$1".out.* | head -1)
  total=$(awk '/^summary:/ {print $2}' "$dump")
  echo "$((total / REQUESTS))"
}

rows=()
measure() { # NAME COMMAND…: run under callgrind on $port, count both files
  local name=$1 port vp
  shift
  port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" "${@//PORT/$port}" >"$OUT/$name.log" 2>&1 &
  vp=$!
  for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$port$base/timestamp.json" && break; sleep 0.2; done
  local ts tg
  ts=$(count "$name" "$port" "$vp" "$base/timestamp.json")
  tg=$(count "$name" "$port" "$vp" "$base/$tv.targets.json")
  kill "$vp"
  wait "$vp" 2>/dev/null || true
  rows+=("| $name | $ts | $tg |")
  echo "callgrind-read.sh: $name: timestamp $ts, targets $tg instructions per request" >&2
}

server() { # NAME BINARY
  rm -rf "$W/data-$1"
  cp -a "$W/data" "$W/data-$1"
  measure "$1" "$2" --listen 127.0.0.1:PORT --data-dir "$W/data-$1"
}
server this-tree "$TTS"
i=0
for dir in "$@"; do
  i=$((i + 1))
  server "build-$i" "$dir/tagtrust-server"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
source scripts/nginx-conf.sh
mkdir -p "$W/nginx"
# One worker, in the foreground, so callgrind follows the process serving.
nginx_conf "$W/nginx" "$W/www" PORT | sed 's/^worker_processes auto;/worker_processes 1; master_process off; daemon off;/' > "$W/nginx/nginx.conf.in"
ngport=$(free_port)
sed "s/PORT/$ngport/" "$W/nginx/nginx.conf.in" > "$W/nginx/nginx.conf"
valgrind --tool=callgrind --callgrind-out-file="$OUT/nginx.out" "$NGINX" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" >"$OUT/nginx.log" 2>&1 &
vp=$!
for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$ngport$base/timestamp.json" && break; sleep 0.2; done
ts=$(count nginx "$ngport" "$vp" "$base/timestamp.json")
tg=$(count nginx "$ngport" "$vp" "$base/$tv.targets.json")
kill "$vp"
wait "$vp" 2>/dev/null || true
rows+=("| nginx | $ts | $tg |")

echo
echo "instructions per GET (callgrind, user space; $REQUESTS keep-alive requests after $WARMUP; timestamp.json $(stat -c %s "$W/www$base/timestamp.json") B, $tv.targets.json $(stat -c %s "$W/www$base/$tv.targets.json") B)"
echo
echo "| server | timestamp.json | $tv.targets.json |"
echo "|---|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "profiles: $OUT"
