#!/usr/bin/env bash
# Preemption under mpirun -np 2: SIGTERM to one rank mid-epoch -> both ranks checkpoint at the
# same step and exit with code 75; --resume then ends with parameters and optimizer state
# bitwise equal (h5diff, exact) to an uninterrupted run. Preempted at an epoch's last step, the
# epoch still ends (validation, report) before the exit. A command that is not training still
# ends on SIGTERM (the signal thread passes it on). Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup preempt "$1" "$2"
run=("$src/configs/fmnist_vae_mlp.yaml" --quiet --set train.epochs=2 --set train.threads=1
     --set data.max_images=16384 --set data.validation= --set train.log_every=5
     --set train.checkpoint_every=1000)
mpi() { timeout 300 mpirun "${as_root[@]}" --oversubscribe -np 2 "$distvae" train "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

mpi "${run[@]}" --run-dir A || fail "uninterrupted run"

mpi "${run[@]}" --run-dir B &
launcher=$!
for _ in $(seq 600); do [[ -s B/metrics.jsonl ]] && break; sleep 0.05; done
[[ -s B/metrics.jsonl ]] || fail "run B never logged a step"
victim=$(pgrep -n -f -- "--run-dir B") || fail "no rank of run B found"
kill -TERM "$victim"
wait "$launcher"; rc=$?
[[ $rc -eq 75 ]] || fail "preempted run exited $rc, expected 75"
ls B/checkpoints/ckpt-*.h5 >/dev/null 2>&1 || fail "no checkpoint after preemption"
echo "preempted: exit 75, checkpoint $(ls B/checkpoints)"
[[ -f B/checkpoints/ckpt-000002.h5 ]] && fail "signal arrived after the end; nothing was tested"

mpi "${run[@]}" --run-dir B --resume || fail "resumed run"
for d in /encoder.values /decoder.values /encoder.opt_m /encoder.opt_v /decoder.opt_m /decoder.opt_v; do
  h5diff A/checkpoints/ckpt-000002.h5 B/checkpoints/ckpt-000002.h5 "$d" "$d" >/dev/null ||
    fail "$d differs between the uninterrupted and the preempted+resumed run"
done

# One step per epoch (256 images, batch 256), so SIGTERM lands at an epoch's last step: the epoch
# still ends before exit 75, and after --resume each epoch has its validation ELBO exactly once.
ep=("$src/configs/fmnist_vae_mlp.yaml" --quiet --set train.epochs=1000 --set train.threads=1
    --set data.max_images=256 --set train.batch=256 --set train.checkpoint_every=1000)
"$distvae" train "${ep[@]}" --run-dir E &
pid=$!
for _ in $(seq 600); do [[ $(grep -c val_elbo E/metrics.jsonl 2>/dev/null) -ge 3 ]] && break; sleep 0.05; done
kill -TERM "$pid"
wait "$pid"; rc=$?
[[ $rc -eq 75 ]] || fail "one-step epochs: preempted run exited $rc, expected 75"
ck=$(ls E/checkpoints)
[[ $ck =~ ^ckpt-0*([0-9]+)\.h5$ ]] || fail "one-step epochs: expected an end-of-epoch checkpoint, found: $ck"
"$distvae" train "${ep[@]}" --run-dir E --resume --stop-after-epochs 2 || fail "one-step epochs: resume"
want=$(seq -s ' ' 1 $((BASH_REMATCH[1] + 2)))
got=$(python3 -c 'import json, sys
print(*[json.loads(l)["epoch"] for l in open(sys.argv[1]) if "val_elbo" in l])' E/metrics.jsonl)
[[ $got == "$want" ]] ||
  fail "validation ELBO by epoch after preemption at epoch ${BASH_REMATCH[1]}'s end: $got, expected $want"
echo "preempted at the end of epoch ${BASH_REMATCH[1]}: it ended first; validation ELBO of epochs $got"

# Not training: SIGTERM ends the command as by default (128 + 15), it is not swallowed.
"$distvae" convert procedural --kind sprites --out conv --prefix sig -j 1 >/dev/null 2>&1 &
convert=$!
sleep 1
kill -TERM "$convert"
for _ in $(seq 100); do kill -0 "$convert" 2>/dev/null || break; sleep 0.1; done
kill -0 "$convert" 2>/dev/null && { kill -KILL "$convert"; fail "convert ignored SIGTERM"; }
wait "$convert"; rc=$?
[[ $rc -eq 143 ]] || fail "convert after SIGTERM exited $rc, expected 143 (killed by SIGTERM)"
echo "3 passed, 0 failed"
