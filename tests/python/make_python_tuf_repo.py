"""Generate a TUF repository with python-tuf's Metadata API, for
tests/tests/tuf_client.rs (tagtrust-tuf-client against a repository that
tagtrust did not make).

Usage: python make_python_tuf_repo.py OUT_DIR

Writes:
  OUT_DIR/trusted-root.json          root v1, what the client is initialised with
  OUT_DIR/repo/metadata/             served as the metadata base URL
      1.root.json, 2.root.json       root v2 rotates the root key (signed by old and new)
      timestamp.json                 timestamp v2
      1.snapshot.json                consistent snapshots
      1.targets.json                 target readme.txt, delegations to "dev+ops"
                                     (paths apps/*) and "unvisited" (paths other/*)
      1.dev+ops.json                 target apps/app.bin
                                     (1.unvisited.json is deliberately absent: a
                                     lazy client never asks for it)
  OUT_DIR/repo/targets/              served as the target base URL, hash-prefixed:
      <sha256>.readme.txt, apps/<sha256>.app.bin
  OUT_DIR/attack/timestamp-v1.json       an older, validly signed timestamp
  OUT_DIR/attack/timestamp-expired.json  a newer (v3) but expired timestamp

Files are pretty-printed (not canonical JSON) on purpose: clients must verify
over the canonical form of what they received and store the bytes as served.
"""

import hashlib
import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

TOP_TARGET = ("readme.txt", b"hello from python-tuf top-level targets\n")
DELEGATED_TARGET = ("apps/app.bin", b"\x00\x01binary artifact signed by dev+ops\xff\n")
DELEGATED_ROLE = "dev+ops"


def main(out):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    expires = now + timedelta(days=365)
    meta_dir = os.path.join(out, "repo", "metadata")
    targets_dir = os.path.join(out, "repo", "targets")
    attack_dir = os.path.join(out, "attack")
    for d in (meta_dir, targets_dir, attack_dir):
        os.makedirs(d, exist_ok=True)
    pretty = JSONSerializer(compact=False)

    def write(path, md):
        with open(path, "wb") as f:
            f.write(md.to_bytes(pretty))

    signers = {
        name: CryptoSigner.generate_ed25519()
        for name in ("root1", "root2", "timestamp", "snapshot", "targets", "dev")
    }

    # Root v1, then v2 rotating root1 -> root2, signed by both.
    root = Metadata(Root(expires=expires, consistent_snapshot=True))
    for role, key in (
        ("root", "root1"),
        ("timestamp", "timestamp"),
        ("snapshot", "snapshot"),
        ("targets", "targets"),
    ):
        root.signed.add_key(signers[key].public_key, role)
    root.sign(signers["root1"])
    write(os.path.join(meta_dir, "1.root.json"), root)
    write(os.path.join(out, "trusted-root.json"), root)

    root.signed.version = 2
    root.signed.revoke_key(signers["root1"].public_key.keyid, "root")
    root.signed.add_key(signers["root2"].public_key, "root")
    root.signatures.clear()
    root.sign(signers["root1"], append=True)
    root.sign(signers["root2"], append=True)
    write(os.path.join(meta_dir, "2.root.json"), root)

    # Delegated role with one artifact.
    dev = Metadata(Targets(expires=expires))
    path, data = DELEGATED_TARGET
    dev.signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
    dev.sign(signers["dev"])
    dev_bytes = dev.to_bytes(pretty)
    with open(os.path.join(meta_dir, f"1.{DELEGATED_ROLE}.json"), "wb") as f:
        f.write(dev_bytes)

    # Top-level targets: one artifact, two delegations.
    targets = Metadata(Targets(expires=expires))
    path, data = TOP_TARGET
    targets.signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
    dev_key = signers["dev"].public_key
    targets.signed.delegations = Delegations(
        keys={dev_key.keyid: dev_key},
        roles={
            DELEGATED_ROLE: DelegatedRole(
                DELEGATED_ROLE, [dev_key.keyid], 1, False, paths=["apps/*"]
            ),
            "unvisited": DelegatedRole(
                "unvisited", [dev_key.keyid], 1, False, paths=["other/*"]
            ),
        },
    )
    targets.sign(signers["targets"])
    targets_bytes = targets.to_bytes(pretty)
    with open(os.path.join(meta_dir, "1.targets.json"), "wb") as f:
        f.write(targets_bytes)

    # Artifacts, hash-prefixed as consistent snapshots require.
    for path, data in (TOP_TARGET, DELEGATED_TARGET):
        dirname, _, basename = path.rpartition("/")
        digest = hashlib.sha256(data).hexdigest()
        target_dir = os.path.join(targets_dir, dirname)
        os.makedirs(target_dir, exist_ok=True)
        with open(os.path.join(target_dir, f"{digest}.{basename}"), "wb") as f:
            f.write(data)

    # Snapshot: targets with length and hashes, delegated roles version-only
    # (python-tuf's default), so both kinds of MetaFile are exercised.
    snapshot = Metadata(
        Snapshot(
            expires=expires,
            meta={
                "targets.json": MetaFile(
                    version=1,
                    length=len(targets_bytes),
                    hashes={"sha256": hashlib.sha256(targets_bytes).hexdigest()},
                ),
                f"{DELEGATED_ROLE}.json": MetaFile(version=1),
                "unvisited.json": MetaFile(version=1),
            },
        )
    )
    snapshot.sign(signers["snapshot"])
    snapshot_bytes = snapshot.to_bytes(pretty)
    with open(os.path.join(meta_dir, "1.snapshot.json"), "wb") as f:
        f.write(snapshot_bytes)
    snapshot_meta = MetaFile(
        version=1,
        length=len(snapshot_bytes),
        hashes={"sha256": hashlib.sha256(snapshot_bytes).hexdigest()},
    )

    def timestamp(version, expiry):
        ts = Metadata(Timestamp(version=version, expires=expiry, snapshot_meta=snapshot_meta))
        ts.sign(signers["timestamp"])
        return ts

    write(os.path.join(attack_dir, "timestamp-v1.json"), timestamp(1, expires))
    write(os.path.join(meta_dir, "timestamp.json"), timestamp(2, expires))
    write(
        os.path.join(attack_dir, "timestamp-expired.json"),
        timestamp(3, now - timedelta(hours=1)),
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    main(sys.argv[1])
