#!/usr/bin/env bash
# Progress output: under a pseudo-terminal (script(1)) a live line redrawn with \r and a bar;
# through a pipe plain lines (no \r, no escape codes) every --log-every seconds; --quiet prints
# nothing; under mpirun plain lines (unless DISTVAE_TTY=1 says the user sees a terminal) showing
# the whole job's images/s. Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup progress "$1" "$2"
command -v script >/dev/null || e2e_skip command:script "script(1) missing (bsdutils)"
args="train $src/configs/fmnist_vae_tiny.yaml --set data.validation= --set train.batch=16"
passed=0 failed=0
ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }

script -qec "$distvae $args --run-dir tty" /dev/null >tty.out 2>&1
if grep -q $'\r\e\[Kepoch 1/2 \[#' tty.out && grep -q "ETA" tty.out; then ok "terminal: live line with bar and ETA"
else bad "terminal: no live line"; head -c 400 tty.out | cat -v; fi

$distvae $args --run-dir pipe --log-every 0.05 | cat >pipe.out
lines=$(grep -c '^epoch [12]/2 step [0-9]*/256  elbo' pipe.out)
if [[ $lines -ge 3 ]] && ! grep -q $'\r' pipe.out && ! grep -q $'\e' pipe.out; then ok "pipe: $lines plain lines"
else bad "pipe: $lines plain lines, or control characters"; head -5 pipe.out | cat -v; fi

$distvae $args --run-dir quiet --quiet >quiet.out 2>&1
if [[ ! -s quiet.out ]]; then ok "--quiet prints nothing"; else bad "--quiet printed"; head -3 quiet.out; fi
# mpirun into a file, started from a terminal (script(1)): Open MPI hands the ranks a
# pseudo-terminal, but the log must still get plain lines, and images/s must be the job's (both
# ranks'), as in metrics.jsonl, not rank 0's share.
mpi=(mpirun "${as_root[@]}" --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$distvae" $args
     --set data.max_images=2048 --set train.batch=64 --run-dir mpi --log-every 0.05)
script -qec "$(printf '%q ' "${mpi[@]}") >mpi.log 2>&1" /dev/null >/dev/null 2>&1
lines=$(grep -c '^epoch [12]/2 step [0-9]*/16  elbo' mpi.log)
if [[ $lines -ge 2 ]] && ! grep -q $'\r' mpi.log && ! grep -q $'\e' mpi.log; then
  ok "mpirun -np 2 > file from a terminal: $lines plain lines"
else bad "mpirun -np 2 > file: $lines plain lines, or control characters"; head -c 400 mpi.log | cat -v; fi
shown=$(grep -o '[0-9]* img/s' mpi.log | tail -1 | grep -o '^[0-9]*')
logged=$(grep -o '"images_per_s": [0-9.]*' mpi/metrics.jsonl | tail -1 | grep -o '[0-9.]*$')
if awk -v a="${shown:-0}" -v b="${logged:-0}" 'BEGIN { exit !(b > 0 && a > 0.7 * b && a < 1.5 * b) }'
then ok "progress shows the job's images/s ($shown; metrics.jsonl $logged)"
else bad "progress shows ${shown:-no} img/s, metrics.jsonl ${logged:-none}"; fi

# launch/mpirun.sh tells the ranks what its own stdout is: a terminal gets the live line.
export DISTVAE_TTY=1
"$distvae" $args --run-dir forced >forced.out 2>&1
unset DISTVAE_TTY
if grep -q $'\r\e\[Kepoch 1/2 \[#' forced.out; then ok "DISTVAE_TTY=1: live line"
else bad "DISTVAE_TTY=1: no live line"; head -c 300 forced.out | cat -v; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
