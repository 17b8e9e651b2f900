"""Resolve one target with python-tuf's ngclient, an independent TUF client.

usage: ngclient_lookup.py METADATA_BASE_URL TRUSTED_ROOT_FILE METADATA_DIR TARGET

Bootstraps from TRUSTED_ROOT_FILE, runs ngclient's refresh against the
tagtrust server and prints {"length": N, "sha256": HEX} for TARGET as JSON.
Exits non-zero if ngclient refuses the repository or the target is missing.
"""
import json
import sys

from tuf.ngclient import Updater


def main() -> int:
    base_url, root_file, metadata_dir, target = sys.argv[1:5]
    with open(root_file, "rb") as f:
        trusted_root = f.read()
    updater = Updater(
        metadata_dir=metadata_dir,
        metadata_base_url=base_url,
        target_base_url=base_url,
        bootstrap=trusted_root,
    )
    updater.refresh()
    info = updater.get_targetinfo(target)
    if info is None:
        print(f"target {target!r} not found", file=sys.stderr)
        return 1
    print(json.dumps({"length": info.length, "sha256": info.hashes["sha256"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
