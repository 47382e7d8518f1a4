#!/usr/bin/env bash
# Resuming on another number of ranks. A checkpoint written inside an epoch by 2 ranks continues
# only on 2 (the images left in that epoch depend on how the shard plan dealt its chunks to the
# ranks): on 1 and on 3 ranks --resume must refuse, saying how to resume, and change nothing;
# on 2 it continues, and the metrics records the interrupted run wrote after the checkpoint are
# set aside, so no step appears twice. From an epoch boundary any rank count may continue, and the
# change of the global batch is said. Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup resume_ranks "$1" "$2"
run=("$src/configs/fmnist_vae_tiny.yaml" --quiet --set train.epochs=2 --set train.threads=1
     --set data.max_images=4096 --set data.validation= --set train.log_every=4
     --set train.checkpoint_every_steps=6 --set train.keep_checkpoints=100)
mpi() { local np=$1; shift; timeout 300 mpirun "${as_root[@]}" --oversubscribe -np "$np" \
  -x OMP_NUM_THREADS=1 "$distvae" train "$@"; }
passed=0 failed=0
ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }
hash_run() { (cd "$1" && sha256sum checkpoints/* metrics.jsonl) | sha256sum; }
no_step_twice() { [[ -z $(grep -o '"step": [0-9]*' "$1/metrics.jsonl" | sort | uniq -d) ]]; }
# Deletes the checkpoints of DIR written after NAME. By name, not by mtime: the kernel stamps files
# with a clock of a few milliseconds, so checkpoints a few steps apart can share an mtime. Names
# sort in training order: ckpt-E.h5 (end of epoch E) < ckpt-E.sS.h5 (step S of epoch E+1).
drop_checkpoints_after() {
  local f LC_ALL=C
  for f in "$1"/checkpoints/ckpt-*; do [[ ${f##*/} > $2 ]] && rm -f "$f"; done
  return 0
}

mpi 2 "${run[@]}" --run-dir full >full.out 2>&1 || { cat full.out; exit 1; }
# A run "killed" inside epoch 2: its newest checkpoint is mid-epoch (step 10 of the epoch's
# 4096 / (64 x 2) = 32, step 42 in all), and metrics.jsonl runs on past it.
cp -r full mid
newest=mid/checkpoints/ckpt-000001.s000000010.h5
[[ -f $newest ]] || { ls mid/checkpoints; echo "FAIL: no checkpoint after step 10 of epoch 2"; exit 1; }
drop_checkpoints_after mid "${newest##*/}"
before=$(hash_run mid)
for np in 1 3; do
  out=$(mpi "$np" "${run[@]}" --run-dir mid --resume 2>&1)
  rc=$?
  line=$(grep -m1 "distvae: error:" <<<"$out")
  if [[ $rc -ne 0 && $line == *"continues only on 2 rank(s)"* && $line == *"--stop-after-epochs 1"* &&
        $(hash_run mid) == "$before" ]]; then
    ok "mid-epoch checkpoint of 2 ranks on $np: refused, nothing changed: ${line#*error: }"
  else
    bad "mid-epoch checkpoint of 2 ranks resumed on $np: exit $rc"; echo "$out" | tail -3
  fi
done

out=$(mpi 2 "${run[@]}" --run-dir mid --resume 2>&1) || { echo "$out" | tail -3; exit 1; }
if no_step_twice mid && grep -q "moved to mid/metrics.after-step-42.jsonl" <<<"$out" &&
   [[ -s mid/metrics.after-step-42.jsonl ]]; then
  ok "on 2 ranks it continues; records after step 42 set aside, no step twice in metrics.jsonl"
else
  bad "resume on 2 ranks: duplicated steps or nothing set aside"; echo "$out" | tail -3
fi
for d in /encoder.values /decoder.values /encoder.opt_m /decoder.opt_v; do
  h5diff full/checkpoints/ckpt-000002.h5 mid/checkpoints/ckpt-000002.h5 "$d" "$d" >/dev/null ||
    { bad "$d differs from the uninterrupted 2-rank run"; continue 2; }
done
ok "and ends bitwise equal to the uninterrupted 2-rank run"

# From the end of epoch 1, on 1 and on 3 ranks: allowed, with the global batch change said.
for np in 1 3; do
  cp -r full "edge$np"
  drop_checkpoints_after "edge$np" ckpt-000001.h5
  out=$(mpi "$np" "${run[@]}" --run-dir "edge$np" --resume 2>&1)
  rc=$?
  if [[ $rc -eq 0 ]] && grep -q "global batch changes from 128 to $((64 * np)) images" <<<"$out" &&
     no_step_twice "edge$np" && [[ -f edge$np/checkpoints/ckpt-000002.h5 ]]; then
    ok "epoch-boundary checkpoint of 2 ranks on $np: continues, says the global batch change"
  else
    bad "epoch-boundary resume on $np ranks: exit $rc"; echo "$out" | tail -3
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
