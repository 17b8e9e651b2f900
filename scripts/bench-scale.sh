#!/usr/bin/env bash
# Publishes and lookups by repository size, beside Debian's notary 0.7 and
# python-tuf, in one run (BENCHMARKS.md, "Publish and lookup by repository
# size"). Not run in CI.
#
#   scripts/bench-scale.sh [SIZES…]      (default: 10 1000 10000 100000)
#
# For each SIZE, three repositories of SIZE tags: tagtrust without bins,
# tagtrust with $BENCH_BINS (1,024) bins (both seeded with one
# `tag set --from-file`), and notary (`notary init`, SIZE `addhash` changes
# written into the trust dir's changelist, as `notary addhash` writes them,
# then one `notary publish`). Then:
#   publish  hyperfine: one `tagtrust tag set GUN:latest DIGEST` into each
#            tagtrust repository beside `notary addhash` + `notary publish`
#            (a new random digest per run, made by --prepare); then the same
#            commands through bench-proxy.py, which times the server's share
#            (last request byte to last response byte) and counts requests
#            and bytes;
#   lookup   hyperfine: warm and cold `tagtrust lookup`, python-tuf's
#            ngclient (tests/python/ngclient_lookup.py) and `notary lookup`
#            of one tag; one more of each through the proxy for requests
#            and bytes;
#   keys     the key decryption alone: `tagtrust key import` of tagtrust's
#            key file (one decryption; the "− decryption" columns take it
#            off, less a `tagtrust --version`), `openssl pkey` on it (PBKDF2,
#            600,000 rounds) and on notary's (PBKDF2, 2,048 rounds).
# The tagtrust server runs on SQLite with --max-body-bytes and
# --max-file-bytes of 64 MiB: 100,000 tags without bins is an 11 MB
# targets file, over the 4 MiB default (the limits gate sizes only).
# Results: Markdown on stdout and $BENCH_OUT (raw hyperfine JSON, proxy logs).
#
# Knobs: BENCH_BINS (1024), BENCH_PUBLISH_RUNS (10; 3 from 100,000 tags),
# BENCH_LOOKUP_RUNS (20; 5 from 100,000 tags), BENCH_OUT, BENCH_VENV
# (/tmp/benchvenv), BENCH_SKIP_BUILD=1, BENCH_TARGET_DIR. Needs hyperfine,
# notary and notary-server (Debian package `notary`), openssl, python3.
set -euo pipefail
SIZES=("$@")
((${#SIZES[@]})) || SIZES=(10 1000 10000 100000)
source "$(dirname "$0")/bench-lib.sh" scale
BINS=${BENCH_BINS:-1024}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/tagtrust-scale.XXXXXX)}
mkdir -p "$OUT"
VENV=${BENCH_VENV:-/tmp/benchvenv}
if ! "$VENV/bin/python" -c 'import tuf.ngclient' >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
PY=$VENV/bin/python
PROXY=$PWD/scripts/bench-proxy.py
wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return; sleep 0.1; done; echo "nothing at $1" >&2; exit 1; }
log() { echo "bench-scale.sh: $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

start --max-body-bytes 67108864 --max-file-bytes 67108864
publisher
# Notary's server, memory store, its own signer in-process (as bench.sh).
nport=$(free_port)
cat > "$W/notary-server.json" <<EOF
{"server": {"http_addr": "127.0.0.1:$nport"}, "trust_service": {"type": "local"},
 "storage": {"backend": "memory"}, "logging": {"level": "error"}}
EOF
background notary-server -config "$W/notary-server.json"
wait_http "http://127.0.0.1:$nport/_notary_server/health"
export NOTARY_ROOT_PASSPHRASE=bench NOTARY_TARGETS_PASSPHRASE=bench NOTARY_SNAPSHOT_PASSPHRASE=bench
# The counting relays: tagtrust's and notary's.
tproxy=$(free_port) nproxy=$(free_port)
background python3 "$PROXY" "$tproxy" "$port" "$OUT/proxy.jsonl" 7200
background python3 "$PROXY" "$nproxy" "$nport" "$OUT/proxy.jsonl" 7200
wait_http "http://127.0.0.1:$tproxy/healthz"
wait_http "http://127.0.0.1:$nproxy/_notary_server/health"
: > "$OUT/proxy.jsonl"
nurl=http://127.0.0.1:$nport

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "tagtrust: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- client server shared || echo ' (with uncommitted changes)'), release build"
  echo "notary: $(notary version 2>&1 | awk '/Version/ {print $2}'), python-tuf $("$PY" -c 'import tuf; print(tuf.__version__)'), $(hyperfine --version)"
  echo "load at start: $(load)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# `notary addhash` of N tags, as the CLI stages them: one changelist file
# each (it applies them in file-name order at the next publish).
stage_notary_tags() { # dir gun count
  "$PY" - "$1/tuf/$2/changelist" "$3" <<'PY'
import base64, hashlib, json, os, sys, uuid
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    meta = {"length": 1000 + i, "hashes": {"sha256": base64.b64encode(hashlib.sha256(b"t%d" % i).digest()).decode()}}
    change = {"action": "create", "role": "targets", "type": "target", "path": f"t{i}",
              "data": base64.b64encode(json.dumps(meta, separators=(",", ":")).encode()).decode()}
    with open(os.path.join(d, f"{i:020d}_{uuid.uuid4()}.change"), "w") as f:
        json.dump(change, f)
PY
}
notary_cli() { notary -s "$1" -d "$2" "${@:3}" </dev/null >/dev/null; }

NEXT=$W/next-digest
NEW_DIGEST="openssl rand -hex 32 > $NEXT"
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.2f}" if v else "-")'; }
# Through a proxy: run "$2" (a shell command) once unrecorded (so that a
# client's state for the proxy's origin is as warm as for the server's), then
# $3 times with a new digest each, writing the proxy's lines of each run to
# $OUT/via-$1-RUN.jsonl; "$4", if given, runs before each (a cold start).
via_proxy() { # label command count [prepare]
  for run in $(seq 0 "$3"); do
    eval "$NEW_DIGEST"
    eval "${4:-true}"
    : > "$OUT/proxy.jsonl"
    eval "$2" >/dev/null 2>&1 || { log "failed through the proxy: $2"; exit 1; }
    sleep 0.2 # the relay logs an exchange when the next one starts or the connection closes
    ((run == 0)) || cp "$OUT/proxy.jsonl" "$OUT/via-$1-$run.jsonl"
  done
}

for n in "${SIZES[@]}"; do
  runs=${BENCH_PUBLISH_RUNS:-$((n >= 100000 ? 3 : 10))}
  lruns=${BENCH_LOOKUP_RUNS:-$((n >= 100000 ? 5 : 20))}
  tag_list "$n" > "$W/tags-$n.txt"
  flat=bench.example/flat/n$n bins=bench.example/bins/n$n ngun=bench.example/notary/n$n
  log "$n tags: seeding (load $(load))"
  "$TT" --server "$url" init "$flat" >/dev/null
  "$TT" --server "$url" tag set "$flat" --from-file "$W/tags-$n.txt" >/dev/null
  # A targets file larger than the client's limit (5 MiB when the snapshot
  # gives no length) cannot be published to again: say so, measure the rest.
  flat_ok=1
  if ! refusal=$("$TT" --server "$url" tag set "$flat:probe" "sha256:$(openssl rand -hex 32)" --size 1 2>&1); then
    echo "$refusal" > "$OUT/flat-refused-$n.txt"
    log "$n tags without bins: $refusal"
    flat_ok=
  fi
  "$TT" --server "$url" init "$bins" --bins "$BINS" >/dev/null
  "$TT" --server "$url" tag set "$bins" --from-file "$W/tags-$n.txt" >/dev/null
  notary_cli "$nurl" "$W/notary" init "$ngun"
  stage_notary_tags "$W/notary" "$ngun" "$n"
  notary_cli "$nurl" "$W/notary" publish "$ngun"
  curl -fs "$url/v2/$flat/_trust/tuf/targets.json" | wc -c > "$OUT/bytes-flat-$n.txt"
  curl -fs "$nurl/v2/$ngun/_trust/tuf/targets.json" | wc -c > "$OUT/bytes-notary-$n.txt"

  # --- publish ---
  tt_set="$TT --server $url tag set"
  n_set() { echo "notary -s $1 -d $W/notary addhash $ngun latest 1234 --sha256 \$(cat $NEXT) </dev/null >/dev/null && notary -s $1 -d $W/notary publish $ngun </dev/null >/dev/null"; }
  log "$n tags: publish, $runs runs each (load $(load))"
  echo "$(load)" > "$OUT/load-publish-$n.txt"
  cmds=()
  [[ -n $flat_ok ]] && cmds+=(-n "tagtrust tag set, no bins" "$tt_set $flat:latest sha256:\$(cat $NEXT) --size 1234")
  hyperfine --runs "$runs" --warmup 1 --prepare "$NEW_DIGEST" --export-json "$OUT/hf-publish-$n.json" "${cmds[@]}" \
    -n "tagtrust tag set, $BINS bins" "$tt_set $bins:latest sha256:\$(cat $NEXT) --size 1234" \
    -n "notary addhash + publish" "$(n_set "$nurl")" > "$OUT/hf-publish-$n.txt" 2>&1
  [[ -z $flat_ok ]] || via_proxy "publish-flat-$n" "$TT --server http://127.0.0.1:$tproxy tag set $flat:latest sha256:\$(cat $NEXT) --size 1234" 3
  via_proxy "publish-bins-$n" "$TT --server http://127.0.0.1:$tproxy tag set $bins:latest sha256:\$(cat $NEXT) --size 1234" 3
  via_proxy "publish-notary-$n" "$(n_set "http://127.0.0.1:$nproxy")" 3

  # --- lookup ---
  look=$W/look-$n
  mkdir -p "$look"
  guns=("$bins")
  [[ -z $flat_ok ]] || guns+=("$flat")
  for g in "${guns[@]}"; do
    k=${g//\//_}
    curl -fs -o "$look/$k.root.json" "$url/v2/$g/_trust/tuf/1.root.json"
    # Warm state: one lookup of each client, before timing.
    TAGTRUST_HOME=$look/tt-warm "$TT" --server "$url" lookup "$g:t0" --root "$look/$k.root.json" >/dev/null
    mkdir -p "$look/py-warm-$k"
    "$PY" tests/python/ngclient_lookup.py "$url/v2/$g/_trust/tuf/" "$look/$k.root.json" "$look/py-warm-$k" t0 >/dev/null
  done
  notary_cli "$nurl" "$look/n-warm" lookup "$ngun" t0
  fk=${flat//\//_} bk=${bins//\//_}
  tt_warm() { echo "env TAGTRUST_HOME=$look/tt-warm $TT --server $1 lookup $2:t0"; }
  tt_cold() { echo "env TAGTRUST_HOME=$look/tt-cold $TT --server $1 lookup $2:t0 --root $look/${2//\//_}.root.json"; }
  py_warm() { echo "$PY tests/python/ngclient_lookup.py $1/v2/$2/_trust/tuf/ $look/${2//\//_}.root.json $look/py-warm-${2//\//_} t0"; }
  py_cold() { echo "$PY tests/python/ngclient_lookup.py $1/v2/$2/_trust/tuf/ $look/${2//\//_}.root.json $look/py-cold t0"; }
  n_warm() { echo "notary -s $1 -d $look/n-warm lookup $ngun t0"; }
  n_cold() { echo "notary -s $1 -d $look/n-cold lookup $ngun t0"; }
  reset="rm -rf $look/tt-cold $look/py-cold $look/n-cold && mkdir -p $look/py-cold"
  log "$n tags: lookups, $lruns runs each (load $(load))"
  echo "$(load)" > "$OUT/load-lookup-$n.txt"
  warm=() cold=()
  if [[ -n $flat_ok ]]; then
    warm=(-n "tagtrust, no bins" "$(tt_warm "$url" "$flat")" -n "python-tuf, no bins" "$(py_warm "$url" "$flat")")
    cold=(-n "tagtrust, no bins" "$(tt_cold "$url" "$flat")" -n "python-tuf, no bins" "$(py_cold "$url" "$flat")")
  fi
  hyperfine -N --runs "$lruns" --warmup 2 --export-json "$OUT/hf-warm-$n.json" "${warm[@]}" \
    -n "tagtrust, $BINS bins" "$(tt_warm "$url" "$bins")" \
    -n "python-tuf, $BINS bins" "$(py_warm "$url" "$bins")" \
    -n "notary" "$(n_warm "$nurl")" > "$OUT/hf-warm-$n.txt" 2>&1
  hyperfine --runs "$lruns" --warmup 1 --prepare "$reset" --export-json "$OUT/hf-cold-$n.json" "${cold[@]}" \
    -n "tagtrust, $BINS bins" "$(tt_cold "$url" "$bins")" \
    -n "python-tuf, $BINS bins" "$(py_cold "$url" "$bins")" \
    -n "notary" "$(n_cold "$nurl")" > "$OUT/hf-cold-$n.txt" 2>&1
  tp=http://127.0.0.1:$tproxy np=http://127.0.0.1:$nproxy
  if [[ -n $flat_ok ]]; then
    via_proxy "warm-tt-flat-$n" "$(tt_warm "$tp" "$flat")" 1
    via_proxy "warm-py-flat-$n" "$(py_warm "$tp" "$flat")" 1
    via_proxy "cold-tt-flat-$n" "$(tt_cold "$tp" "$flat")" 1 "$reset"
    via_proxy "cold-py-flat-$n" "$(py_cold "$tp" "$flat")" 1 "$reset"
  fi
  via_proxy "warm-tt-bins-$n" "$(tt_warm "$tp" "$bins")" 1
  via_proxy "warm-py-bins-$n" "$(py_warm "$tp" "$bins")" 1
  via_proxy "warm-notary-$n" "$(n_warm "$np")" 1
  via_proxy "cold-tt-bins-$n" "$(tt_cold "$tp" "$bins")" 1 "$reset"
  via_proxy "cold-py-bins-$n" "$(py_cold "$tp" "$bins")" 1 "$reset"
  via_proxy "cold-notary-$n" "$(n_cold "$np")" 1 "$reset"
  unset -f tt_warm tt_cold py_warm py_cold n_warm n_cold n_set
done

# --- the key decryption alone ---
tkey=$(ls "$TAGTRUST_HOME"/keys/*/targets.*.pem | head -1)
# openssl reads notary's key once its `role:`/`gun:` PEM headers are gone.
grep -v '^[a-z]*: ' "$(grep -l 'role: targets' "$W"/notary/private/*.key | head -1)" > "$W/notary-targets.pem"
nkey=$W/notary-targets.pem
# tagtrust's own decryption: `key import` of its own key file opens it once
# (to check the passphrase) and copies the file, into a scratch home.
mkdir -p "$W/decrypt-home"
hyperfine -N --runs 20 --warmup 2 --export-json "$OUT/hf-keys.json" \
  -n "tagtrust key import: tagtrust's targets key (PBKDF2, 600,000 rounds)" "env TAGTRUST_HOME=$W/decrypt-home $TT key import $tkey --role decrypt" \
  -n "openssl pkey: tagtrust's targets key (PBKDF2, 600,000 rounds)" "openssl pkey -in $tkey -passin pass:bench -noout" \
  -n "openssl pkey: notary's targets key (PBKDF2, 2,048 rounds)" "openssl pkey -in $nkey -passin pass:bench -noout" \
  -n "floor: tagtrust --version" "$TT --version" > "$OUT/hf-keys.txt" 2>&1
echo "load at end: $(load)" >> "$OUT/machine.txt"

# --- summary ---
python3 - "$OUT" "$BINS" "${SIZES[@]}" <<'PY' | tee "$OUT/summary.md"
import glob, json, statistics, sys
out, bins, sizes = sys.argv[1], sys.argv[2], sys.argv[3:]
def hf(path):
    return {r["command"]: r for r in json.load(open(path))["results"]}
def ms(r):
    return f'{r["median"] * 1e3:,.1f}'
def runs(label):
    return [[json.loads(l) for l in open(p)] for p in sorted(glob.glob(f"{out}/via-{label}-*.jsonl"))]
def posts(label):
    r = runs(label)
    return f'{statistics.median(sum(e["server_ms"] for e in run if e["method"] == "POST") for run in r):,.1f}' if r else "-"
def server_total(label):
    r = runs(label)
    return f'{statistics.median(sum(e["server_ms"] for e in run) for run in r):,.1f}' if r else "-"
def wire(label):
    r = runs(label)
    if not r:
        return "-", "-", "-"
    [run] = r
    return len(run), f'{sum(e["down"] for e in run):,}', f'{sum(e["up"] for e in run):,}'
def refused(n):
    try:
        return "refused: " + open(f"{out}/flat-refused-{n}.txt").read().strip().splitlines()[-1][:160]
    except OSError:
        return None
print("```\n" + open(f"{out}/machine.txt").read() + "```\n")
keys = hf(f"{out}/hf-keys.json")
print("| key decryption alone (hyperfine -N, n=20) | median ms |\n|---|---:|")
for name, r in keys.items():
    print(f"| {name} | {ms(r)} |")
# What a `tag set` spends opening its key: tagtrust's own decryption (less
# the process start, which a tag set pays anyway).
dec = (keys["tagtrust key import: tagtrust's targets key (PBKDF2, 600,000 rounds)"]["median"]
       - keys["floor: tagtrust --version"]["median"]) * 1e3
print("\n### Publish: one tag into a repository of N tags (median ms; server = the POST, at the proxy)\n")
print(f"| tags | load | targets.json bytes (tagtrust / notary) | tagtrust, no bins: end to end | server | {bins} bins: end to end | server | notary addhash + publish: end to end | server | no bins / notary | no bins − decryption / notary | bins − decryption / notary |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in sizes:
    r = hf(f"{out}/hf-publish-{n}.json")
    load = open(f"{out}/load-publish-{n}.txt").read().split()[0]
    fb, nb = (open(f"{out}/bytes-{k}-{n}.txt").read().strip() for k in ("flat", "notary"))
    b, no = (r[k]["median"] * 1e3 for k in (f"tagtrust tag set, {bins} bins", "notary addhash + publish"))
    if "tagtrust tag set, no bins" in r:
        f = r["tagtrust tag set, no bins"]["median"] * 1e3
        flat = f"{f:,.1f} | {posts(f'publish-flat-{n}')}"
        ratios = f"{f / no:.2f}× | {(f - dec) / no:.2f}×"
    else:
        flat, ratios = f"{refused(n)} | -", "- | -"
    print(f"| {int(n):,} | {load} | {int(fb):,} / {int(nb):,} | {flat} | {b:,.1f} | {posts(f'publish-bins-{n}')} | "
          f"{no:,.1f} | {posts(f'publish-notary-{n}')} | {ratios} | {(b - dec) / no:.2f}× |")
print("\nEvery request of one publish, the server's time summed (median ms):\n")
print("| tags | tagtrust, no bins | bins | notary |\n|---:|---:|---:|---:|")
for n in sizes:
    print(f"| {int(n):,} | {server_total(f'publish-flat-{n}')} | {server_total(f'publish-bins-{n}')} | {server_total(f'publish-notary-{n}')} |")
for state in ("warm", "cold"):
    print(f"\n### Lookup of one tag, {state} (hyperfine median ms; requests and bytes received, at the proxy)\n")
    print("| tags | load | client | ms | requests | bytes received | bytes sent |\n|---:|---|---|---:|---:|---:|---:|")
    for n in sizes:
        r = hf(f"{out}/hf-{state}-{n}.json")
        load = open(f"{out}/load-lookup-{n}.txt").read().split()[0]
        for name, key in ((f"tagtrust, no bins", "tt-flat"), (f"tagtrust, {bins} bins", "tt-bins"),
                          ("python-tuf, no bins", "py-flat"), (f"python-tuf, {bins} bins", "py-bins"), ("notary", "notary")):
            reqs, down, up = wire(f"{state}-{key}-{n}")
            took = ms(r[name]) if name in r else (refused(n) or "-")
            print(f"| {int(n):,} | {load} | {name} | {took} | {reqs} | {down} | {up} |")
print(f"\nraw output: {out}")
PY
