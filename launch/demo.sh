#!/usr/bin/env bash
# The main job: install, build, convert Fashion-MNIST to HDF5, train the MLP VAE for a short
# schedule with 2 MPI ranks, evaluate it (ELBO and importance-weighted log-likelihood) and say where the images are.
# EPOCHS (default 10), NP (ranks, default 2), RUN_DIR (default runs/demo) and BUILD_DIR (default
# build) may be set in the environment. Builds only the distvae command, not the tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash launch/setup.sh
build=${BUILD_DIR:-$root/build}
BUILD_DIR=$build TARGETS=distvae bash launch/build.sh
distvae=$build/launch/distvae
fm=/usr/share/datasets/fashion-mnist
if [[ ! -f data/fmnist-train-00000.h5 || ! -f data/fmnist-test-00000.h5 ]]; then
  $distvae convert idx --images $fm/train-images-idx3-ubyte.gz --labels $fm/train-labels-idx1-ubyte.gz \
    --out data --prefix fmnist --val 10000 --overwrite
  $distvae convert idx --images $fm/t10k-images-idx3-ubyte.gz --labels $fm/t10k-labels-idx1-ubyte.gz \
    --out data --prefix fmnist --overwrite
fi
run=${RUN_DIR:-runs/demo}
epochs=${EPOCHS:-10}
rm -rf "$run"
np=${NP:-2}
as_root=()
[[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
mpirun "${as_root[@]}" --oversubscribe -np "$np" $distvae train configs/fmnist_vae_mlp.yaml --run-dir "$run" \
  --set train.epochs="$epochs" --set objective.warmup_epochs=$(( epochs < 10 ? epochs / 2 : 5 )) \
  --set train.checkpoint_every="$epochs"
ckpt=$(ls "$run"/checkpoints/ckpt-*.h5 | tail -1)
$distvae eval --checkpoint "$ckpt" --max-images 1000 --iw 1000 --json "$run/eval.json"
$distvae report "$run" >/dev/null
if command -v chromium >/dev/null; then  # a picture of the report, rendered offline
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --window-size=1300,2000 \
    --screenshot="$root/$run/report-screenshot.png" "file://$root/$run/report.html" >/dev/null 2>&1 &&
    shot="$root/$run/report-screenshot.png"
fi
echo
echo "demo: report    $root/$run/report.html   (curves, images, evaluation, config; opens offline)"
if [[ -n ${shot:-} ]]; then echo "demo: picture   $shot"; fi
echo "demo: samples   $root/$run/samples.png"
echo "demo: recon     $root/$run/recon.png   (rows: inputs, then their reconstructions)"
echo "demo: metrics   $root/$run/metrics.jsonl"
echo "demo: eval      $root/$run/eval.json"
