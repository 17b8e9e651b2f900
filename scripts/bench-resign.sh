#!/usr/bin/env bash
# How many re-signs one tagtrust-server process sustains (BENCHMARKS.md,
# "The re-sign scheduler"). Not run in CI.
#
#   scripts/bench-resign.sh [GUNS]      (default 300)
#
# Publishes GUNS repositories (tagtrust init) on a SQLite server, restarts it
# with a one-second timestamp cadence so that every timestamp is due at each
# pass, and reads tagtrust_resigns_total{role="timestamp"} from /metrics
# once a second for 20 s: the steady rate is what one process signs and
# stores per second (each re-sign is one locked transaction: read the
# current files, sign a timestamp, store it, a changefeed record, commit).
set -euo pipefail
cd "$(dirname "$0")/.."
GUNS=${1:-300}
TARGET_DIR=${BENCH_TARGET_DIR:-/tmp/tt-release}
[[ -n ${BENCH_SKIP_BUILD:-} ]] || CARGO_TARGET_DIR=$TARGET_DIR cargo build -q --release -p tagtrust-server -p tagtrust
TT=$TARGET_DIR/release/tagtrust
TTS=$TARGET_DIR/release/tagtrust-server
W=$(mktemp -d /tmp/tagtrust-resign.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
start() {
  "$TTS" --listen "127.0.0.1:$port" --data-dir "$W/data" "$@" >>"$W/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
trap 'kill $pid 2>/dev/null || true; rm -rf "$W"' EXIT
start
token=$("$TTS" token create --data-dir "$W/data" --scope 'push:*')
export TAGTRUST_HOME=$W/home TAGTRUST_PASSPHRASE=bench TAGTRUST_TOKEN=$token
for i in $(seq "$GUNS"); do "$TT" --server "$url" init "bench.example/r$i/app" >/dev/null 2>&1; done
kill "$pid"; wait "$pid" 2>/dev/null || true
start --timestamp-cadence-secs 1 --resign-interval-secs 1
count() { curl -fs "$url/metrics" | awk '$1 == "tagtrust_resigns_total{role=\"timestamp\"}" {print $2}'; }
sleep 2
first=$(count); t0=$(date +%s.%N)
sleep 20
last=$(count); t1=$(date +%s.%N)
python3 -c "import sys; a,b,t0,t1=map(float,sys.argv[1:]); print(f'{int(b-a)} timestamp re-signs in {t1-t0:.1f} s over $GUNS GUNs: {(b-a)/(t1-t0):.0f} per second (SQLite, one process, $(nproc) cores)')" "${first:-0}" "${last:-0}" "$t0" "$t1"
