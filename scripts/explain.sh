#!/usr/bin/env bash
# The query plans of the hot queries with many repositories loaded
# (BENCHMARKS.md, "A million GUNs"). Not run in CI.
#
#   scripts/explain.sh [GUNS]        (default 100000)
#
# Creates a scratch PostgreSQL database, lets tagtrust-server create its
# schema (its migrations), loads GUNS synthetic repositories (root, targets,
# snapshot and timestamp rows, expiries spread over a day to a year), runs
# ANALYZE, prints EXPLAIN (ANALYZE, BUFFERS) of each query the read path, the
# scheduler and the metrics run, and drops the database.
set -euo pipefail
cd "$(dirname "$0")/.."
GUNS=${1:-100000}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
TTS=${TTS:-target/debug/tagtrust-server}
[[ -x $TTS ]] || cargo build -q -p tagtrust-server
DB=tagtrust_explain_$$
psql "$PG_URL/postgres" -qAtc "CREATE DATABASE $DB" >/dev/null
trap 'psql "$PG_URL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB" >/dev/null' EXIT
# Any subcommand that opens the database runs the migrations.
"$TTS" token list --database-url "$PG_URL/$DB" >/dev/null
psql "$PG_URL/$DB" -q <<SQL
INSERT INTO repositories (gun, lock_seq, created_at)
  SELECT 'registry.example.com/org' || (g % 1000) || '/app' || g, 1, 0 FROM generate_series(1, $GUNS) g;
INSERT INTO metadata (gun, role, version, sha256, bytes, created_at, expires_at)
  SELECT r.gun, role, 1, md5(r.gun || role) || md5(role || r.gun), convert_to(repeat('x', 400), 'UTF8'), 0,
         extract(epoch FROM now())::bigint + CASE role WHEN 'timestamp' THEN 86400 WHEN 'snapshot' THEN 604800
                                               ELSE 31536000 END - (hashtext(r.gun) & 65535)
  FROM repositories r, unnest(ARRAY['root', 'targets', 'snapshot', 'timestamp']) role;
INSERT INTO current_metadata (gun, role, version, expires_at) SELECT gun, role, version, expires_at FROM metadata;
ANALYZE;
SQL
now=$(date +%s)
explain() { # title, query
  echo "### $1"; echo; echo '```'
  psql "$PG_URL/$DB" -qAt -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $2"
  echo '```'; echo
}
G="'registry.example.com/org7/app4007'"
echo "## Query plans with $GUNS repositories ($((GUNS * 4)) current roles), PostgreSQL $(psql "$PG_URL/postgres" -qAtc 'SHOW server_version')"
echo
explain "Current file (a read-cache miss)" \
  "SELECT role, version, sha256, bytes, expires_at FROM metadata WHERE gun = $G AND role = 'timestamp' ORDER BY version DESC LIMIT 1"
explain "Versioned file (a file-cache miss)" \
  "SELECT role, version, sha256, bytes, expires_at FROM metadata WHERE gun = $G AND role = 'snapshot' AND version = 1"
explain "A publish's current files (root and snapshot kept, their bytes left out: RepoTx::current_files_known)" \
  "SELECT m.role, m.version, m.sha256, CASE WHEN m.role || ':' || m.sha256 IN ('root:' || md5($G || 'root') || md5('root' || $G), 'snapshot:' || md5($G || 'snapshot') || md5('snapshot' || $G)) THEN NULL ELSE m.bytes END AS bytes FROM metadata m JOIN current_metadata c ON c.gun = m.gun AND c.role = m.role AND c.version = m.version WHERE m.gun = $G AND m.role IN ('root', 'targets', 'snapshot', 'timestamp')"
explain "Re-sign candidates (the scheduler's pass; nothing due)" \
  "SELECT DISTINCT c.gun FROM current_metadata c WHERE ((c.role = 'timestamp' AND (c.expires_at < $((now + 43200 - 65536)) OR c.expires_at > $((now + 86400)))) OR (c.role = 'snapshot' AND c.expires_at < $((now + 302400 - 65536))) OR (c.role IN ('timestamp', 'snapshot') AND c.expires_at IS NULL)) AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.gun = c.gun AND r.mirrored <> 0) ORDER BY c.gun"
explain "Re-sign candidates (about 1 in 3 timestamps due)" \
  "SELECT DISTINCT c.gun FROM current_metadata c WHERE ((c.role = 'timestamp' AND (c.expires_at < $((now + 86400 - 43690)) OR c.expires_at > $((now + 86400)))) OR (c.role = 'snapshot' AND c.expires_at < $((now + 302400 - 65536))) OR (c.role IN ('timestamp', 'snapshot') AND c.expires_at IS NULL)) AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.gun = c.gun AND r.mirrored <> 0) ORDER BY c.gun"
explain "Expiring roles listing (GET /v2/_trust/expiring, limit 100)" \
  "SELECT c.gun, c.role, c.version, c.expires_at FROM current_metadata c LEFT JOIN repositories r ON r.gun = c.gun WHERE c.expires_at < $((now + 30 * 86400)) ORDER BY c.expires_at, c.gun, c.role LIMIT 101"
explain "Expiry aggregates (GET /metrics, at most once a minute)" \
  "SELECT CASE WHEN role IN ('root', 'targets', 'snapshot', 'timestamp') THEN role ELSE 'delegated' END AS kind, COUNT(*), MIN(expires_at), SUM(CASE WHEN expires_at < $now THEN 1 ELSE 0 END), SUM(CASE WHEN expires_at < $((now + 3600)) THEN 1 ELSE 0 END) FROM current_metadata GROUP BY kind"
