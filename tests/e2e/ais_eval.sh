#!/usr/bin/env bash
# distvae eval --ais and --bdmc end to end on a briefly trained tiny VAE: the AIS estimate beats
# the ELBO it should bound more tightly, 2 ranks give 1 rank's estimate, BDMC's gap narrows as the
# schedule grows, the report explains the figures, and the families without the needed pieces
# are refused before any work. (Exactness against a known log p(x): core_tests AisMarginal.*.)
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup ais_eval "$1" "$2"
passed=0 failed=0
ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }
short=(--set train.epochs=1 --set data.max_images=1024 --set data.validation= --quiet)
"$distvae" train "$src/configs/fmnist_vae_tiny.yaml" "${short[@]}" --run-dir run || exit 1
ck=run/checkpoints/ckpt-000001.h5
ev=(eval --checkpoint "$ck" --data 'data/fmnist-validation-*.h5' --max-images 24 --iw 100
    --ais 8 --ais-schedule 100)
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

OMP_NUM_THREADS=1 "$distvae" "${ev[@]}" --json one.json >one.out || { cat one.out; exit 1; }
ais=$(field one.json 'j["ais_log_likelihood"]["log_likelihood"]')
elbo=$(field one.json 'j["elbo"]')
se=$(field one.json 'j["ais_log_likelihood"]["std_error"]')
if python3 -c "import sys; a, e = map(float, sys.argv[1:3]); sys.exit(0 if a > e else 1)" "$ais" "$elbo"
then ok "AIS log p(x) $ais (+- $se) above the ELBO $elbo"; else bad "AIS $ais not above the ELBO $elbo"; fi
grep -q "AIS: rank 0 24/24 images" one.out && ok "progress with an ETA" || bad "no progress line: $(cat one.out)"

timeout 300 mpirun "${as_root[@]}" --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$distvae" "${ev[@]}" \
  --json two.json >two.out 2>&1 || { cat two.out; exit 1; }
ais2=$(field two.json 'j["ais_log_likelihood"]["log_likelihood"]')
if python3 -c "import sys; a, b = map(float, sys.argv[1:3]); sys.exit(0 if abs(a - b) < 1e-3 else 1)" \
  "$ais" "$ais2"; then ok "2 ranks: $ais2, 1 rank: $ais"; else bad "2 ranks $ais2 against 1 rank $ais"; fi

"$distvae" eval --checkpoint "$ck" --data 'data/fmnist-validation-*.h5' --max-images 4 --iw 10 \
  --bdmc 8 --ais 4 --ais-schedule 64 --bdmc-target 0.001 --json bdmc.json >bdmc.out ||
  { cat bdmc.out; exit 1; }
gaps=$(field bdmc.json '" ".join(str(r["gap"]) for r in j["bdmc"])')
temps=$(field bdmc.json '" ".join(str(r["temperatures"]) for r in j["bdmc"])')
if [[ $temps == "8 16 32 64" ]] &&
   python3 -c "import sys; g = [float(v) for v in sys.argv[1:]]; sys.exit(0 if g[-1] < g[0] else 1)" $gaps
then ok "BDMC at $temps temperatures: gaps $gaps"; else bad "BDMC rows: temperatures $temps, gaps $gaps"; fi

cp one.json run/eval.json && "$distvae" report run >/dev/null &&
  grep -q "log p(x) by AIS from the prior" run/report.html && ok "the report explains the AIS figures" ||
  bad "report.html lacks the AIS figures"

"$distvae" train "$src/configs/fmnist_gan_mlp.yaml" "${short[@]}" --set data.max_images=256 \
  --run-dir gan || exit 1
out=$("$distvae" eval --checkpoint gan/checkpoints/ckpt-000001.h5 --ais 4 --quality 10 2>&1)
[[ $? -ne 0 && $out == *"--ais: gan/checkpoints/ckpt-000001.h5 is a gan, which has no likelihood"* ]] &&
  ok "--ais on a gan: refused" || bad "--ais on a gan: $out"
"$distvae" train "$src/configs/fmnist_implicit_prior.yaml" "${short[@]}" --set data.max_images=256 \
  --run-dir ip || exit 1
out=$("$distvae" eval --checkpoint ip/checkpoints/ckpt-000001.h5 --bdmc 4 2>&1)
[[ $? -ne 0 && $out == *"has no exact sampler"* ]] && ok "--bdmc on an implicit prior: refused" ||
  bad "--bdmc on an implicit prior: $out"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
