#!/usr/bin/env bash
# Runs each libFuzzer target of a DISTVAE_FUZZ build for a bounded time, starting from its seed
# corpus in tests/fuzz/corpus/<target>/ (read-only: new inputs go to BUILD/fuzz-work/).
#   bash tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET=60] [TARGET...]
# Fails, naming the target and the saved reproducer, when a target crashes, leaks, trips a
# sanitizer, exceeds the per-input time or memory limit, or throws what it must not.
# Reproduce one: BUILD_DIR/tests/fuzz/fuzz_<target> BUILD_DIR/fuzz-work/<target>-crash-...
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR [SECONDS] [TARGET...]}" && pwd)
seconds=${2:-60}
shift $(($# >= 2 ? 2 : 1))
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(config idx png)
work=$build/fuzz-work
mkdir -p "$work"
failed=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  [[ -x $bin ]] || { echo "fuzz: $bin missing (configure with -DDISTVAE_FUZZ=ON)" >&2; exit 2; }
  mkdir -p "$work/$t"
  log=$work/$t.log
  # -timeout: seconds per input; -rss_limit_mb: the readers refuse what they cannot hold, so a
  # single input that needs 2 GiB is a finding too.
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/$t" "$src/corpus/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz_$t: clean, $runs inputs in $seconds s ($cov edges)"
  else
    echo "fuzz_$t: FAILED; the last lines of $log:"
    grep -E 'what\(\)|ERROR|SUMMARY|Test unit written' "$log" | head -10 | sed 's/^/  /'
    failed+=("$t")
  fi
done
[[ ${#failed[@]} -eq 0 ]] || { echo "fuzz: failing targets: ${failed[*]}"; exit 1; }
