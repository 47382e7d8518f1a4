#!/usr/bin/env bash
# The adversarial families end to end on 2 ranks: the implicit prior, the AAE, the GAN (with its
# proximal term) and the DCGAN (batch norms: statistics all-reduced, running averages
# checkpointed) train, log their own metrics, stop and resume bitwise, and evaluate: the implicit
# prior's normalized log-likelihood is the unnormalized one minus log Z, learned-prior samples are
# written, sample-quality figures appear for every family; a VAE-only command refuses a GAN. A
# short VAE run joins them for the last check: every family's eval.json and every line of its
# metrics.jsonl are valid JSON (python3 -m json.tool; NaN and Infinity refused too), and its
# report charts what the family logs.
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup families "$1" "$2"
passed=0 failed=0
ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }
export OMP_NUM_THREADS=1
small=(--set data.max_images=2048 --set train.batch=32 --set train.log_every=16 --set train.epochs=2
       --set train.sample_grid=16)
train2() { mpirun "${as_root[@]}" -np 2 "$distvae" train "$@" --quiet; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
last_metric() {  # the last metrics record that has key $2
  python3 -c "
import json,sys
v=[json.loads(l) for l in open(sys.argv[1])]
v=[r[sys.argv[2]] for r in v if sys.argv[2] in r]
print(v[-1] if v else 'missing')" "$1" "$2"
}
# valid_json FILE [--json-lines]: python3 -m json.tool parses it (each line with --json-lines),
# and so does json with the NaN / Infinity / -Infinity it accepts by default refused.
valid_json() {
  python3 -m json.tool ${2:-} "$1" >/dev/null || return 1
  python3 -c "
import json, sys
def refuse(c): raise ValueError(c + ' is not JSON')
text = open(sys.argv[1]).read()
for doc in (text.splitlines() if len(sys.argv) > 2 else [text]):
    json.loads(doc, parse_constant=refuse)" "$1" ${2:-}
}

for fam in implicit_prior aae gan_mlp gan_dcgan; do
  cfg=$src/configs/fmnist_$fam.yaml
  extra=()
  [[ $fam == gan_mlp ]] && extra=(--set objective.proximal=0.1 --set objective.n_disc=2)
  train2 "$cfg" --run-dir "full_$fam" "${small[@]}" "${extra[@]}" || { bad "$fam: train"; continue; }
  train2 "$cfg" --run-dir "part_$fam" "${small[@]}" "${extra[@]}" --stop-after-epochs 1 &&
    train2 "$cfg" --run-dir "part_$fam" "${small[@]}" "${extra[@]}" --resume ||
    { bad "$fam: stop and resume"; continue; }
  # Resume equals uninterrupted: every network and optimizer state (and the GAN's snapshot).
  a=full_$fam/checkpoints/ckpt-000002.h5 b=part_$fam/checkpoints/ckpt-000002.h5
  sets=$(h5ls "$a" | awk '$2 == "Dataset" {print "/" $1}')
  same=1
  for d in $sets; do h5diff "$a" "$b" "$d" "$d" >/dev/null || { same=0; echo "  $d differs"; }; done
  n=$(wc -w <<<"$sets")
  if [[ $same -eq 1 && $n -ge 7 ]]; then ok "$fam: resumed run equals the uninterrupted one ($n arrays)"
  else bad "$fam: resumed run differs or has too few arrays ($n)"; fi
  m=full_$fam/metrics.jsonl
  for key in disc_loss disc_accuracy; do
    v=$(last_metric "$m" $key)
    [[ $v != missing ]] && ok "$fam: metrics have $key ($v)" || bad "$fam: no $key in metrics"
  done
done
[[ $(last_metric full_implicit_prior/metrics.jsonl prior_t) != missing ]] && ok "implicit prior logs prior_t" || bad "no prior_t"
[[ $(last_metric full_aae/metrics.jsonl prior_softplus_t) != missing ]] && ok "aae logs prior_softplus_t" || bad "no prior_softplus_t"
[[ $(last_metric full_gan_mlp/metrics.jsonl proximal) != missing ]] && ok "gan logs the proximal term" || bad "no proximal"

ck=full_implicit_prior/checkpoints/ckpt-000002.h5
val=(--data 'data/fmnist-validation-*.h5')
mpirun "${as_root[@]}" -np 2 "$distvae" eval --checkpoint "$ck" "${val[@]}" --max-images 64 --iw 20 \
  --normalize-prior --ais-chains 32 --ais-temperatures 50 --ais-runs 2 --quality 200 \
  --json imp.json >imp.log 2>&1 || { bad "implicit prior: eval"; cat imp.log; }
if python3 - imp.json <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
assert abs(r["iw_log_likelihood_normalized"] - (r["iw_log_likelihood"] - r["log_z"])) < 1e-6
assert r["ais_chains"] == 32 and 0 < r["ais_ess"] <= 32 and math.isfinite(r["log_z"])
assert {q["prior"] for q in r["quality"]} == {"standard", "aggregate", "learned"}
assert all(q["mmd2"] > 0 and len(q["class_histogram"]) == 10 for q in r["quality"])
PY
then ok "implicit prior eval: normalized = unnormalized - log Z; quality for 3 priors"
else bad "implicit prior eval json"; cat imp.json; fi
grep -q "AIS run 2" imp.log && ok "eval prints each AIS run" || bad "no AIS run lines"
"$distvae" sample --checkpoint "$ck" --prior learned --ais-chains 16 --ais-temperatures 20 \
  --n 16 --out learned.png >/dev/null && [[ -s learned.png ]] &&
  ok "sample --prior learned writes a grid" || bad "sample --prior learned"

gk=full_gan_mlp/checkpoints/ckpt-000002.h5
"$distvae" eval --checkpoint "$gk" "${val[@]}" --max-images 100 --quality 100 --json gan.json >/dev/null &&
  [[ $(python3 -c "import json; print(json.load(open('gan.json'))['quality'][0]['prior'])") == generator ]] &&
  ok "gan eval: sample quality of the generator" || bad "gan eval"
"$distvae" sample --checkpoint "$gk" --n 16 --out gan.png >/dev/null && [[ -s gan.png ]] &&
  ok "gan sample grid" || bad "gan sample"
msg=$("$distvae" gradvar --checkpoint "$gk" 2>&1)
[[ $? -ne 0 && $msg == *"needs a VAE"*"gan"* ]] && ok "gradvar refuses a GAN: $msg" || bad "gradvar on a gan: $msg"
# Every family's JSON: a VAE trains briefly beside the adversarial runs above; the implicit prior
# and the GAN were evaluated above, the VAE and the AAE are here (few images, few samples).
train2 "$src/configs/fmnist_vae_tiny.yaml" --run-dir full_vae "${small[@]}" || bad "vae: train"
for fam in vae aae; do
  "$distvae" eval --checkpoint full_$fam/checkpoints/ckpt-000002.h5 "${val[@]}" --max-images 64 \
    --iw 10 --quality 100 --json $fam.json >$fam.log 2>&1 || { bad "$fam: eval"; cat $fam.log; }
done
for pair in vae:vae implicit_prior:imp gan_mlp:gan aae:aae; do
  fam=${pair%%:*} js=${pair#*:}.json
  valid_json "$js" && ok "$fam: $js is valid JSON" || { bad "$fam: $js is not valid JSON"; cat "$js"; }
  m=full_$fam/metrics.jsonl
  if [[ -s $m ]] && valid_json "$m" --json-lines; then ok "$fam: every line of $m is valid JSON"
  else bad "$fam: $m has a line that is not valid JSON"; fi
done
for pair in vae:elbo vae:val_elbo implicit_prior:prior_t aae:prior_softplus_t gan_mlp:gen_loss \
            gan_mlp:disc_loss gan_mlp:disc_accuracy gan_mlp:proximal; do
  fam=${pair%%:*} key=${pair#*:}
  grep -q "<figure data-key='$key'" full_$fam/report.html && ok "$fam: the report charts $key" ||
    bad "$fam: no chart of $key in full_$fam/report.html"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
