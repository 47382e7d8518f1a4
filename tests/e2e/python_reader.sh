#!/usr/bin/env bash
# python/distvae_reader.py against the distvae command (tests/python/reader_check.py), on six
# briefly trained models that between them hold every layer kind and activation: the tiny MLP VAE,
# the conv VAE, a VAE with batch norms, PixelCNN-masked convs (A and B), a Gaussian
# learned-variance likelihood, estimator A and two samples, an autoregressive (PixelVAE) decoder,
# the implicit prior (a capped T(z)), the adversarial autoencoder and the DCGAN. Then checkpoints of other formats: one
# of format 1 (no model description; what distvae wrote before it) is still read by distvae and
# refused by the reader with a message, and one of a newer format is refused by both.
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
e2e_setup python_reader "$1" "$2"
py=/usr/bin/python3  # Debian's, where launch/setup.sh installs python3-numpy and python3-h5py
$py -c "import numpy, h5py" 2>/dev/null ||
  e2e_skip command:python3-h5py "$py cannot import numpy and h5py (apt-get install python3-numpy python3-h5py)"
fail() { echo "FAIL: $*"; exit 1; }
fm=/usr/share/datasets/fashion-mnist
"$distvae" convert idx --images $fm/t10k-images-idx3-ubyte.gz --labels $fm/t10k-labels-idx1-ubyte.gz \
  --out data --prefix fmnist >/dev/null || fail "converting the test set"
short=(--set train.epochs=1 --set data.max_images=512 --set train.batch=64 --set data.validation=
       --set train.threads=1 --quiet)

cat >zoo.yaml <<'YAML'
model:
  family: vae
  latent: 6
  encoder:
    - {type: reshape, shape: [1, 28, 28]}
    - {type: conv2d, out: 3, kernel: 5, padding: 2, mask: A}
    - {type: conv2d, out: 4, kernel: 3, stride: 2, padding: 1}
    - batchnorm
    - {type: leaky_relu, alpha: 0.1}
    - {type: conv2d, out: 6, kernel: 3, stride: 2, bias: false}
    - tanh
    - flatten
    - {type: linear, out: 32}
    - batchnorm
    - {type: elu, alpha: 0.7}
  decoder:
    - {type: linear, out: 196}
    - softplus
    - {type: reshape, shape: [4, 7, 7]}
    - {type: deconv2d, out: 3, kernel: 3, stride: 2, padding: 1, output_padding: 1}
    - sigmoid
    - {type: deconv2d, out: 2, kernel: 4, stride: 2, padding: 1}
    - {type: conv2d, out: 2, kernel: 3, padding: 1, mask: B}
    - flatten
  likelihood: gaussian
  gaussian_variance: learned
  logvar_floor: -3
objective: {estimator: A, samples: 2}
data: {train: data/fmnist-train-*.h5, test: data/fmnist-test-*.h5, binarize: none}
YAML

cat >pixel.yaml <<'YAML'
model:
  family: vae
  latent: 4
  encoder: [{type: linear, out: 32}, relu]
  decoder:
    - {type: linear, out: 1568}
    - {type: reshape, shape: [2, 28, 28]}
    - autoregressive
    - {type: conv2d, out: 4, kernel: 5, padding: 2, mask: A}
    - relu
    - {type: conv2d, out: 4, kernel: 3, padding: 1, mask: B}
    - elu
    - {type: conv2d, out: 1, kernel: 1}
  likelihood: bernoulli
objective: {free_bits: 0.1}
data: {train: data/fmnist-train-*.h5, test: data/fmnist-test-*.h5, binarize: dynamic}
YAML

check() {  # NAME CONFIG [train options...]
  local name=$1 config=$2 ck
  shift 2
  "$distvae" train "$config" "${short[@]}" "$@" --run-dir "$name" || fail "$name: training"
  ck=$name/checkpoints/ckpt-000001.h5
  mkdir -p "$name.out" && ln -sfn "$tmp/data" "$name.out/data"
  "$distvae" sample --checkpoint "$ck" --n 50 --seed 7 --out "$name.out/sample.h5" >/dev/null ||
    fail "$name: distvae sample"
  if [[ $name != gan ]]; then
    "$distvae" encode --checkpoint "$ck" --data 'data/fmnist-test-*.h5' --out "$name.out/enc.h5" \
      >/dev/null || fail "$name: distvae encode"
    "$distvae" eval --checkpoint "$ck" --max-images 1000 --iw 1 --json "$name.out/eval.json" \
      >/dev/null || fail "$name: distvae eval"
  fi
  $py "$src/tests/python/reader_check.py" "$src" "$ck" "$name.out" || fail "$name: the reader differs"
}
check tiny "$src/configs/fmnist_vae_tiny.yaml"
check conv "$src/configs/fmnist_vae_conv.yaml"
check zoo zoo.yaml
check pixel pixel.yaml --set train.sample_grid=4
check implicit "$src/configs/fmnist_implicit_prior.yaml" --set model.latent=8
check aae "$src/configs/fmnist_aae.yaml" --set model.latent=8
check gan "$src/configs/fmnist_gan_dcgan.yaml"
echo "PASS  the reader matches distvae on 7 models"

# The README's example, as written, in a directory laid out as after launch/demo.sh (the tiny
# model's checkpoint in place of the demo's).
mkdir -p readme/runs/demo/checkpoints
cp tiny/checkpoints/ckpt-000001.h5 readme/runs/demo/checkpoints/ckpt-000010.h5
ln -s "$tmp/data" readme/data && ln -s "$src/python" readme/python
awk '/<!-- reader-example/ {on = 1; next} on && /^```sh/ {grab = 1; next} grab && /^```/ {exit}
     grab {print}' "$src/README.md" >readme/example.sh
[[ -s readme/example.sh ]] || fail "no reader example found in README.md"
out=$(cd readme && bash example.sh 2>&1) || fail "the README's example: $out"
grep -q "test accuracy" <<<"$out" || fail "the README's example printed: $out"
echo "PASS  the README's example runs: $out"

# Format 1: the same checkpoint without format_version and the model description.
cp tiny/checkpoints/ckpt-000001.h5 v1.h5
$py - v1.h5 <<'PY' || fail "could not make a format-1 checkpoint"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as h:
    del h.attrs["format_version"], h.attrs["model"]
PY
"$distvae" eval --checkpoint v1.h5 --max-images 50 --iw 1 >/dev/null || fail "distvae no longer reads format 1"
out=$(cd "$src/python" && $py -c "import distvae_reader as d; d.load('$tmp/v1.h5')" 2>&1) &&
  fail "the reader accepted a format-1 checkpoint"
grep -q "CheckpointError: .*checkpoint format 1 .*has no model description" <<<"$out" ||
  fail "the reader's format-1 message: $out"
echo "PASS  format 1: distvae reads it; the reader refuses it: ${out##*CheckpointError: }"

# A newer format: refused by both, saying so, and distvae train --resume neither skips nor uses it.
cp tiny/checkpoints/ckpt-000001.h5 v9.h5
$py -c "import h5py; h5py.File('v9.h5', 'r+').attrs['format_version'] = 9" || fail "could not make v9"
out=$("$distvae" eval --checkpoint v9.h5 --max-images 50 --iw 1 2>&1) && fail "distvae read format 9"
grep -q "written by a newer distvae (checkpoint format 9; this build reads formats 1 to 2)" <<<"$out" ||
  fail "distvae's format-9 message: $out"
out=$(cd "$src/python" && $py -c "import distvae_reader as d; d.load('$tmp/v9.h5')" 2>&1) &&
  fail "the reader accepted format 9"
grep -q "checkpoint format 9 was written by a newer distvae" <<<"$out" || fail "the reader's format-9 message: $out"
cp v9.h5 tiny/checkpoints/ckpt-000002.h5
out=$("$distvae" train "$src/configs/fmnist_vae_tiny.yaml" "${short[@]}" --set train.epochs=3 \
  --run-dir tiny --resume 2>&1) && fail "a resume over a format-9 checkpoint went on"
grep -q "ckpt-000002.h5: written by a newer distvae" <<<"$out" || fail "the resume's message: $out"
echo "PASS  format 9: distvae and the reader refuse it; a resume stops at it"
echo "4 passed, 0 failed"
