#!/usr/bin/env bash
# distvae against PyTorch on the same models: `distvae bench` and bench/peer/torch_peer.py run
# interleaved (distvae, torch, distvae, torch, ...) REPEATS times on each thread count, then the
# medians of images/s, their ratio, and distvae's step against its GEMM/convolution reference (the
# same operations each timed alone: how much of the step is spent outside them).
# With 2+ cores also 2 ranks x 1 thread (mpirun) against DistributedDataParallel (gloo) 2 x 1
# for the MLP VAE, and against distvae's own 1 x 1 (the scaling ratio).
#
#   bench/compare.sh                       # everything, ~10 minutes on a quiet 2-core machine
#   REPEATS=5 THREADS="1" MODELS="vae_mlp vae_conv" bench/compare.sh
#   ISA=avx2 bench/compare.sh              # an AVX-512 machine standing in for an AVX2 one
# Then the importance-weighted evaluation of the MLP VAE (K = 1000 on IW_IMAGES images, distvae
# eval's code through `distvae bench --iw`) against the peer's on the same cores: 1 thread, and
# 2 threads against distvae's 2 ranks x 1 thread (images split over the ranks).
# Environment: BUILD (default build), REPEATS (3), THREADS ("1 2"), MODELS (all four),
# DDP (1: run the 2-rank comparison), SCALE (multiplies the step counts; 0.1 for a smoke run),
# IW (1: run the evaluation comparison), IW_IMAGES (1000), ISA (native, or avx2: distvae built
# with -DDISTVAE_ARCH=x86-64-v3 in BUILD, default build-avx2, built here when missing, and run
# with DNNL_MAX_CPU_ISA=AVX2; the peer with OPENBLAS_CORETYPE=Haswell and ATEN_CPU_CAPABILITY=avx2).
# The CPU, each side's kernels and the ISA path head the figures: they hold for that CPU only.
# Timing noise between identical runs on a shared machine is 15-25%: read the medians, and look
# at the spread printed with them. docs/performance.md explains every figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
isa=${ISA:-native}
case $isa in
  native) build=${BUILD:-build} ;;
  avx2) build=${BUILD:-build-avx2} ;;
  *) echo "compare.sh: ISA must be native or avx2, got '$isa'" >&2; exit 1 ;;
esac
repeats=${REPEATS:-3}
threads_list=${THREADS:-1 2}
models=${MODELS:-vae_mlp vae_conv implicit_prior dcgan}
ddp=${DDP:-1}
scale=${SCALE:-1}
iw=${IW:-1}
iw_images=${IW_IMAGES:-1000}
distvae=$build/launch/distvae
py=/usr/bin/python3  # Debian's python3-torch lives there, not in a PATH python (pyenv, venv)
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp

peer_env=(LD_LIBRARY_PATH="$blas")
if [[ $isa == avx2 ]]; then
  # Both sides limited to AVX2 + FMA: oneDNN's kernels, our loops (compiled for x86-64-v3, no
  # AVX-512 copies), OpenBLAS's kernels and ATen's vectorized operators.
  export DNNL_MAX_CPU_ISA=AVX2
  peer_env+=(OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2)
  if [[ ! -x $distvae ]]; then
    echo "compare.sh: building distvae for x86-64-v3 in $build" >&2
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDISTVAE_ARCH=x86-64-v3 \
      -DDISTVAE_BUILD_TESTS=OFF -DDISTVAE_BUILD_BENCH=OFF >/dev/null
    cmake --build "$build" --target distvae >/dev/null
  fi
elif [[ -n ${OPENBLAS_CORETYPE:-} ]]; then
  peer_env+=(OPENBLAS_CORETYPE="$OPENBLAS_CORETYPE")
fi
[[ -x $distvae ]] || { echo "compare.sh: $distvae not built (BUILD=$build)" >&2; exit 1; }
# The peer needs torch and the OpenMP OpenBLAS (without it torch 1.13 on Debian falls back to the
# slow reference BLAS and the comparison would flatter distvae). Kept out of launch/setup.sh so
# the README's two commands never pull torch in.
if ! "$py" -c "import torch" 2>/dev/null || [[ ! -e $blas/libblas.so.3 ]]; then
  pkgs=(python3-torch libopenblas0-openmp)
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "compare.sh: installing ${pkgs[*]} for the PyTorch peer (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null
  else
    echo "compare.sh: the PyTorch peer needs: sudo apt-get install ${pkgs[*]}" >&2
    exit 1
  fi
fi
as_root=()
[[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)

declare -A config=([vae_mlp]=configs/fmnist_vae_mlp.yaml [vae_conv]=configs/fmnist_vae_conv.yaml
                   [implicit_prior]=configs/fmnist_implicit_prior.yaml
                   [dcgan]=configs/fmnist_gan_dcgan.yaml)
# Timed steps per run: a few seconds each at the issue's PyTorch reference speeds.
declare -A steps=([vae_mlp]=200 [vae_conv]=60 [implicit_prior]=200 [dcgan]=60)
nsteps() { python3 -c "print(max(2, round($scale * ${steps[$1]})))"; }
nwarm() { python3 -c "print(max(1, round($scale * ${steps[$1]} / 10)))"; }

# Both sides get the same thread count through their own knob and OMP_NUM_THREADS.
run_distvae() {  # model threads ranks -> "images/s gflops of_reference"
  local m=$1 t=$2 n=$3 out
  local cmd=("$distvae" bench "${config[$m]}" --threads "$t" --steps "$(nsteps "$m")"
             --warmup "$(nwarm "$m")")
  if [[ $n -gt 1 ]]; then
    out=$(OMP_NUM_THREADS=$t mpirun "${as_root[@]}" -np "$n" "${cmd[@]}")
  else
    out=$(OMP_NUM_THREADS=$t "${cmd[@]}")
  fi
  awk '/^result:/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
       print v["images_per_s"], v["gflops"], v["of_reference"]}' <<<"$out"
}
run_torch() {  # model threads procs -> "images/s"
  local m=$1 t=$2 n=$3
  env OMP_NUM_THREADS="$t" "${peer_env[@]}" \
    "$py" bench/peer/torch_peer.py --model "$m" --threads "$t" --procs "$n" \
    --steps "$(nsteps "$m")" --warmup "$(nwarm "$m")" | awk '/^images\/s:/ {print $2}'
}

# Every (model, threads, ranks) case, in the order they are interleaved.
cases=()
for t in $threads_list; do for m in $models; do cases+=("$m $t 1"); done; done
[[ $ddp == 1 && $models == *vae_mlp* && $(nproc) -ge 2 ]] && cases+=("vae_mlp 1 2")

declare -A dv tv gf ref
for r in $(seq "$repeats"); do
  for c in "${cases[@]}"; do
    read -r m t n <<<"$c"
    read -r a g x <<<"$(run_distvae "$m" "$t" "$n")"
    b=$(run_torch "$m" "$t" "$n")
    dv[$c]+="$a " tv[$c]+="$b " gf[$c]+="$g " ref[$c]+="$x "
    printf "run %d/%d  %-15s %d thread(s) x %d rank(s): distvae %8.0f  torch %8.0f images/s\n" \
      "$r" "$repeats" "$m" "$t" "$n" "$a" "$b" >&2
  done
done

# median and (min-max) of a space-separated list of numbers
# shellcheck disable=SC2086
stat() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]
print(f'{statistics.median(v):.6g} {min(v):.6g} {max(v):.6g}')" $1; }

# What ran, on which CPU: the figures hold for this CPU and ISA path only.
machine() {
  echo "cpu: $("$distvae" --version | sed -n 's/^cpu: //p')"
  echo "ISA path: $isa$([[ $isa == avx2 ]] && echo " (DNNL_MAX_CPU_ISA=AVX2, -DDISTVAE_ARCH=x86-64-v3)")"
  "$distvae" bench configs/fmnist_vae_mlp.yaml --steps 1 --warmup 0 --threads 1 |
    sed -n 's/^oneDNN/distvae: oneDNN/p'
  local core
  core=$(env OPENBLAS_VERBOSE=2 "${peer_env[@]}" "$py" -c \
    'import torch; a = torch.ones(64, 64); (a @ a).sum()' 2>&1 | sed -n 's/^Core: //p')
  echo "peer: PyTorch $("$py" -c 'import torch; print(torch.__version__)'), OpenMP OpenBLAS" \
    "$(dpkg-query -W -f '${Version}' libopenblas0-openmp 2>/dev/null) with ${core:-?} kernels," \
    "ATen $("$py" -c 'import torch; print(torch.__config__.show())' 2>/dev/null |
      sed -n 's/.*CPU capability usage: //p' | head -1)"
}

echo
machine
echo "medians of $repeats interleaved runs; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-15s %-9s %20s %20s %7s %9s %7s\n" model "threads" "distvae images/s" \
  "torch images/s" ratio "GFLOP/s" "of ref"
for c in "${cases[@]}"; do
  read -r m t n <<<"$c"
  read -r a amin amax <<<"$(stat "${dv[$c]}")"
  read -r b bmin bmax <<<"$(stat "${tv[$c]}")"
  read -r g _ _ <<<"$(stat "${gf[$c]}")"
  read -r x _ _ <<<"$(stat "${ref[$c]}")"
  label="$t"
  [[ $n -gt 1 ]] && label="${n}x$t"
  printf "%-15s %-9s %8.0f (%5.0f-%5.0f) %8.0f (%5.0f-%5.0f) %7.2f %9.1f %6.0f%%\n" \
    "$m" "$label" "$a" "$amin" "$amax" "$b" "$bmin" "$bmax" \
    "$(python3 -c "print($a / $b)")" "$g" "$x"
done
if [[ -n ${dv["vae_mlp 1 2"]:-} && -n ${dv["vae_mlp 1 1"]:-} ]]; then
  read -r one _ _ <<<"$(stat "${dv["vae_mlp 1 1"]}")"
  read -r two _ _ <<<"$(stat "${dv["vae_mlp 1 2"]}")"
  printf "vae_mlp scaling, distvae 2 ranks x 1 thread / 1 rank x 1 thread: %.2f\n" \
    "$(python3 -c "print($two / $one)")"
fi
echo "threads 2x1: 2 ranks (mpirun) x 1 thread vs DistributedDataParallel (gloo) 2 processes x 1."
echo "GFLOP/s: 3 x forward FLOPs per image x images/s; of ref: the step's GEMMs and convolutions,"
echo "each timed alone at its shape, over the step's time (0: no reference for the GAN); see"
echo "docs/performance.md."

# ---- the importance-weighted evaluation, K = 1000 ----
[[ $iw == 1 ]] || exit 0
run_distvae_iw() {  # ranks threads -> "images/s of_reference"
  local n=$1 t=$2 cmd=("$distvae" bench configs/fmnist_vae_mlp.yaml --iw 1000 --images "$iw_images"
                       --threads "$2")
  if [[ $n -gt 1 ]]; then
    OMP_NUM_THREADS=$t mpirun "${as_root[@]}" -np "$n" "${cmd[@]}"
  else
    OMP_NUM_THREADS=$t "${cmd[@]}"
  fi | awk '/^result:/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
             print v["iw_images_per_s"], v["of_reference"]}'
}
run_torch_iw() {  # threads -> images/s
  env OMP_NUM_THREADS="$1" "${peer_env[@]}" \
    "$py" bench/peer/torch_peer.py --model vae_mlp --iw 1000 --images "$iw_images" --threads "$1" |
    awk '/^images\/s:/ {print $2}'
}
iw_cases=("1 1")  # distvae ranks, threads per rank; the peer gets ranks x threads threads
[[ $(nproc) -ge 2 ]] && iw_cases+=("2 1")
declare -A iwd iwt iwr
for r in $(seq "$repeats"); do
  for c in "${iw_cases[@]}"; do
    read -r n t <<<"$c"
    read -r a x <<<"$(run_distvae_iw "$n" "$t")"
    b=$(run_torch_iw $((n * t)))
    iwd[$c]+="$a " iwt[$c]+="$b " iwr[$c]+="$x "
    printf "run %d/%d  iw K=1000 %d image(s): distvae %d rank(s) x %d thread %8.2f  torch %d thread(s) %8.2f images/s\n" \
      "$r" "$repeats" "$iw_images" "$n" "$t" "$a" $((n * t)) "$b" >&2
  done
done
echo
echo "importance-weighted evaluation, K = 1000, $iw_images images, medians of $repeats interleaved runs"
printf "%-22s %20s %20s %7s %7s\n" "distvae ranks x threads" "distvae images/s" "torch images/s" \
  ratio "of ref"
for c in "${iw_cases[@]}"; do
  read -r n t <<<"$c"
  read -r a amin amax <<<"$(stat "${iwd[$c]}")"
  read -r b bmin bmax <<<"$(stat "${iwt[$c]}")"
  read -r x _ _ <<<"$(stat "${iwr[$c]}")"
  printf "%-22s %7.1f (%5.1f-%5.1f) %7.1f (%5.1f-%5.1f) %7.2f %6.0f%%\n" \
    "${n}x$t vs torch $((n * t)) thr" "$a" "$amin" "$amax" "$b" "$bmin" "$bmax" \
    "$(python3 -c "print($a / $b)")" "$x"
done
