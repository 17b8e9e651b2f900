# Sourced by the scale benchmarks (bench-guns.sh, bench-resign.sh) as
# `source scripts/bench-lib.sh NAME`: builds the release binaries into
# BENCH_TARGET_DIR (default /tmp/tt-release; BENCH_SKIP_BUILD=1 skips it),
# makes a work directory $W (/tmp/tagtrust-NAME.XXXXXX, removed on exit)
# and picks a free port ($url). `start [ARGS…]` starts a SQLite server
# there, `stop` stops it; `publisher` exports a home, a passphrase and a
# `push:*` token for `tagtrust`; `background CMD…` starts another process
# that is stopped on exit too. Helpers: `free_port`, `tag_list N` (N tag
# lines for `tag set --from-file`), `read_repository N` (the repository the
# read benchmarks serve, also copied for nginx).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET_DIR=${BENCH_TARGET_DIR:-/tmp/tt-release}
[[ -n ${BENCH_SKIP_BUILD:-} ]] || CARGO_TARGET_DIR=$TARGET_DIR cargo build -q --release -p tagtrust-server -p tagtrust
TT=$TARGET_DIR/release/tagtrust
TTS=$TARGET_DIR/release/tagtrust-server
W=$(mktemp -d "/tmp/tagtrust-$1.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
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
# N lines `tI sha256:HEX SIZE`, the same tags every run.
tag_list() {
  python3 - "$1" <<'PY'
import hashlib, sys
for i in range(int(sys.argv[1])):
    print(f"t{i} sha256:{hashlib.sha256(b't%d' % i).hexdigest()} {1000 + i}")
PY
}
# Publish `bench.example/read/app` with N tags to the server at $url (as
# `publisher`) and copy its timestamp.json and N.targets.json byte for byte
# under $W/www, where nginx serves them beside it. Sets gun, base (the
# metadata path) and tv (the targets version).
read_repository() {
  gun=bench.example/read/app
  base=/v2/$gun/_trust/tuf
  tag_list "$1" > "$W/tags.txt"
  "$TT" --server "$url" init "$gun" >/dev/null
  "$TT" --server "$url" tag set "$gun" --from-file "$W/tags.txt" >/dev/null
  tv=$(curl -fs "$url$base/targets.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["signed"]["version"])')
  mkdir -p "$W/www$base"
  local f
  for f in timestamp.json "$tv.targets.json"; do curl -fs "$url$base/$f" -o "$W/www$base/$f"; done
  chmod -R a+rX "$W"
}
