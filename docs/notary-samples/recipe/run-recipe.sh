#!/bin/bash
# Self-contained, non-interactive notary-server (memory store, local ED25519 signer, plain HTTP on 127.0.0.1)
# + notary CLI walk-through. Usage: run-recipe.sh [PORT]   (default 4443). Leaves nothing running.
set -euo pipefail
PORT=${1:-4443}
W=$(mktemp -d /tmp/notary-recipe.XXXXXX)
HERE=$(cd "$(dirname "$0")" && pwd)
sed "s/127.0.0.1:4443/127.0.0.1:$PORT/" "$HERE/server-memory.json" > "$W/server.json"
notary-server -config "$W/server.json" -logf logfmt > "$W/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
for i in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/_notary_server/health" >/dev/null && break; sleep 0.1; done

export NOTARY_ROOT_PASSPHRASE=root-pass-123 NOTARY_TARGETS_PASSPHRASE=targets-pass-123 \
       NOTARY_SNAPSHOT_PASSPHRASE=snapshot-pass-123 NOTARY_DELEGATION_PASSPHRASE=deleg-pass-123
pub()  { notary -s "http://127.0.0.1:$PORT" -d "$W/publisher" "$@" </dev/null; }
cons() { notary -s "http://127.0.0.1:$PORT" -d "$W/consumer"  "$@" </dev/null; }
dlg()  { notary -s "http://127.0.0.1:$PORT" -d "$W/delegate"  "$@" </dev/null; }
GUN=example.com/recipe/app
echo "manifest-bytes" > "$W/manifest.json"

pub init "$GUN"                                   # root (ecdsa-x509), targets, snapshot keys; GET timestamp.key
pub add "$GUN" v1 "$W/manifest.json"
pub addhash "$GUN" v2 1234 --sha256 "$(printf x | sha256sum | cut -d' ' -f1)"
pub publish "$GUN"
cons list "$GUN"
cons lookup "$GUN" v1
cons verify "$GUN" v1 -i "$W/manifest.json" -q && echo "verify ok"
pub key rotate "$GUN" snapshot -r                 # server now signs snapshot (POST snapshot.key + root v2)
pub key rotate "$GUN" timestamp -r                # new timestamp key (POST timestamp.key + root v3)
pub remove "$GUN" v2 && pub publish "$GUN"        # publish without snapshot: server generates it
pub witness "$GUN" targets && pub publish "$GUN"
# delegation with an x509 certificate; the delegate publishes from its own trust dir
python3 - "$W" <<'PY'
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
w = sys.argv[1]; k = ec.generate_private_key(ec.SECP256R1()); now = datetime.datetime.utcnow()
n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-bot")])
c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key()).serial_number(1)
     .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365)).sign(k, hashes.SHA256()))
open(f"{w}/ci.crt", "wb").write(c.public_bytes(serialization.Encoding.PEM))
open(f"{w}/ci.key", "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
pub delegation add "$GUN" targets/releases "$W/ci.crt" --paths releases/ -p
pub delegation list "$GUN"
dlg key import "$W/ci.key" --role targets/releases --gun "$GUN"
dlg add "$GUN" releases/1.0 "$W/manifest.json" --roles targets/releases
dlg publish "$GUN"
cons list "$GUN"
printf 'yes\n' | notary -s "http://127.0.0.1:$PORT" -d "$W/publisher" key rotate "$GUN" root   # asks for confirmation
cons list "$GUN" >/dev/null && echo "consumer followed root rotation"
curl -s "http://127.0.0.1:$PORT/v2/_trust/changefeed?change_id=0&records=100" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("changefeed records:", d["count"])'
pub delete "$GUN" --remote
echo "RECIPE OK (workdir $W)"
