#!/usr/bin/env bash
# Ctrl-C at a terminal: the run gets a pseudo-terminal (script(1)) and a ^C typed into it
# mid-epoch. The first ^C must stop the run like SIGTERM (a checkpoint inside the epoch, exit 75,
# a message saying how to continue), --resume must end bitwise equal (h5diff, exact) to an
# uninterrupted run, and a second ^C must exit at once (130) saying there is no checkpoint. Under
# mpirun, a SIGINT to each rank gives one checkpoint, exit 75 and one message.
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup interrupt "$1" "$2"
command -v script >/dev/null || e2e_skip command:script "script(1) missing (bsdutils)"
run=("$src/configs/fmnist_vae_mlp.yaml" --set train.epochs=2 --set train.threads=1
     --set data.max_images=16384 --set data.validation= --set train.log_every=5
     --set train.checkpoint_every=1000)
fail() { echo "FAIL: $*"; exit 1; }
q() { printf '%q ' "$@"; }

# A terminal for DIR's run (extra train options after --), and KEYS... typed into it 0.05 s
# apart once a step was logged. Returns the run's exit code. The shell script(1) starts (\$SHELL,
# or /bin/sh where unset, as under CI) execs distvae: dash, left waiting as its parent, takes the
# same ^C from the terminal and itself reports 130 for a run that exited 75.
on_terminal() {
  local dir=$1 keys=() fd pid rc
  shift
  while [[ $# -gt 0 && $1 != -- ]]; do keys+=("$1"); shift; done
  shift
  mkfifo "$dir.keys"
  timeout 300 script -qec "exec $(q "$distvae" train "${run[@]}" "$@" --run-dir "$dir")" /dev/null \
    <"$dir.keys" >"$dir.out" 2>&1 &
  pid=$!
  exec {fd}>"$dir.keys"  # the terminal's keyboard, open until the run has ended
  for _ in $(seq 600); do [[ -s $dir/metrics.jsonl ]] && break; sleep 0.05; done
  for k in "${keys[@]}"; do printf '%b' "$k" >&"$fd"; sleep 0.05; done
  wait "$pid"
  rc=$?
  exec {fd}>&-
  return "$rc"
}

"$distvae" train "${run[@]}" --run-dir A --quiet || fail "uninterrupted run"

mkdir -p B
on_terminal B '\003' --
rc=$?
[[ $rc -eq 75 ]] || { tail -5 B.out | cat -v; fail "run after one Ctrl-C exited $rc, expected 75"; }
grep -q "Ctrl-C: stopping after this step to write a checkpoint" B.out || fail "no Ctrl-C message"
ck=$(ls B/checkpoints/ckpt-000001.s*.h5 B/checkpoints/ckpt-000000.s*.h5 2>/dev/null | head -1)
[[ -n $ck ]] || fail "no checkpoint inside the epoch after Ctrl-C: $(ls B/checkpoints)"
echo "PASS  one Ctrl-C: exit 75, checkpoint $(basename "$ck")"

"$distvae" train "${run[@]}" --run-dir B --resume --quiet || fail "resumed run"
for d in /encoder.values /decoder.values /encoder.opt_m /encoder.opt_v /decoder.opt_m /decoder.opt_v; do
  h5diff A/checkpoints/ckpt-000002.h5 B/checkpoints/ckpt-000002.h5 "$d" "$d" >/dev/null ||
    fail "$d differs between the uninterrupted and the interrupted+resumed run"
done
echo "PASS  --resume after Ctrl-C ends bitwise equal to the uninterrupted run"

# Steps of about a second, so that the second Ctrl-C comes while the first one's step still runs.
mkdir -p C
on_terminal C '\003' '\003' -- --set train.batch=16384 --set data.max_images=65536
rc=$?
[[ $rc -eq 130 ]] || { tail -5 C.out | cat -v; fail "run after two Ctrl-C exited $rc, expected 130"; }
grep -q "second Ctrl-C: exiting now, without a checkpoint" C.out || fail "no second-Ctrl-C message"
echo "PASS  two Ctrl-C: exit 130 at once, said so"
# Two ranks, each sent SIGINT, as srun forwards a Ctrl-C to every task: one checkpoint, exit 75,
# and the Ctrl-C message once (rank 0's), not once per rank.
mkdir -p D
timeout 300 mpirun "${as_root[@]}" --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$distvae" train \
  "${run[@]}" --run-dir D >D.out 2>&1 &
launcher=$!
for _ in $(seq 600); do [[ -s D/metrics.jsonl ]] && break; sleep 0.05; done
ranks=("$(rank_pid D 0)" "$(rank_pid D 1)")
[[ -n ${ranks[0]} && -n ${ranks[1]} ]] || fail "the 2 ranks' processes not found: ${ranks[*]}"
kill -INT "${ranks[@]}"
wait "$launcher"
rc=$?
[[ $rc -eq 75 ]] || { tail -5 D.out; fail "2 ranks after SIGINT to each exited $rc, expected 75"; }
n=$(grep -c "Ctrl-C: stopping after this step" D.out)
[[ $n -eq 1 ]] || fail "the Ctrl-C message was printed $n times by 2 ranks, expected once"
echo "PASS  SIGINT to both of 2 ranks: exit 75, the message once"
echo "4 passed, 0 failed"
