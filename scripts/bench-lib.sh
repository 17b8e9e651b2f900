# Sourced by the scale benchmarks (bench-guns.sh, bench-resign.sh) as
# `source scripts/bench-lib.sh NAME`: builds the release binaries into
# BENCH_TARGET_DIR (default /tmp/tt-release; BENCH_SKIP_BUILD=1 skips it),
# makes a work directory $W (/tmp/tagtrust-NAME.XXXXXX, removed on exit)
# and picks a free port ($url). `start [ARGS…]` starts a SQLite server
# there, `stop` stops it; `publisher` exports a home, a passphrase and a
# `push:*` token for `tagtrust`; `background CMD…` starts another process
# that is stopped on exit too.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET_DIR=${BENCH_TARGET_DIR:-/tmp/tt-release}
[[ -n ${BENCH_SKIP_BUILD:-} ]] || CARGO_TARGET_DIR=$TARGET_DIR cargo build -q --release -p tagtrust-server -p tagtrust
TT=$TARGET_DIR/release/tagtrust
TTS=$TARGET_DIR/release/tagtrust-server
W=$(mktemp -d "/tmp/tagtrust-$1.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
pid=
DBARGS=()
start() {
  "$TTS" --listen "127.0.0.1:$port" --data-dir "$W/data" "${DBARGS[@]}" "$@" >>"$W/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
others=()
background() { "$@" >>"$W/background.log" 2>&1 & others+=($!); }
trap 'kill $pid "${others[@]}" 2>/dev/null || true; rm -rf "$W"' EXIT
publisher() {
  local token
  token=$("$TTS" token create --data-dir "$W/data" "${DBARGS[@]}" --scope 'push:*' 2>/dev/null)
  export TAGTRUST_HOME=$W/home TAGTRUST_PASSPHRASE=bench TAGTRUST_TOKEN=$token
}
