#!/usr/bin/env bash
# `distvae bench` runs a couple of training steps of every model family's config without any
# dataset (from an empty directory) and prints each figure of docs/performance.md; under mpirun
# only rank 0 prints; bad flags get a clear error. Nothing here looks at how fast it was.
# Run by ctest: bash THIS BUILD SOURCE
source "$(dirname "$0")/common.bash"
distvae=$1/launch/distvae
src=$2
# No e2e_setup: bench needs no Fashion-MNIST, and the empty directory proves it reads no data.
tmp=$(mktemp -d "$1/bench_command.XXXXXX")
trap 'eval "$e2e_cleanup"; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
as_root=()
[[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
export OMP_NUM_THREADS=1
passed=0 failed=0
ok() { echo "PASS  $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }

fields=("images/s:" "step time:" "GFLOP/s:" "matmul GFLOP/s:" "of matmul reference:"
        "discriminator updates" "model forward + backward" "gradient sync, exposed" "optimizer"
        "waiting for data" "peak memory:" "result: images_per_s=")
has_fields() {  # output -> the missing fields, or nothing
  local f
  for f in "${fields[@]}"; do [[ $1 == *"$f"* ]] || echo "'$f'"; done
}

for cfg in fmnist_vae_mlp fmnist_vae_conv fmnist_implicit_prior fmnist_aae fmnist_gan_dcgan \
           fmnist_gan_mlp; do
  out=$("$distvae" bench "$src/configs/$cfg.yaml" --steps 2 --warmup 1 --threads 1 2>&1); rc=$?
  missing=$(has_fields "$out")
  if [[ $rc -eq 0 && -z $missing && $out == *"images 28x28x1"* ]]; then ok "$cfg: 2 steps, every field"
  else bad "$cfg: exit $rc, missing ${missing:-nothing}"; echo "$out" | sed 's/^/    /'; fi
done

# The 64x64 configs (issue 8): the image shape comes from the decoder's or generator's output.
for cfg in sprites_vae_conv sprites_rgb_vae_conv sprites_gan_dcgan; do
  out=$("$distvae" bench "$src/configs/$cfg.yaml" --steps 1 --warmup 1 --threads 1 2>&1); rc=$?
  missing=$(has_fields "$out")
  if [[ $rc -eq 0 && -z $missing && $out == *"images 64x64x"* ]]; then ok "$cfg: a step at 64x64"
  else bad "$cfg: exit $rc, missing ${missing:-nothing}"; echo "$out" | sed 's/^/    /'; fi
done

# The GEMM/conv reference: the step's heavy operations, counted and timed. The counts are checked
# against the layer sizes (2 FLOPs per multiply-add, forward, weight gradient, input gradient but
# the data's): the MLP VAE's 17 GEMMs (6 layers x 3, less the encoder's first input gradient), and
# one update of the implicit prior's T (32-256-256-1) over 2 x 128 rows.
flops() {  # expression, decimals -> MFLOP as bench prints them
  python3 -c "import sys; print(f'{eval(sys.argv[1]) * 1e-6:.{sys.argv[2]}f}')" "$1" "$2"
}
mlp=$(flops "2 * (3 * (784*512 + 512*256 + 256*64 + 32*256 + 256*512 + 512*784) - 784*512)" 3)
t_update=$(flops "2 * 256 * (3 * (32*256 + 256*256 + 256) - 32*256)" 1)
out=$("$distvae" bench "$src/configs/fmnist_vae_mlp.yaml" --steps 2 --warmup 1 --threads 1 2>&1)
if [[ $out == *"the step's 17 distinct GEMMs"* && $out == *"($mlp MFLOP/image the step runs"* &&
      $out == *"step at:"* && $out == *"of_reference="* ]]; then
  ok "MLP VAE: GEMM reference over the step's 17 GEMMs, $mlp MFLOP/image"
else bad "MLP VAE GEMM reference (want $mlp MFLOP/image)"; echo "$out" | sed 's/^/    /'; fi
out=$("$distvae" bench "$src/configs/fmnist_implicit_prior.yaml" --steps 2 --warmup 1 --threads 1 2>&1)
if [[ $out == *"step at:"* && $out == *"GFLOP/s  ($t_update MFLOP in"* ]]; then
  ok "implicit prior: reference and T's update ($t_update MFLOP)"
else bad "implicit prior: reference or T's update (want $t_update MFLOP)"; echo "$out" | sed 's/^/    /'; fi
out=$("$distvae" bench "$src/configs/fmnist_vae_conv.yaml" --steps 1 --warmup 1 --threads 1 2>&1)
if [[ $out == *"GEMMs and convolutions, each timed alone"* && $out == *"step at:"* ]]; then
  ok "conv VAE: GEMM/conv reference"
else bad "conv VAE: GEMM/conv reference"; echo "$out" | sed 's/^/    /'; fi
out=$("$distvae" bench "$src/configs/fmnist_gan_mlp.yaml" --steps 1 --warmup 1 --threads 1 2>&1)
if [[ $out != *"step at:"* && $out == *"of_reference=0.0"* ]]; then ok "GAN: no reference, said as 0"
else bad "GAN reference"; echo "$out" | sed 's/^/    /'; fi

# --iw: the evaluation's code on synthetic images; the bound must not depend on the split over
# ranks (each image's noise is keyed by its index), so 1 and 2 ranks print the same figure.
iw_bound() { sed -n 's/.*(iw bound \(-*[0-9.]*\) nats.*/\1/p' <<<"$1"; }
out1=$("$distvae" bench "$src/configs/fmnist_vae_mlp.yaml" --iw 50 --images 12 --threads 1 \
       --set eval.iw_batch=4 2>&1); rc=$?
b1=$(iw_bound "$out1")
if [[ $rc -eq 0 && -n $b1 && $out1 == *"result: iw_images_per_s="* &&
      $out1 == *"evaluation at:"* ]]; then ok "--iw: bound $b1, against its GEMM reference"
else bad "--iw (exit $rc)"; echo "$out1" | sed 's/^/    /'; fi

# Family-specific lines: the discriminator's share is measured (non-zero) where there is one.
out=$("$distvae" bench "$src/configs/fmnist_implicit_prior.yaml" --steps 2 --warmup 0 2>&1)
disc=$(awk '/discriminator updates/ {print $(NF-2)}' <<<"$out")
if python3 -c "import sys; sys.exit(0 if float('$disc') > 0 else 1)" 2>/dev/null; then
  ok "implicit prior: discriminator updates timed ($disc ms)"
else bad "implicit prior: discriminator updates '$disc'"; fi

# --image and --set reach the model.
out=$("$distvae" bench "$src/configs/fmnist_vae_mlp.yaml" --steps 1 --warmup 0 --image 1x784x1 \
      --set train.batch=16 2>&1); rc=$?
if [[ $rc -eq 0 && $out == *"images 1x784x1"* && $out == *"batch 16 x 1 rank"* ]]; then
  ok "--image and --set"
else bad "--image and --set (exit $rc)"; echo "$out" | sed 's/^/    /'; fi

# Errors name the problem.
check_error() {  # description, expected message part, args...
  local what=$1 want=$2
  shift 2
  out=$("$distvae" bench "$@" 2>&1); rc=$?
  if [[ $rc -ne 0 && $out == *"$want"* ]]; then ok "error: $what"
  else bad "error: $what (exit $rc): $out"; fi
}
check_error "--image not HxWxC" "expected HxWxC" "$src/configs/fmnist_vae_mlp.yaml" --image 28x28
check_error "--image of the wrong size" "decoder" "$src/configs/fmnist_vae_mlp.yaml" --image 32x32x1
check_error "--steps 0" "--steps" "$src/configs/fmnist_vae_mlp.yaml" --steps 0
check_error "--iw on a GAN" "needs a VAE" "$src/configs/fmnist_gan_mlp.yaml" --iw 10
check_error "missing config" "no_such.yaml" no_such.yaml
out=$("$distvae" bench --help 2>&1)
if [[ $out == *"no dataset"* && $out == *--steps* && $out == *--threads* ]]; then ok "--help"
else bad "--help"; fi

# Two ranks: one report (rank 0), the global batch, the matmul reference summed over ranks.
if command -v mpirun >/dev/null; then
  out=$(mpirun "${as_root[@]}" -np 2 "$distvae" bench "$src/configs/fmnist_vae_mlp.yaml" \
        --steps 2 --warmup 1 --threads 1 2>&1); rc=$?
  n=$(grep -c '^images/s:' <<<"$out")
  if [[ $rc -eq 0 && $n -eq 1 && $out == *"x 2 rank(s) = 256"* && $out == *"over 2 ranks"* ]]; then
    ok "mpirun -np 2: rank 0 reports the 2-rank run"
  else bad "mpirun -np 2 (exit $rc, $n reports)"; echo "$out" | sed 's/^/    /'; fi
  out2=$(mpirun "${as_root[@]}" -np 2 "$distvae" bench "$src/configs/fmnist_vae_mlp.yaml" \
         --iw 50 --images 12 --threads 1 --set eval.iw_batch=4 2>&1); rc=$?
  b2=$(iw_bound "$out2")
  if [[ $rc -eq 0 && -n $b2 && $b2 == "$b1" && $out2 == *"2 rank(s)"* ]]; then
    ok "--iw over 2 ranks: the same bound ($b2)"
  else bad "--iw over 2 ranks: bound '$b2' vs '$b1' (exit $rc)"; echo "$out2" | sed 's/^/    /'; fi
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
