#!/usr/bin/env bash
# SIGKILL while checkpoints are being written (one after every step, ~13 MB each) at several
# moments: --resume must always find a checkpoint that verifies (a half-written one is never
# taken: writes go to *.tmp and are renamed when complete), say which, and continue. Run by ctest.
source "$(dirname "$0")/common.bash"
e2e_cleanup='pkill -KILL -f -- "--run-dir $tmp/"'
e2e_setup killckpt "$1" "$2"
run=(train "$src/configs/fmnist_vae_mlp.yaml" --set data.validation= --set train.threads=1
     --set data.max_images=8192 --set train.epochs=1000 --set train.checkpoint_every_steps=1
     --set train.keep_checkpoints=2)
passed=0 failed=0
for delay in 0.7 1.1 1.3 1.7 2.3; do
  dir=$tmp/run-$delay
  "$distvae" "${run[@]}" --quiet --run-dir "$dir" &
  pid=$!
  for _ in $(seq 200); do ls "$dir"/checkpoints/ckpt-*.h5 >/dev/null 2>&1 && break; sleep 0.05; done
  sleep "$delay"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null
  partial=$(ls "$dir"/checkpoints | grep -c '\.tmp$')
  # Not --quiet: the resumed run must say which checkpoint it took (a run that silently started
  # over would also exit 0).
  out=$("$distvae" "${run[@]}" --run-dir "$dir" --resume --stop-after-epochs 1 --log-every 1000 2>&1)
  rc=$?
  left=$(ls "$dir"/checkpoints | grep -c '\.tmp$')
  from=$(sed -n "s|^resuming from $dir/checkpoints/\(ckpt-[0-9.s]*h5\) .*|\1|p" <<<"$out")
  if [[ $left -ne 0 ]]; then
    echo "FAIL  killed after ${delay}s: $left partial .tmp file(s) still there after the resumed run"
    failed=$((failed + 1))
  elif [[ $rc -ne 0 ]]; then
    echo "FAIL  killed after ${delay}s: resume exit $rc"; echo "$out" | tail -3; failed=$((failed + 1))
  elif [[ -z $from ]]; then
    echo "FAIL  killed after ${delay}s: the resumed run did not resume from a checkpoint"
    grep -E "resum|fresh|skipping" <<<"$out" | head -3
    failed=$((failed + 1))
  elif grep -q "skipping checkpoint" <<<"$out"; then
    echo "PASS  killed after ${delay}s: resume skipped a damaged checkpoint and took $from"
    passed=$((passed + 1))
  else
    echo "PASS  killed after ${delay}s (${partial} partial .tmp file(s) left behind): resumed from $from"
    passed=$((passed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
