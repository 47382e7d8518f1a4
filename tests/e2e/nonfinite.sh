#!/usr/bin/env bash
# A NaN/Inf in the loss terms or gradients: train.on_nonfinite=stop exits 4 naming the step and
# the term without updating the parameters; =skip skips such steps and counts them in the metrics.
# Provoked with SGD at lr 10 and momentum 0.99, which diverges within a few steps.
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup nonfinite "$1" "$2"
run=(train "$src/configs/fmnist_vae_tiny.yaml" --set optim.kind=sgd --set optim.lr=10
     --set optim.momentum=0.99 --set data.validation= --set train.epochs=1)
passed=0 failed=0
"$distvae" "${run[@]}" --run-dir stop >stop.out 2>&1; rc=$?
msg=$(grep -m1 "distvae: error: step" stop.out)
# Which term turns non-finite first depends on the data order; the message must name one of them.
named='step [0-9]+: non-finite (reconstruction term log p\(x\|z\)|KL term|encoder gradients|decoder gradients)'
if [[ $rc -eq 4 && $msg =~ $named && $msg == *"without updating the parameters"* ]]; then
  echo "PASS  stop: exit 4: $msg"; passed=$((passed + 1))
else
  echo "FAIL  stop: exit $rc"; tail -3 stop.out; failed=$((failed + 1))
fi
"$distvae" "${run[@]}" --run-dir skip --set train.on_nonfinite=skip >skip.out 2>&1; rc=$?
skipped=$(grep -o '"skipped_steps": [0-9]*' skip/metrics.jsonl | tail -1 | grep -o '[0-9]*$')
if [[ $rc -eq 0 && ${skipped:-0} -gt 0 ]]; then
  echo "PASS  skip: exit 0, $skipped steps skipped"; passed=$((passed + 1))
else
  echo "FAIL  skip: exit $rc, skipped '${skipped:-}'"; tail -3 skip.out; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
