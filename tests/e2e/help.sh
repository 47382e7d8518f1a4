#!/usr/bin/env bash
# Every command and subcommand answers --help with its usage and options (exit 0).
set -u
distvae=$1/launch/distvae
passed=0 failed=0
for cmd in "" train eval sample gradvar encode interpolate report convert "convert idx" \
           "convert images" config "config show" "config check" "config keys"; do
  out=$($distvae $cmd --help 2>&1); rc=$?
  if [[ $rc -eq 0 && $out == *Usage:* && $out == *--help* ]]; then passed=$((passed + 1))
  else echo "FAIL  distvae $cmd --help (exit $rc)"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
