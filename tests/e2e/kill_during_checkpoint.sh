#!/usr/bin/env bash
# SIGKILL while checkpoints are being written (one after every step, ~13 MB each) at several
# moments: --resume must always find a checkpoint that verifies (a half-written one is never
# taken: writes go to *.tmp and are renamed when complete) and continue. Run by ctest.
source "$(dirname "$0")/common.bash"
e2e_cleanup='pkill -KILL -f -- "--run-dir $tmp/"'
e2e_setup killckpt "$1" "$2"
run=(train "$src/configs/fmnist_vae_mlp.yaml" --quiet --set data.validation= --set train.threads=1
     --set data.max_images=8192 --set train.epochs=1000 --set train.checkpoint_every_steps=1
     --set train.keep_checkpoints=2)
passed=0 failed=0
for delay in 0.7 1.1 1.3 1.7 2.3; do
  dir=$tmp/run-$delay
  "$distvae" "${run[@]}" --run-dir "$dir" &
  pid=$!
  for _ in $(seq 200); do ls "$dir"/checkpoints/ckpt-*.h5 >/dev/null 2>&1 && break; sleep 0.05; done
  sleep "$delay"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null
  partial=$(ls "$dir"/checkpoints | grep -c '\.tmp$')
  out=$("$distvae" "${run[@]}" --run-dir "$dir" --resume --stop-after-epochs 1 2>&1); rc=$?
  left=$(ls "$dir"/checkpoints | grep -c '\.tmp$')
  if [[ $left -ne 0 ]]; then
    echo "FAIL  killed after ${delay}s: $left partial .tmp file(s) still there after the resumed run"
    failed=$((failed + 1))
  elif [[ $rc -eq 0 ]] && ! grep -q "skipping checkpoint" <<<"$out"; then
    echo "PASS  killed after ${delay}s (${partial} partial .tmp file(s) left behind), resume exit 0"
    passed=$((passed + 1))
  elif [[ $rc -eq 0 ]]; then
    echo "PASS  killed after ${delay}s: resume skipped a damaged checkpoint and used an older one"
    passed=$((passed + 1))
  else
    echo "FAIL  killed after ${delay}s: resume exit $rc"; echo "$out" | tail -3; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
