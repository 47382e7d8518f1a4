#!/usr/bin/env bash
# Progress output: under a pseudo-terminal (script(1)) a live line redrawn with \r and a bar;
# through a pipe plain lines (no \r, no escape codes) every --log-every seconds; --quiet prints
# nothing. Run by ctest: bash THIS BUILD SOURCE
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
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
