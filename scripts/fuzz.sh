#!/usr/bin/env bash
# Bounded fuzzing run (issue 4, "Fuzzing"; SECURITY.md, "Fuzzing").
#
# Builds and runs each cargo-fuzz target in fuzz/ for TAGTRUST_FUZZ_SECONDS
# (default 40) seconds, starting from the committed seeds in
# fuzz/corpus/<target>/. New inputs go to fuzz/target/corpus/<target>/ (not
# committed), crashes to fuzz/artifacts/<target>/. Exits non-zero if any
# target crashed, after running the others.
#
#   bash scripts/fuzz.sh                      # every target
#   bash scripts/fuzz.sh trusted_set          # some targets
#   TAGTRUST_FUZZ_SECONDS=600 bash scripts/fuzz.sh
#   TAGTRUST_FUZZ_SEED=1234 bash scripts/fuzz.sh   # replay a run's seed
#
# The toolchain is stable: cargo-fuzz's -Z flags need RUSTC_BOOTSTRAP=1.
# No sanitizer (the code is safe Rust: the properties are panics and
# verification bypasses), but debug assertions on, so arithmetic overflow
# panics as in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${TAGTRUST_FUZZ_SECONDS:-40}"
seed="${TAGTRUST_FUZZ_SEED:-$(((RANDOM << 15 | RANDOM) + 1))}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(metadata_parse trusted_set publish_input names)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions)

echo "fuzz.sh: ${#targets[@]} target(s), ${seconds}s each, seed $seed" >&2
cd fuzz
# Build every target before running any, in one cargo invocation per
# target. A linker killed by the machine (CI once saw `ld terminated with
# signal 7 [Bus error]` when the disk filled) is not a finding: say what the
# disk and memory were, and try that build once more before giving up.
build() {
  cargo fuzz build "${flags[@]}" "$1" && return 0
  echo "fuzz.sh: building $1 failed; disk and memory now:" >&2
  df -h . /tmp >&2 || true
  free -m >&2 || true
  echo "fuzz.sh: building $1 again" >&2
  cargo fuzz build "${flags[@]}" "$1"
}
for target in "${targets[@]}"; do
  build "$target"
done

failed=()
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  mkdir -p "$work" "artifacts/$target"
  echo "fuzz.sh: running $target for ${seconds}s (seed $seed)" >&2
  # The work corpus comes first: libFuzzer adds new inputs to the first
  # directory, so the committed seeds stay as they are.
  # libFuzzer reports every new input; keep that in a log and show the
  # final statistics (or, on a crash, the end of the log).
  log="target/logs/$target.log"
  mkdir -p target/logs
  if cargo fuzz run "${flags[@]}" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -seed="$seed" -timeout=20 -rss_limit_mb=2048 \
    -len_control=0 \
    -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" \
      | sed "s/^/fuzz.sh: $target: /" >&2 || true
  else
    failed+=("$target")
    tail -n 60 "$log" >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "fuzz.sh: $target crashed (seed $seed); inputs in fuzz/artifacts/$target/:" >&2
    ls -1 "artifacts/$target" >&2 || true
    echo "  reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target artifacts/$target/<file>" >&2
  done
  exit 1
fi
echo "fuzz.sh: no crashes" >&2
