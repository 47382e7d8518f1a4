#!/usr/bin/env bash
# Multi-rank failures end the job with a clear message, never a hang: configs that differ across
# ranks, a rank whose data files are missing, a world size larger than the number of chunks; and a
# 2-rank run of the tiny config completes. Run by ctest: bash tests/e2e/mpi_errors.sh BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup mpi-errors "$1" "$2"
mpi=(mpirun "${as_root[@]}" --oversubscribe -x OMP_NUM_THREADS=1)
tiny=(train "$src/configs/fmnist_vae_tiny.yaml" --quiet --set train.epochs=1 --set data.max_images=1024
      --set data.validation=)
passed=0 failed=0
# expect_error NAME GREP -- COMMAND...: non-zero exit within 120 s and GREP in the output.
expect_error() {
  local name=$1 pattern=$2; shift 3
  local out rc
  out=$(timeout 120 "$@" 2>&1); rc=$?
  if [[ $rc -eq 124 ]]; then echo "FAIL  $name: hung (killed after 120 s)"; failed=$((failed+1)); return; fi
  if [[ $rc -eq 0 ]]; then echo "FAIL  $name: exit 0"; failed=$((failed+1)); return; fi
  if ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL  $name: no '$pattern' in:"; echo "$out" | head -5; failed=$((failed+1)); return
  fi
  echo "PASS  $name: $(grep -m1 -- "$pattern" <<<"$out")"; passed=$((passed+1))
}

expect_error "configs differ across ranks" "different resolved config" -- \
  "${mpi[@]}" -np 1 "$distvae" "${tiny[@]}" --run-dir r1 : -np 1 "$distvae" "${tiny[@]}" --run-dir r1 --set train.seed=2
expect_error "rank 1's data files are missing" "rank 1" -- \
  "${mpi[@]}" -np 1 "$distvae" "${tiny[@]}" --run-dir r2 : -np 1 "$distvae" "${tiny[@]}" --run-dir r2 --set data.train=nowhere/x-*.h5
expect_error "world size larger than the chunks" "larger than the 4 chunks" -- \
  "${mpi[@]}" -np 5 "$distvae" "${tiny[@]}" --run-dir r3

if timeout 300 "${mpi[@]}" -np 2 "$distvae" "${tiny[@]}" --run-dir ok >/dev/null 2>&1 &&
   [[ -f ok/checkpoints/ckpt-000001.h5 && -s ok/metrics.jsonl ]]; then
  echo "PASS  2-rank tiny run writes its checkpoint and metrics"; passed=$((passed+1))
else
  echo "FAIL  2-rank tiny run"; failed=$((failed+1))
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
