#!/bin/bash
# notary-signer (memory, ECDSA) + notary-server (memory, HTTPS, token auth) + test token issuer + docker-registry,
# and the notary CLI with --tlscacert and NOTARY_AUTH. Ports: 4453 (server), 7899 (signer), 4470 (token), 5005 (registry).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); W=$(mktemp -d /tmp/notary-recipe2.XXXXXX); C=$W/certs
python3 "$HERE/gen-certs.py" "$C"
for f in signer.json server-signer-auth.json registry.yml; do sed "s#CERTS#$C#g" "$HERE/$f" > "$W/$f"; done
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
NOTARY_SIGNER_ALIAS1=signer-pass notary-signer -config "$W/signer.json" -logf logfmt > "$W/signer.log" 2>&1 & PIDS+=($!)
sleep 1
notary-server -config "$W/server-signer-auth.json" -logf logfmt > "$W/server.log" 2>&1 & PIDS+=($!)
python3 "$HERE/../../../tests/python/token_issuer.py" 4470 "$C/token.key" "$C/token.crt" "$W/token.jsonl" x5c > "$W/token.log" 2>&1 & PIDS+=($!)
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 & PIDS+=($!)
for i in $(seq 50); do curl -sf --cacert "$C/ca.crt" https://127.0.0.1:4453/_notary_server/health >/dev/null && break; sleep 0.2; done
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:4470/auth && curl -s -o /dev/null http://127.0.0.1:5005/v2/ && break; sleep 0.2; done
export NOTARY_ROOT_PASSPHRASE=root-pass-123 NOTARY_TARGETS_PASSPHRASE=targets-pass-123 NOTARY_SNAPSHOT_PASSPHRASE=snapshot-pass-123
export NOTARY_AUTH=$(printf 'ci:secret' | base64)          # token_issuer.py accepts any user with password "secret"
n() { notary -s https://127.0.0.1:4453 --tlscacert "$C/ca.crt" -d "$W/$1" "${@:2}" </dev/null; }
GUN=example.com/recipe/auth
echo hi > "$W/m"
n pub init "$GUN" -p
n pub add "$GUN" v1 "$W/m" -p
env -u NOTARY_AUTH notary -s https://127.0.0.1:4453 --tlscacert "$C/ca.crt" -d "$W/cons" list "$GUN" </dev/null   # anonymous pull token
curl -s --cacert "$C/ca.crt" -o /dev/null -w 'unauthenticated POST -> %{http_code}\n' -X POST https://127.0.0.1:4453/v2/$GUN/_trust/tuf/
NOTARY_AUTH=$(printf 'ci:wrong' | base64) n pub publish "$GUN" && echo "UNEXPECTED" || echo "wrong password refused"
n pub key rotate "$GUN" timestamp -r                                           # needs scope repository:GUN:*
curl -s --cacert "$C/ca.crt" https://127.0.0.1:4453/v2/$GUN/_trust/tuf/timestamp.json -H "Authorization: Bearer $(curl -s -u ci:secret "http://127.0.0.1:4470/auth?service=notary-test&scope=repository:$GUN:pull" | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("timestamp signed with", d["signatures"][0]["method"])'
T=$(curl -s -u ci:secret "http://127.0.0.1:4470/auth?service=registry-test&scope=repository:acme/app:pull,push&account=ci" | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
curl -s -o /dev/null -w 'registry /v2/ with token -> %{http_code}\n' -H "Authorization: Bearer $T" http://127.0.0.1:5005/v2/
echo "RECIPE2 OK (workdir $W)"
