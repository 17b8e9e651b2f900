#!/usr/bin/env bash
# Benchmarks: tagtrust beside a reference, in the same run (DESIGN.md §6).
# Not run in CI. Results and the raw wrk/hyperfine output go to $BENCH_OUT;
# a Markdown summary is printed at the end (and written to summary.md).
#
#   scripts/bench.sh
#
# What it does, in order:
#   1. installs nginx, wrk and hyperfine with apt-get if missing, makes a
#      python-tuf virtualenv, builds release binaries into a separate target
#      dir (so other builds in target/ are not blocked);
#   2. starts tagtrust-server twice on free loopback ports: SQLite (default)
#      and PostgreSQL (a fresh database, dropped at the end);
#   3. on each: `tagtrust init`, one `tagtrust tag set …:latest`, then
#      $BENCH_TAGS-1 more tags in one signed targets publish (so the targets
#      file has realistic size), published over the HTTP API by a small
#      python-tuf script that signs with the same encrypted targets key;
#   4. copies timestamp.json and N.targets.json (exact bytes) from the SQLite
#      server into a static tree served by nginx on a free loopback port
#      (twice: as they are, and gzip-compressed per request);
#   4b. Debian's notary-server (memory store) with as many tags, published
#      by the notary CLI (if the notary package is installed);
#   5. server reads: wrk on timestamp.json and N.targets.json, nginx / notary / SQLite
#      / PostgreSQL interleaved, $BENCH_ROUNDS rounds; N.targets.json once
#      more with `Accept-Encoding: gzip` from nginx and tagtrust; then the
#      peak RSS of every server (notary's too);
#   6. publishes: hyperfine `tagtrust tag set` (end to end) on both servers,
#      beside `openssl pkey` decrypting the same key file (the PBKDF2 cost
#      every tag set pays), then direct HTTP publishes of pre-signed files;
#   7. lookups: hyperfine `tagtrust lookup` vs python-tuf ngclient
#      (tests/python/ngclient_lookup.py), warm and cold, same server;
#   8. stops everything it started and prints the summary.
#
# Knobs (environment): BENCH_OUT, BENCH_TARGET_DIR (/tmp/tt-release),
# BENCH_VENV (/tmp/benchvenv), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432),
# BENCH_TAGS (500), BENCH_WRK ("-t2 -c32 -d10s"), BENCH_ROUNDS (2),
# BENCH_PUBLISH_RUNS (20), BENCH_HTTP_PUBLISHES (200), BENCH_LOOKUP_RUNS (30),
# BENCH_SKIP_BUILD=1, BENCH_SKIP_PG=1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

TARGET_DIR=${BENCH_TARGET_DIR:-/tmp/tt-release}
VENV=${BENCH_VENV:-/tmp/benchvenv}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
TAGS=${BENCH_TAGS:-500}
WRK_ARGS=${BENCH_WRK:--t2 -c32 -d10s}
ROUNDS=${BENCH_ROUNDS:-2}
PUBLISH_RUNS=${BENCH_PUBLISH_RUNS:-20}
HTTP_PUBLISHES=${BENCH_HTTP_PUBLISHES:-200}
LOOKUP_RUNS=${BENCH_LOOKUP_RUNS:-30}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/tagtrust-bench.XXXXXX)}
mkdir -p "$OUT"
W=$(mktemp -d /tmp/tagtrust-bench-work.XXXXXX)
chmod 755 "$W" # nginx workers may run as another user

GUN=registry.example.com/acme/app
PASS=bench-passphrase-not-a-secret
DIGEST=sha256:4b1f6e5cbbd0e2a1b8a7c4d8f6a0c7e1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a697
log() { echo "bench.sh: $*" >&2; }

# --- 1. tools, venv, build -------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v hyperfine >/dev/null || need+=(hyperfine)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get install -y "${need[@]}" >/dev/null || { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! "$VENV/bin/python" -c 'import tuf.ngclient' >/dev/null 2>&1; then
  log "creating the python-tuf virtualenv in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
PY=$VENV/bin/python
if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
  log "building release binaries into $TARGET_DIR"
  CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p tagtrust-server -p tagtrust
fi
TT=$TARGET_DIR/release/tagtrust
TTS=$TARGET_DIR/release/tagtrust-server

# --- process bookkeeping ----------------------------------------------------
pids=()
PG_DB=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $PG_DB ]]; then
    psql "$PG_URL/postgres" -qAtc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  fi
  rm -rf "$W"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  log "nothing answered at $1"; return 1
}

# --- machine facts ------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "tagtrust: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- client server shared 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "rustc: $(rustc --version)"
  echo "nginx: $("$NGINX" -v 2>&1 | sed 's/.*: //')"
  echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "hyperfine: $(hyperfine --version | awk '{print $2}')"
  echo "python: $("$PY" --version | awk '{print $2}'), python-tuf $("$PY" -c 'import tuf; print(tuf.__version__)')"
  echo "postgresql: $(psql "$PG_URL/postgres" -qAtc 'show server_version' 2>/dev/null || echo unavailable)"
  echo "openssl: $(openssl version)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# --- 2. servers -----------------------------------------------------------------
start_server() { # name extra-args...; sets PORT[name]
  local name=$1; shift
  local port; port=$(free_port)
  "$TTS" --listen "127.0.0.1:$port" --data-dir "$W/$name" "$@" >"$OUT/server-$name.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/healthz"
  PORT[$name]=$port
}
backends=(sqlite)
declare -A PORT TOKEN DBARGS
DBARGS[sqlite]=""
start_server sqlite
if [[ -z ${BENCH_SKIP_PG:-} ]]; then
  PG_DB=tagtrust_bench_$$_$(date +%s)
  psql "$PG_URL/postgres" -qAtc "CREATE DATABASE $PG_DB" >/dev/null
  DBARGS[pg]="--database-url $PG_URL/$PG_DB"
  # shellcheck disable=SC2086
  start_server pg ${DBARGS[pg]}
  backends+=(pg)
fi

# --- 3. repositories ---------------------------------------------------------------
cat > "$W/publish.py" <<'PYEOF'
"""Sign and publish targets over tagtrust's HTTP API with python-tuf.

publish.py seed URL GUN HOME PASSPHRASE TOKEN COUNT     add COUNT tags in one publish
publish.py direct URL GUN HOME PASSPHRASE TOKEN COUNT   COUNT publishes, each moving
    `latest`; all versions are signed first, only the POSTs are timed.
"""
import glob, hashlib, json, os, statistics, sys, time, uuid
import urllib3
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, TargetFile

mode, url, gun, home, passphrase, token, count = sys.argv[1:8]
count = int(count)
base = f"{url}/v2/{gun}/_trust/tuf/"
http = urllib3.PoolManager()

def get(name):
    r = http.request("GET", base + name)
    assert r.status == 200, (name, r.status, r.data[:200])
    return r.data

root = Metadata[Root].from_bytes(get("root.json")).signed
targets = Metadata.from_bytes(get("targets.json"))
keyid = root.roles["targets"].keyids[0]
[pem] = glob.glob(os.path.join(home, "keys", gun.replace("/", "%2F"), f"targets.{keyid}.pem"))
with open(pem, "rb") as f:
    private = load_pem_private_key(f.read(), password=passphrase.encode())
signer = CryptoSigner(private, root.keys[keyid])

def target(i):
    digest = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
    # What `tag set` writes for an image manifest: the default media type
    # is implicit, so no `custom`.
    return TargetFile(1000 + i, {"sha256": digest}, "")

def signed_bytes():
    targets.signatures.clear()
    targets.sign(signer)
    return targets.to_bytes()

def post(body_bytes):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + body_bytes + f"\r\n--{boundary}--\r\n".encode()
    r = http.request("POST", base, body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": f"Bearer {token}"})
    assert r.status == 200, (r.status, r.data[:300])

if mode == "seed":
    for i in range(count):
        t = target(i); t.path = f"tag-{i:04d}"
        targets.signed.targets[t.path] = t
    targets.signed.version += 1
    post(signed_bytes())
    print(json.dumps({"targets_version": targets.signed.version, "tags": len(targets.signed.targets)}))
else:
    bodies = []
    for i in range(count):
        t = target(100000 + i); t.path = "latest"
        targets.signed.targets["latest"] = t
        targets.signed.version += 1
        bodies.append(signed_bytes())
    post_times = []
    start = time.perf_counter()
    for b in bodies:
        t0 = time.perf_counter(); post(b); post_times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    q = statistics.quantiles(post_times, n=100, method="inclusive")
    print(json.dumps({"publishes": count, "seconds": total, "per_second": count / total,
                      "bytes": len(bodies[-1]), "p50_ms": q[49] * 1e3, "p90_ms": q[89] * 1e3,
                      "p99_ms": q[98] * 1e3, "max_ms": max(post_times) * 1e3}))
PYEOF

for b in "${backends[@]}"; do
  url=http://127.0.0.1:${PORT[$b]}
  # shellcheck disable=SC2086
  TOKEN[$b]=$("$TTS" --data-dir "$W/$b" ${DBARGS[$b]} token create --scope 'push:*' 2>/dev/null)
  export TAGTRUST_HOME=$W/pub-$b TAGTRUST_PASSPHRASE=$PASS TAGTRUST_TOKEN=${TOKEN[$b]} TAGTRUST_SERVER=$url
  "$TT" init "$GUN" >/dev/null 2>&1
  "$TT" tag set "$GUN:latest" "$DIGEST" --size 1234 >/dev/null
  "$PY" "$W/publish.py" seed "$url" "$GUN" "$TAGTRUST_HOME" "$PASS" "${TOKEN[$b]}" $((TAGS - 1)) > "$OUT/seed-$b.json"
  unset TAGTRUST_HOME TAGTRUST_PASSPHRASE TAGTRUST_TOKEN TAGTRUST_SERVER
  log "$b: $(cat "$OUT/seed-$b.json")"
done

# --- 4. nginx with the same bytes ----------------------------------------------------
S=http://127.0.0.1:${PORT[sqlite]}/v2/$GUN/_trust/tuf
TV=$(curl -fsS "$S/timestamp.json" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["signed"]["meta"]["snapshot.json"]["version"])')
SV=$TV
TGV=$(curl -fsS "$S/$SV.snapshot.json" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["signed"]["meta"]["targets.json"]["version"])')
TFILE=$TGV.targets.json
mkdir -p "$W/www/v2/$GUN/_trust/tuf" "$W/nginx"
curl -fsS -o "$W/www/v2/$GUN/_trust/tuf/timestamp.json" "$S/timestamp.json"
curl -fsS -o "$W/www/v2/$GUN/_trust/tuf/$TFILE" "$S/$TFILE"
chmod -R a+rX "$W/www"
NGPORT=$(free_port)
NGZPORT=$(free_port)
source "$REPO/scripts/nginx-conf.sh"
nginx_conf "$W/nginx" "$W/www" "$NGPORT" "$NGZPORT" > "$W/nginx/nginx.conf"
"$NGINX" -e "$W/nginx/error.log" -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$NGPORT/v2/$GUN/_trust/tuf/timestamp.json"
declare -A RURL
RURL[nginx]=http://127.0.0.1:$NGPORT/v2/$GUN/_trust/tuf
RURL[nginx-gzip]=http://127.0.0.1:$NGZPORT/v2/$GUN/_trust/tuf
for b in "${backends[@]}"; do
  RURL[$b]=http://127.0.0.1:${PORT[$b]}/v2/$GUN/_trust/tuf
  RURL[$b-gzip]=${RURL[$b]}
done
for f in timestamp.json "$TFILE"; do
  cmp <(curl -fsS "${RURL[nginx]}/$f") <(curl -fsS "${RURL[sqlite]}/$f") || { log "nginx and tagtrust differ on $f"; exit 1; }
done
{
  echo "targets file: $TFILE"
  for b in "${backends[@]}"; do
    echo "$b: timestamp.json $(curl -fsS "${RURL[$b]}/timestamp.json" | wc -c) bytes, $TFILE $(curl -fsS "${RURL[$b]}/$TFILE" | wc -c) bytes"
  done
  echo "$TFILE with Accept-Encoding: gzip: tagtrust $(curl -fsS -H 'Accept-Encoding: gzip' "${RURL[sqlite]}/$TFILE" | wc -c) bytes, nginx (level 1) $(curl -fsS -H 'Accept-Encoding: gzip' "${RURL[nginx-gzip]}/$TFILE" | wc -c) bytes"
} > "$OUT/files.txt"
cat "$OUT/files.txt" >&2

# --- 4b. Debian's notary-server (memory store, local signer) with as many tags -------------
declare -A TF   # a reader's own name for the targets file, where it differs
notary_reader=()
if command -v notary-server >/dev/null && command -v notary >/dev/null; then
  NPORT=$(free_port)
  cat > "$W/notary-server.json" <<EOF
{"server": {"http_addr": "127.0.0.1:$NPORT"}, "trust_service": {"type": "local"},
 "storage": {"backend": "memory"}, "logging": {"level": "error"}}
EOF
  notary-server -config "$W/notary-server.json" >"$OUT/notary-server.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$NPORT/_notary_server/health"
  export NOTARY_ROOT_PASSPHRASE=$PASS NOTARY_TARGETS_PASSPHRASE=$PASS NOTARY_SNAPSHOT_PASSPHRASE=$PASS
  notary_cli() { notary -s "http://127.0.0.1:$NPORT" -d "$W/notary-trust" "$@" </dev/null >/dev/null; }
  log "notary-server: init and $TAGS tags"
  notary_cli init "$GUN"
  for i in $(seq 1 "$TAGS"); do
    notary_cli addhash "$GUN" "tag$i" 1234 --sha256 "$(printf '%064x' "$i")"
  done
  notary_cli publish "$GUN"
  RURL[notary]=http://127.0.0.1:$NPORT/v2/$GUN/_trust/tuf
  PORT[notary]=$NPORT # for its peak RSS after the read load
  # Notary's snapshot names targets by hash, not version: its by-hash file.
  TF[notary]=targets.$(curl -fsS "${RURL[notary]}/targets.json" | sha256sum | cut -d' ' -f1).json
  echo "notary: timestamp.json $(curl -fsS "${RURL[notary]}/timestamp.json" | wc -c) bytes, ${TF[notary]} $(curl -fsS "${RURL[notary]}/${TF[notary]}" | wc -c) bytes" |
    tee -a "$OUT/files.txt" >&2
  notary_reader=(notary)
fi

# The same databases served with both read caches off (the before/after of
# the in-memory read path): a second process on each.
nocache=()
for b in "${backends[@]}"; do
  port=$(free_port)
  # shellcheck disable=SC2086
  "$TTS" --listen "127.0.0.1:$port" --data-dir "$W/$b" ${DBARGS[$b]} --read-cache-ms 0 --file-cache-bytes 0 \
    >"$OUT/server-$b-nocache.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/healthz"
  PORT[$b-nocache]=$port
  RURL[$b-nocache]=http://127.0.0.1:$port/v2/$GUN/_trust/tuf
  nocache+=("$b-nocache")
done

# --- 5. server reads: wrk, interleaved ---------------------------------------------------
readers=(nginx "${notary_reader[@]}" "${backends[@]}" "${nocache[@]}")
# The targets file again with `Accept-Encoding: gzip`.
gzip_readers=(nginx-gzip)
for b in "${backends[@]}"; do gzip_readers+=("$b-gzip"); done
for round in $(seq "$ROUNDS"); do
  for f in timestamp.json "$TFILE"; do
    these=("${readers[@]}")
    [[ $f == "$TFILE" ]] && these+=("${gzip_readers[@]}")
    for r in "${these[@]}"; do
      headers=()
      [[ $r == *-gzip ]] && headers=(-H "Accept-Encoding: gzip")
      log "wrk round $round: $r $f (load $(cut -d' ' -f1 /proc/loadavg))"
      echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/wrk-$round-$r-${f%%.*}.txt"
      # shellcheck disable=SC2086
      file=$f
      [[ $f == "$TFILE" && -n ${TF[$r]:-} ]] && file=${TF[$r]}
      wrk $WRK_ARGS "${headers[@]}" --latency "${RURL[$r]}/$file" >> "$OUT/wrk-$round-$r-${f%%.*}.txt"
    done
  done
done

# Peak resident memory of each server process after the read load.
{
  for name in "${!PORT[@]}"; do
    pid=$(ss -ltnpH "sport = :${PORT[$name]}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
    [[ -n $pid ]] && echo "$name: $(grep VmHWM "/proc/$pid/status" | awk '{print $2, $3}') peak RSS"
  done
  ngpid=$(cat "$W/nginx/nginx.pid" 2>/dev/null || true)
  if [[ -n $ngpid ]]; then
    total=0
    for p in $ngpid $(pgrep -P "$ngpid"); do total=$((total + $(grep VmHWM "/proc/$p/status" | awk '{print $2}'))); done
    echo "nginx (master + workers): $total kB peak RSS"
  fi
} | sort > "$OUT/rss.txt"
cat "$OUT/rss.txt" >&2

# --- 6. publishes ------------------------------------------------------------------------
KEYFILE=$(ls "$W/pub-sqlite/keys/"*/targets.*.pem)
hcmds=()
for b in "${backends[@]}"; do
  hcmds+=(-n "tagtrust tag set ($b)" "env TAGTRUST_HOME=$W/pub-$b TAGTRUST_PASSPHRASE=$PASS TAGTRUST_TOKEN=${TOKEN[$b]} $TT --server http://127.0.0.1:${PORT[$b]} tag set $GUN:latest $DIGEST --size 1234")
done
hcmds+=(-n "openssl pkey: decrypt the same key file" "openssl pkey -in $KEYFILE -passin pass:$PASS -noout")
log "hyperfine: tag set"
hyperfine --warmup 2 --runs "$PUBLISH_RUNS" --export-json "$OUT/hf-publish.json" "${hcmds[@]}" > "$OUT/hf-publish.txt" 2>&1
for b in "${backends[@]}"; do
  log "direct HTTP publishes: $b"
  TAGTRUST_HOME=$W/pub-$b "$PY" "$W/publish.py" direct "http://127.0.0.1:${PORT[$b]}" "$GUN" "$W/pub-$b" "$PASS" "${TOKEN[$b]}" "$HTTP_PUBLISHES" > "$OUT/direct-$b.json"
done

# --- 7. lookups ---------------------------------------------------------------------------
URL=http://127.0.0.1:${PORT[sqlite]}
BASE=${RURL[sqlite]}/
curl -fsS -o "$W/root.json" "${BASE}1.root.json"
# Warm state for both clients: one lookup each, before timing.
TAGTRUST_HOME=$W/warm "$TT" --server "$URL" lookup "$GUN:latest" --root "$W/root.json" >/dev/null
mkdir -p "$W/pywarm"
"$PY" tests/python/ngclient_lookup.py "$BASE" "$W/root.json" "$W/pywarm" latest >/dev/null
TT_WARM="env TAGTRUST_HOME=$W/warm $TT --server $URL lookup $GUN:latest"
PY_WARM="$PY tests/python/ngclient_lookup.py $BASE $W/root.json $W/pywarm latest"
TT_COLD="env TAGTRUST_HOME=$W/cold $TT --server $URL lookup $GUN:latest --root $W/root.json"
PY_COLD="$PY tests/python/ngclient_lookup.py $BASE $W/root.json $W/pycold latest"
RESET="rm -rf $W/cold $W/pycold && mkdir -p $W/pycold"
# The digest both print must be the one published.
want=$(curl -fsS "${BASE}targets.json" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["signed"]["targets"]["latest"]["hashes"]["sha256"])')
[[ $($TT_WARM) == "sha256:$want" ]] || { log "tagtrust lookup returned the wrong digest"; exit 1; }
[[ $($PY_WARM) == *"$want"* ]] || { log "ngclient lookup returned the wrong digest"; exit 1; }

# HTTP requests each kind of lookup makes (GETs counted by the server).
gets() { curl -fsS "$URL/metrics" | awk '/^tagtrust_http_requests_total/ && /method="GET"/ && /route="metadata"/ {s+=$NF} END {print s+0}'; }
count_gets() { local a b; eval "$RESET"; a=$(gets); eval "$1" >/dev/null 2>&1; b=$(gets); echo $((b - a)); }
{
  echo "tagtrust warm: $(count_gets "$TT_WARM") GETs"
  echo "python-tuf warm: $(count_gets "$PY_WARM") GETs"
  echo "tagtrust cold: $(count_gets "$TT_COLD") GETs"
  echo "python-tuf cold: $(count_gets "$PY_COLD") GETs"
} > "$OUT/lookup-requests.txt"
cat "$OUT/lookup-requests.txt" >&2

for round in $(seq "$ROUNDS"); do
  log "hyperfine lookups round $round (load $(cut -d' ' -f1 /proc/loadavg))"
  hyperfine -N --warmup 3 --runs "$LOOKUP_RUNS" --export-json "$OUT/hf-warm-$round.json" \
    -n "tagtrust lookup (warm)" "$TT_WARM" \
    -n "python-tuf ngclient (warm)" "$PY_WARM" \
    -n "floor: tagtrust --version" "$TT --version" \
    -n "floor: python -c 'import tuf.ngclient'" "$PY -c 'import tuf.ngclient'" \
    > "$OUT/hf-warm-$round.txt" 2>&1
  hyperfine --warmup 3 --runs "$LOOKUP_RUNS" --prepare "$RESET" --export-json "$OUT/hf-cold-$round.json" \
    -n "tagtrust lookup (cold, --root)" "$TT_COLD" \
    -n "python-tuf ngclient (cold)" "$PY_COLD" \
    > "$OUT/hf-cold-$round.txt" 2>&1
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

# --- 8. summary -------------------------------------------------------------------------
"$PY" - "$OUT" "$ROUNDS" "${readers[*]}" "${TFILE%%.*}" "${backends[*]}" "${gzip_readers[*]}" <<'PYEOF' | tee "$OUT/summary.md"
import glob, json, os, re, sys
out, rounds, readers, tv, backends, gzip_readers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], sys.argv[5].split(), sys.argv[6].split()
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s); v = float(m[1])
    return v / 1000 if m[2] == "us" else v * 1000 if m[2] == "s" else v
print("## Machine\n\n```\n" + open(f"{out}/machine.txt").read() + open(f"{out}/files.txt").read() + "```\n")
print("## Peak server memory after the read load\n\n```\n" + open(f"{out}/rss.txt").read() + "```\n")
print("## Server reads (wrk)\n")
print("| round | file | server | load | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx/errors |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---|")
for r in range(1, rounds + 1):
    for f, label in (("timestamp", "timestamp.json"), (tv, f"{tv}.targets.json")):
        for s in readers + (gzip_readers if f == tv else []):
            t = open(f"{out}/wrk-{r}-{s}-{f}.txt").read()
            rps = re.search(r"Requests/sec:\s+([\d.]+)", t)[1]
            p = {k: ms(v) for k, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", t, re.M)}
            mx = ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", t)[1])
            load = t.splitlines()[0].split()[1]
            bad = ", ".join(x.strip() for x in re.findall(r"(Non-2xx.*|Socket errors.*)", t)) or "-"
            print(f"| {r} | {label} | {s} | {load} | {float(rps):,.0f} | {p['50']:.2f} | {p['90']:.2f} | {p['99']:.2f} | {mx:.1f} | {bad} |")
def hf(path):
    for res in json.load(open(path))["results"]:
        t = res["times"]; t.sort()
        print(f"| {res['command']} | {res['mean']*1e3:.1f} ± {res['stddev']*1e3:.1f} | {res['median']*1e3:.1f} | {t[0]*1e3:.1f} | {t[-1]*1e3:.1f} | {1/res['mean']:.1f} |")
head = "| command | mean ms | median ms | min ms | max ms | per second |\n|---|---:|---:|---:|---:|---:|"
print("\n## Publishes (hyperfine, end to end)\n\n" + head); hf(f"{out}/hf-publish.json")
print("\n## Direct HTTP publishes (pre-signed targets, POST only, one keep-alive connection)\n")
print("| server | publishes | per second | p50 ms | p90 ms | p99 ms | max ms | targets bytes |\n|---|---:|---:|---:|---:|---:|---:|---:|")
for b in backends:
    d = json.load(open(f"{out}/direct-{b}.json"))
    print(f"| {b} | {d['publishes']} | {d['per_second']:.1f} | {d['p50_ms']:.1f} | {d['p90_ms']:.1f} | {d['p99_ms']:.1f} | {d['max_ms']:.1f} | {d['bytes']} |")
print("\n## Lookups (hyperfine --warmup 3)\n\n```\n" + open(f"{out}/lookup-requests.txt").read() + "```\n")
for r in range(1, rounds + 1):
    print(f"round {r}, warm\n\n{head}"); hf(f"{out}/hf-warm-{r}.json")
    print(f"\nround {r}, cold (fresh state each run)\n\n{head}"); hf(f"{out}/hf-cold-{r}.json"); print()
print(f"raw output: {out}")
PYEOF
