#!/usr/bin/env bash
# Does read latency grow with the number of GUNs? (BENCHMARKS.md, "Many
# GUNs"). Not run in CI.
#
#   scripts/bench-guns.sh [GUNS]     (default 100000)
#
# On a SQLite server: publishes one GUN with `tagtrust init` and a tag, then
# copies its rows (metadata, current roles, online keys) under GUNS-1 other
# names with sqlite3, so every GUN has real signed metadata. wrk then reads
# timestamp.json of GUNs picked at random (a Lua script), first from 10 GUNs,
# then from all GUNS (most reads miss the read cache: each GUN is hit
# rarely), and hyperfine times a warm `tagtrust lookup` of one GUN at both
# sizes. Needs wrk, hyperfine and sqlite3.
set -euo pipefail
GUNS=${1:-100000}
source "$(dirname "$0")/bench-lib.sh" guns
start
publisher
G0=bench.example/g/0
"$TT" --server "$url" init "$G0" >/dev/null
"$TT" --server "$url" tag set "$G0:latest" "sha256:$(printf '%064d' 1)" --size 1 >/dev/null
cat > "$W/random.lua" <<'LUA'
local n = tonumber(os.getenv("GUNS_HOT"))
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v2/bench.example/g/" .. math.random(0, n - 1) .. "/_trust/tuf/timestamp.json")
end
LUA
copy() { # from to: GUNs g/FROM .. g/(TO-1) as copies of g/0
  stop
  sqlite3 "$W/data/tagtrust.db" <<SQL
WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $2)
INSERT INTO repositories (gun, lock_seq, created_at, mirrored)
  SELECT 'bench.example/g/' || i, 0, 0, 0 FROM n;
INSERT INTO metadata (gun, role, version, sha256, bytes, created_at, expires_at)
  SELECT r.gun, m.role, m.version, m.sha256, m.bytes, m.created_at, m.expires_at
  FROM metadata m, repositories r WHERE m.gun = '$G0' AND r.gun <> '$G0'
    AND r.gun NOT IN (SELECT DISTINCT gun FROM metadata);
INSERT INTO current_metadata (gun, role, version, expires_at)
  SELECT r.gun, c.role, c.version, c.expires_at FROM current_metadata c, repositories r
  WHERE c.gun = '$G0' AND r.gun <> '$G0' AND r.gun NOT IN (SELECT DISTINCT gun FROM current_metadata);
INSERT INTO online_keys (gun, role, seq, key_id, public_key, encrypted_seed, created_at)
  SELECT r.gun, k.role, k.seq, k.key_id, k.public_key, k.encrypted_seed, k.created_at
  FROM online_keys k, repositories r WHERE k.gun = '$G0' AND r.gun <> '$G0'
    AND r.gun NOT IN (SELECT DISTINCT gun FROM online_keys);
SQL
  start
}
measure() { # label hot
  GUNS_HOT=$2 wrk -t2 -c32 -d10s --latency -s "$W/random.lua" "$url" > "$W/wrk-$1.txt"
  echo "$1: $(grep Requests/sec "$W/wrk-$1.txt" | awk '{print $2}') req/s, p50 $(awk '$1 == "50%" {print $2}' "$W/wrk-$1.txt"), p99 $(awk '$1 == "99%" {print $2}' "$W/wrk-$1.txt")"
  hyperfine -N --warmup 3 --runs 30 --export-json "$W/hf-$1.json" "$TT --server $url lookup $G0:latest" >/dev/null
  python3 -c "import json; r=json.load(open('$W/hf-$1.json'))['results'][0]; print(f'$1: warm lookup median {r[\"median\"]*1e3:.1f} ms')"
}
copy 1 10
measure "10 GUNs" 10
copy 10 "$GUNS"
echo "loaded: $(sqlite3 "$W/data/tagtrust.db" 'SELECT COUNT(*) FROM repositories') GUNs, $(du -h "$W/data/tagtrust.db" | cut -f1) database"
measure "$GUNS GUNs, reads of 10" 10
measure "$GUNS GUNs, reads spread over all" "$GUNS"
