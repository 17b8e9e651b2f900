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
GUNS=${1:-300}
source "$(dirname "$0")/bench-lib.sh" resign
start
publisher
for i in $(seq "$GUNS"); do "$TT" --server "$url" init "bench.example/r$i/app" >/dev/null 2>&1; done
stop
start --timestamp-cadence-secs 1 --resign-interval-secs 1
count() { curl -fs "$url/metrics" | awk '$1 == "tagtrust_resigns_total{role=\"timestamp\"}" {print $2}'; }
sleep 2
first=$(count); t0=$(date +%s.%N)
sleep 20
last=$(count); t1=$(date +%s.%N)
python3 -c "import sys; a,b,t0,t1=map(float,sys.argv[1:]); print(f'{int(b-a)} timestamp re-signs in {t1-t0:.1f} s over $GUNS GUNs: {(b-a)/(t1-t0):.0f} per second (SQLite, one process, $(nproc) cores)')" "${first:-0}" "${last:-0}" "$t0" "$t1"
