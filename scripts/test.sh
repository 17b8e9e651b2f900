#!/usr/bin/env bash
# Run every tagtrust test. Sets up what the tests need first:
#   - a Python virtualenv with python-tuf (the independent TUF client the
#     interop tests compare against), in target/pyvenv;
#   - the PostgreSQL URL the storage tests create their databases through
#     (default: the local server, postgres://postgres@127.0.0.1:5432/test);
#   - the built binaries (tests drive the real tagtrust and tagtrust-server).
# Then runs the whole workspace's tests with cargo-nextest (or cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${TAGTRUST_TEST_VENV:-target/pyvenv}"
if ! "$venv/bin/python" -c 'import tuf.ngclient' >/dev/null 2>&1; then
  echo "test.sh: creating the python-tuf virtualenv in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
export TAGTRUST_TEST_PYTHON="$PWD/$venv/bin/python"
export TAGTRUST_TEST_POSTGRES_URL="${TAGTRUST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
