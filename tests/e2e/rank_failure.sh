#!/usr/bin/env bash
# A rank that dies (SIGKILL) or hangs (SIGSTOP) under mpirun -np 2 ends the job within 60 s with
# a non-zero exit and a message naming that rank. Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_cleanup='pkill -KILL -f -- "--run-dir $tmp/"'
e2e_setup rank-failure "$1" "$2"
passed=0 failed=0

# case NAME SIGNAL EXPECTED-TEXT
check() {
  local name=$1 sig=$2 want=$3 dir=$tmp/$1
  timeout 120 mpirun "${as_root[@]}" --oversubscribe -np 2 "$distvae" train \
    "$src/configs/fmnist_vae_mlp.yaml" --run-dir "$dir" --set train.epochs=50 --set train.threads=1 \
    --set data.validation= --set train.log_every=5 --set train.hang_timeout=10 >"$name.out" 2>&1 &
  local launcher=$!
  for _ in $(seq 600); do [[ -s $dir/metrics.jsonl ]] && break; sleep 0.05; done
  local victim
  victim=$(rank_pid "$dir" 1)
  if [[ -z $victim ]]; then echo "FAIL  $name: rank 1 not found"; failed=$((failed + 1)); return; fi
  local t0=$SECONDS
  kill -"$sig" "$victim"
  wait "$launcher"; local rc=$?
  local took=$((SECONDS - t0))
  local msg
  msg=$(grep -m1 -E "$want" "$name.out")
  if [[ $rc -ne 0 && $rc -ne 124 && $took -le 60 && -n $msg ]]; then
    echo "PASS  $name: exit $rc after $took s: $msg"; passed=$((passed + 1))
  else
    echo "FAIL  $name: exit $rc after $took s; output:"; tail -5 "$name.out"; failed=$((failed + 1))
  fi
  kill -KILL "$victim" 2>/dev/null
}

check sigkill KILL "rank 1|\[\[[0-9]+,1\],1\]|,1\]"
check sigstop STOP "hung or dead: rank 1 "
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
