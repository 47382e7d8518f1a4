#!/usr/bin/env bash
# The GPU machine's half of tests/gpu/bundle.sh (copied to gpu-bundle/run.sh there). Through the
# device tool: command "bash gpu-bundle/run.sh", carry ["gpu-bundle"] (docs/gpu.md). It
#   - unpacks payload.tar.xz into $DISTVAE_GPU_WORK (default /tmp/distvae-gpu), points our
#     binaries (never Python) at the bundled libraries and at this machine's cudart, cuBLASLt,
#     cuDNN and NCCL (/usr/local/cuda, then PyTorch's site-packages/nvidia/*/lib) and prints what
#     it found, nvidia-smi and distvae --version;
#   - runs cuda_tests (one rank), a 2-rank dnnl job and the NCCL tests at 2 ranks with the bundled
#     mpirun (NCCL refuses two ranks on one GPU: then it says so);
#   - trains fmnist_vae_mlp.yaml and fmnist_vae_conv.yaml for 200 steps on cuda and on dnnl with
#     the same seed, data and noise, and compares the per-step ELBO curves;
#   - times distvae bench on cuda (MLP VAE batch 128 and 1024, conv VAE 128), the same on dnnl for
#     reference, and PyTorch on the same GPU (bench/peer/torch_peer.py, eager and torch.compile);
#   - writes $OUT/summary.txt, $OUT/run.log, $OUT/elbo_curves.tsv and $OUT/results.tar.gz (every
#     log, metrics.jsonl, the gtest XML).
# Every part has its own time limit inside one overall budget (BUDGET_S, default 450 s; the parts
# run most important first, so torch.compile's are the ones a slow machine loses); a part that
# fails is recorded and the next one runs. A part that needs a GPU says "SKIP (no CUDA device)"
# where there is none. Exit status 0 when no part failed.
# Environment: OUT (default ./gpu-out), DISTVAE_GPU_WORK, BUDGET_S, PARTS (a bash regex: run only
# the parts whose names match, e.g. PARTS='cuda_tests|train_mlp' for a second try),
# DISTVAE_CUDA_LIBS (folders searched first for the CUDA libraries), DISTVAE_NVIDIA_SITE (extra
# site-packages folders holding nvidia/*/lib), PYTHON (the one with PyTorch; default python3),
# TORCH_DEVICE (cuda; cpu only to try the PyTorch parts' plumbing on a machine without a GPU).
# No set -e / -u: a part that fails must not end the run (each part's status is recorded).
set -o pipefail
bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-$PWD/gpu-out}
work=${DISTVAE_GPU_WORK:-/tmp/distvae-gpu}
budget=${BUDGET_S:-450}
P=$work/payload  # the unpacked bundle
logs=$work/logs

names=() statuses=() seconds=() notes=()
record() {  # name status seconds note
  names+=("$1") statuses+=("$2") seconds+=("$3") notes+=("$4")
  printf '>>> %-16s %-5s %4ss  %s\n' "$1" "$2" "$3" "$4"
}
banner() { printf '\n===== %s (%d s elapsed)\n' "$1" "$SECONDS"; }

# part NAME LIMIT CMD...: runs CMD under `timeout` (LIMIT, cut to what the budget has left) with
# its output in $logs/NAME.log (the last lines printed). Sets rc; returns 0 when it ran.
part() {
  local name=$1 limit=$2
  shift 2
  if ! selected "$name"; then
    rc=125
    return 1
  fi
  local left=$((budget - 25 - SECONDS))
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    record "$name" SKIP 0 "no time left in the ${budget} s budget"
    rc=125
    return 1
  fi
  local shown=("$@")  # the command without env and its assignments
  while [[ ${shown[0]:-} == env || ${shown[0]:-} == *=* ]]; do shown=("${shown[@]:1}"); done
  banner "$name: ${shown[*]} (limit ${limit} s)"
  local t=$SECONDS
  timeout -k 5 "$limit" "$@" </dev/null >"$logs/$name.log" 2>&1
  rc=$?
  part_s=$((SECONDS - t))
  tail -n "${TAIL:-12}" "$logs/$name.log"
  if ((rc == 124 || rc == 137)); then
    record "$name" FAIL "$part_s" "timed out after ${limit} s"
    rc=124
    return 1
  fi
  return 0
}
# verdict NAME [NOTE [FAIL_NOTE]]: PASS with NOTE, or FAIL with the exit code, the log's last error
# line and FAIL_NOTE, from the last part's rc. Where a GPU is listed, a GPU test that skipped for want of one fails.
verdict() {
  local log=$logs/$1.log why
  if ((rc == 0)) && ((gpus > 0)) && grep -q "skipped: no CUDA device" "$log" 2>/dev/null; then
    rc=1
    why="GPU tests skipped although nvidia-smi lists a GPU: $(grep -m1 -o 'no CUDA device.*' "$log")"
  fi
  if ((rc == 0)); then
    record "$1" PASS "$part_s" "${2:-}"
    return
  fi
  [[ -z ${why:-} ]] && why=$(grep -iE "error|fail|abort|what\(\)" "$log" 2>/dev/null | grep -v "^\[  FAILED  \] [0-9]* test" | tail -1)
  [[ -z $why ]] && why=$(grep -v '^[[:space:]]*$' "$log" 2>/dev/null | tail -1)
  record "$1" FAIL "$part_s" "exit $rc: ${why:0:200}${3:+ ($3)}"
}
selected() {  # NAME: whether PARTS lets it run (else records the skip)
  [[ -z ${PARTS:-} || $1 =~ $PARTS || $1 == version ]] && return 0
  record "$1" SKIP 0 "not in PARTS=$PARTS"
  return 1
}
need_gpu() {  # NAME: records the skip and returns 1 without a GPU
  ((gpus > 0)) && return 0
  record "$1" SKIP 0 "no CUDA device ($gpu_why)"
  return 1
}

# ---- the CUDA libraries: this machine's, never the bundle's ----
cuda_libs=(libcudart.so.13 libcublasLt.so.13 libcudnn.so.9 libnccl.so.2)
optional_cuda_libs=(libcublas.so.13 libnvrtc.so.13 libnvJitLink.so.13)
nvidia_sites() {  # site-packages folders holding nvidia/ (PyTorch's CUDA wheels)
  local s
  local extra=${DISTVAE_NVIDIA_SITE:-}
  for s in ${extra//:/ } \
    $(python3 -c 'import site; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' \
      2>/dev/null) /opt/*/.venv/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages \
    /usr/lib/python3/dist-packages; do
    [[ -d $s/nvidia ]] && echo "$s"
  done | awk '!seen[$0]++'
}
find_cuda_libs() {  # sets cuda_dirs (in search order) and prints where each library is
  local candidates=() d lib found s extra=${DISTVAE_CUDA_LIBS:-}
  for d in ${extra//:/ } /usr/local/cuda/lib64 /usr/local/cuda/lib \
    /usr/local/cuda/targets/x86_64-linux/lib; do candidates+=("$d"); done
  while read -r s; do
    for d in "$s"/nvidia/*/lib; do candidates+=("$d"); done
  done < <(nvidia_sites)
  cuda_dirs=()
  missing_cuda=()
  for lib in "${cuda_libs[@]}" "${optional_cuda_libs[@]}"; do
    found=""
    for d in "${candidates[@]}"; do
      if [[ -e $d/$lib ]]; then found=$d; break; fi
    done
    if [[ -z $found ]]; then
      found=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l && !f {print $NF; f = 1}')
      [[ -n $found ]] && found=$(dirname "$found")
    fi
    if [[ -n $found ]]; then
      echo "  $lib -> $(readlink -f "$found/$lib")"
      [[ " ${cuda_dirs[*]} " == *" $found "* ]] || cuda_dirs+=("$found")
    else
      echo "  $lib: NOT FOUND"
      [[ " ${optional_cuda_libs[*]} " == *" $lib "* ]] || missing_cuda+=("$lib")
    fi
  done
  # The driver's own folder where it is not on the loader's default path.
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [[ -e $d/libcuda.so.1 ]] && cuda_dirs+=("$d")
  done
  echo "  libcuda.so.1 (driver): $( (ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" && !f {print $NF; f = 1}';
    for d in "${cuda_dirs[@]}"; do [[ -e $d/libcuda.so.1 ]] && echo "$d/libcuda.so.1"; done) |
    sed -n 1p | grep . || echo "not found (no NVIDIA driver)")"
}

# The environment our binaries run in: the bundle's libraries first, then CUDA's, then whatever
# the machine set. Open MPI and PMIx are told where their relocated files are.
set_env() {
  libpath=$P/lib
  ((use_fallback)) && libpath+=:$P/lib/fallback
  local d
  for d in "${cuda_dirs[@]}"; do libpath+=:$d; done
  [[ -n ${LD_LIBRARY_PATH:-} ]] && libpath+=:$LD_LIBRARY_PATH
  # shellcheck disable=SC2054  # btl=self,vader is one value
  dv=(env "LD_LIBRARY_PATH=$libpath" "PATH=$P/bin:$PATH"
    "OPAL_PREFIX=$P" "OPAL_EXEC_PREFIX=$P" "OPAL_BINDIR=$P/bin" "OPAL_LIBDIR=$P/lib"
    "OPAL_PKGLIBDIR=$P/lib/openmpi3" "OPAL_DATAROOTDIR=$P/share" "OPAL_DATADIR=$P/share"
    "OPAL_PKGDATADIR=$P/share/openmpi" "OPAL_SYSCONFDIR=$P/etc" "OPAL_INCLUDEDIR=$P/include"
    "PMIX_INSTALL_PREFIX=$P" "PMIX_PREFIX=$P" "PMIX_PKGLIBDIR=$P/lib/pmix" "PMIX_LIBDIR=$P/lib"
    "PMIX_PKGDATADIR=$P/share/pmix" "PMIX_SYSCONFDIR=$P/etc"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_btl=self,vader
    OMPI_MCA_oob_tcp_if_include=lo NCCL_SOCKET_IFNAME=lo NCCL_DEBUG=WARN GTEST_COLOR=no)
  mpirun=("$P/bin/mpirun" --oversubscribe --bind-to none)
}

# unresolved FILE...: the libraries ldd cannot resolve (or whose version is too old) under dv's
# environment, one per line.
unresolved() {
  local f
  for f in "$@"; do "${dv[@]}" ldd "$f" 2>&1; done |
    awk '/not found/ {sub(/^[ \t]+/, ""); print}' | sort -u
}

# ---- the ELBO comparison and the summary (Python, standard library only) ----
compare_elbo() {  # model: reads runs/<model>-{cuda,dnnl}/metrics.jsonl
  python3 - "$work/runs/$1-cuda/metrics.jsonl" "$work/runs/$1-dnnl/metrics.jsonl" \
    "$work/elbo_$1.tsv" <<'PY'
import json, sys
def curve(path):
    c = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "step" in r and r.get("elbo") is not None:
                c[int(r["step"])] = float(r["elbo"])
    return c
cu, dn = curve(sys.argv[1]), curve(sys.argv[2])
steps = sorted(set(cu) & set(dn))
with open(sys.argv[3], "w") as f:
    f.write("step\telbo_cuda\telbo_dnnl\trel_diff\n")
    for s in steps:
        f.write(f"{s}\t{cu[s]:.6f}\t{dn[s]:.6f}\t{abs(cu[s] - dn[s]) / abs(dn[s]):.3e}\n")
if len(steps) < 200 or steps[:10] != list(range(1, 11)):
    print(f"per-step records: cuda {len(cu)}, dnnl {len(dn)}, common {len(steps)}: expected 200")
    sys.exit(1)
rel = lambda s: abs(cu[s] - dn[s]) / abs(dn[s])
first10 = max(rel(s) for s in range(1, 11))
last = steps[-1]
gap = rel(last)
mc = sum(cu[s] for s in steps[-10:]) / 10
md = sum(dn[s] for s in steps[-10:]) / 10
gap10 = abs(mc - md) / abs(md)
ok = first10 <= 1e-4 and gap10 <= 0.02
print(f"first 10 steps: max |cuda - dnnl| / |dnnl| = {first10:.2e} (step 1: cuda {cu[1]:.4f}, "
      f"dnnl {dn[1]:.4f})")
print(f"after {last} steps: cuda {cu[last]:.4f}, dnnl {dn[last]:.4f}, relative gap {gap:.2e}; "
      f"mean of steps {steps[-10]}-{last}: cuda {mc:.4f}, dnnl {md:.4f}, gap {gap10:.2e}")
print(f"RESULT first10={first10:.2e} gap{last}={gap:.2e} gap_last10={gap10:.2e} "
      f"(pass: first10 <= 1e-4 and gap_last10 <= 2e-2) {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 2)
PY
}

images_per_s() {  # log file -> images/s from distvae bench's result line or torch_peer's output
  awk '/^result: / {for (i = 2; i <= NF; i++) {split($i, kv, "="); if (kv[1] == "images_per_s") v = kv[2]}}
       /^images\/s:/ {v = $2} END {print v}' "$1" 2>/dev/null
}

unpack() {  # TARBALL DIR, with xz or, where there is none, Python's lzma
  if command -v xz >/dev/null; then
    tar -C "$2" -xJf "$1"
  else
    python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1], "r:xz")
t.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' "$1" "$2"
  fi
}

main() {
  mkdir -p "$OUT"
  echo "run.sh: bundle $bundle, work $work, OUT $OUT, budget $budget s, $(date -u +%FT%TZ)"
  echo "machine: $(uname -srm), $(nproc) CPUs, $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')," \
    "$(ldd --version 2>&1 | sed -n 1p)"
  rm -rf "$work"
  mkdir -p "$work" "$logs"

  banner "unpack"
  local t=$SECONDS
  mkdir -p "$P"
  if ! unpack "$bundle/payload.tar.xz" "$P"; then
    record unpack FAIL $((SECONDS - t)) "tar -xJf $bundle/payload.tar.xz failed"
    finish
    return
  fi
  record unpack PASS $((SECONDS - t)) "$(du -sh "$P" | cut -f1) in $P"
  cat "$P/BUILD_INFO"

  banner "libraries"
  echo "CUDA libraries (this machine's):"
  find_cuda_libs
  use_fallback=0
  set_env
  # The bundled libstdc++ / libgcc_s only where this machine's are older than the build's.
  if unresolved "$P/bin/distvae" "$P/bin/cuda_tests" | grep -qE "GLIBCXX|CXXABI|GCC_|libstdc|libgcc_s"; then
    use_fallback=1
    set_env
    echo "this machine's libstdc++/libgcc_s are older than the build's: using the bundled ones"
  fi
  echo "LD_LIBRARY_PATH for distvae, cuda_tests and mpirun: $libpath"
  local bad
  bad=$(unresolved "$P"/bin/{distvae,cuda_tests,orterun,orted} "$P"/lib/*.so* "$P"/lib/openmpi3/*.so)
  if [[ -z $bad ]]; then
    record libraries PASS 0 "ldd resolves every library of bin/, lib/ and the MPI plugins"
  else
    echo "unresolved:"
    echo "$bad"
    record libraries FAIL 0 "$(echo "$bad" | wc -l) unresolved (listed above): $(echo "$bad" | sed -n 1,3p | tr '\n' ' ')"
  fi
  ((${#missing_cuda[@]})) && echo "missing CUDA libraries: ${missing_cuda[*]}"

  banner "nvidia-smi"
  gpus=0 gpu_why="nvidia-smi not found"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi 2>&1 | tee "$logs/nvidia-smi.log"
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
    gpu_why="nvidia-smi lists no GPU"
  fi
  echo "GPUs: $gpus$( ((gpus == 0)) && echo " ($gpu_why): every part that needs one is skipped")"
  cd "$P" || return
  # The cuda_tests binary reads core/backend.h under the source folder it was built from.
  local src
  src=$(sed -n 's/^source_dir=//p' BUILD_INFO)
  if [[ ! -r $src/core/backend.h ]]; then
    mkdir -p "$src/core" 2>/dev/null && cp core/backend.h "$src/core/" 2>/dev/null &&
      echo "placed core/backend.h under $src (the build's source folder) for BackendPrimitives"
  fi

  TAIL=20 part version 30 "${dv[@]}" bin/distvae --version &&
    verdict version "$(head -1 "$logs/version.log")"

  # Without a GPU, backend: cuda must stop at once with the reason.
  if ((gpus == 0)) && part cuda_refusal 30 "${dv[@]}" bin/distvae bench configs/fmnist_vae_mlp.yaml \
    --set train.backend=cuda --steps 1 --warmup 0; then
    if ((rc != 0)) && grep -q "no CUDA device" "$logs/cuda_refusal.log"; then
      record cuda_refusal PASS "$part_s" "backend: cuda stops (exit $rc): $(grep -m1 -o 'no CUDA device[^(]*' "$logs/cuda_refusal.log")"
    else
      record cuda_refusal FAIL "$part_s" "exit $rc without 'no CUDA device'"
    fi
  fi

  # ---- tests ----
  local filter
  filter=$(sed -n 's/^cuda_test_filter=//p' BUILD_INFO)
  if part cuda_tests 240 "${dv[@]}" OMP_NUM_THREADS=1 bin/cuda_tests --gtest_filter="$filter" \
    --gtest_output=xml:"$logs/cuda_tests.xml"; then
    local counts
    counts=$(awk '/^\[  PASSED  \]/ {p = $4} /^\[  SKIPPED \] [0-9]+ test/ {s = $4}
                  /^\[  FAILED  \] [0-9]+ test/ {f = $4}
                  END {printf "%d passed, %d skipped, %d failed", p, s, f}' "$logs/cuda_tests.log")
    if ((gpus == 0)); then counts+="; GPU tests skipped: $(grep -m1 -o 'no CUDA device.*)' "$logs/cuda_tests.log")"; fi
    verdict cuda_tests "$counts" "$counts"
  fi
  # Two ranks through the bundled mpirun on the CPU backend: Open MPI itself works here.
  part mpi_np2_dnnl 60 "${dv[@]}" OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 bin/distvae bench \
    configs/fmnist_vae_mlp.yaml --steps 5 --warmup 1 --threads 1 && verdict mpi_np2_dnnl "2 ranks"
  # The NCCL tests at 2 ranks need 2 GPUs: NCCL refuses two ranks on one GPU.
  if ((gpus == 1)); then
    if part nccl_np2 90 "${dv[@]}" OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 bin/cuda_tests \
      --gtest_filter='Nccl*'; then
      if ((rc != 0)) && grep -qiE "duplicate gpu|ncclInvalidUsage|invalid usage" "$logs/nccl_np2.log"; then
        record nccl_np2 N/A "$part_s" "NCCL refuses 2 ranks on 1 GPU (needs 2 GPUs); the 1-rank NCCL tests ran in cuda_tests"
      else
        verdict nccl_np2 "2 ranks on 1 GPU"
      fi
    fi
  elif part nccl_np2 90 "${dv[@]}" OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 bin/cuda_tests --gtest_filter='Nccl*'; then
    verdict nccl_np2 "$( ((gpus == 0)) && echo "no CUDA device: the NCCL tests skipped, 2 ranks started" || echo "$gpus GPUs")"
  fi

  # ---- training: 200 steps on cuda and on dnnl, same seed, data and noise ----
  local m b
  local -a train_set=(--set train.log_every=1 --set train.epochs=4 --set data.max_images=6400
    --set train.seed=1 --set train.checkpoint_every=4 --set data.test=)
  for m in mlp conv; do
    for b in dnnl cuda; do
      [[ $b == cuda ]] && { need_gpu "train_${m}_$b" || continue; }
      part "train_${m}_$b" 150 "${dv[@]}" bin/distvae train "configs/fmnist_vae_$m.yaml" \
        --run-dir "$work/runs/$m-$b" "${train_set[@]}" --set train.backend=$b --log-every 5 &&
        verdict "train_${m}_$b" "200 steps"
    done
    if [[ -s $work/runs/$m-cuda/metrics.jsonl && -s $work/runs/$m-dnnl/metrics.jsonl ]]; then
      banner "elbo_$m: per-step ELBO, cuda against dnnl"
      local t2=$SECONDS
      compare_elbo "$m" | tee "$logs/elbo_$m.log"
      rc=${PIPESTATUS[0]} part_s=$((SECONDS - t2))
      verdict "elbo_$m" "$(sed -n 's/^RESULT //p' "$logs/elbo_$m.log" | sed 's/ (pass:.*//')"
    elif ((gpus == 0)); then
      record "elbo_$m" SKIP 0 "no CUDA device: no cuda curve to compare"
    elif [[ -n ${PARTS:-} && ! ( train_${m}_cuda =~ $PARTS && train_${m}_dnnl =~ $PARTS ) ]]; then
      record "elbo_$m" SKIP 0 "both training runs are not in PARTS=$PARTS"
    else
      record "elbo_$m" FAIL 0 "nothing to compare: a training run failed"
    fi
  done

  # ---- throughput: distvae bench on cuda (and dnnl for reference), PyTorch on the GPU ----
  local -a cases=("mlp 128 vae_mlp" "mlp 1024 vae_mlp" "conv 128 vae_conv")
  local c batch tm steps
  for c in "${cases[@]}"; do
    read -r m batch tm <<<"$c"
    steps=500
    [[ $m == conv ]] && steps=200
    if need_gpu "bench_cuda_${m}_$batch"; then
      part "bench_cuda_${m}_$batch" 90 "${dv[@]}" bin/distvae bench "configs/fmnist_vae_$m.yaml" \
        --set train.backend=cuda --set train.batch="$batch" --steps $steps --warmup 50 &&
        verdict "bench_cuda_${m}_$batch" "$(images_per_s "$logs/bench_cuda_${m}_$batch.log") images/s"
    fi
    part "bench_dnnl_${m}_$batch" 60 "${dv[@]}" bin/distvae bench "configs/fmnist_vae_$m.yaml" \
      --set train.batch="$batch" --steps 30 --warmup 5 &&
      verdict "bench_dnnl_${m}_$batch" "$(images_per_s "$logs/bench_dnnl_${m}_$batch.log") images/s, $(nproc) threads"
  done
  local torch_ok=0 torch_why py=${PYTHON:-python3} tdev=${TORCH_DEVICE:-cuda}
  torch_why=$("$py" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "no-cuda")' 2>&1 | tail -1)
  [[ $torch_why == *" cuda" || ($tdev == cpu && $torch_why == *" no-cuda") ]] && torch_ok=1
  echo "$py: $(command -v "$py"); torch: $torch_why; torch_peer.py --device $tdev"
  ((torch_ok)) && [[ $tdev == cuda ]] && "$py" -c 'import torch
print(f"torch {torch.__version__}: CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"NCCL {torch.cuda.nccl.version()}, {torch.cuda.get_device_name(0)}")' 2>&1 | tee "$logs/torch_env.log"
  local mode
  for mode in eager compile; do
    for c in "${cases[@]}"; do
      read -r m batch tm <<<"$c"
      steps=500
      [[ $m == conv ]] && steps=200
      local name="torch_${mode}_${m}_$batch"
      if ((torch_ok == 0)); then
        record "$name" SKIP 0 "no PyTorch with CUDA here ($py: $torch_why)"
        continue
      fi
      local -a extra=()
      [[ $mode == compile ]] && extra=(--compile)
      part "$name" "$([[ $mode == compile ]] && echo 150 || echo 90)" env PYTHONUNBUFFERED=1 \
        "$py" torch_peer.py --device "$tdev" --model "$tm" --batch "$batch" --steps $steps \
        --warmup 50 "${extra[@]}" && verdict "$name" "$(images_per_s "$logs/$name.log") images/s"
    done
  done
  finish
}

# ---- the summary, and what comes back in $OUT ----
finish() {
  banner "summary"
  local i failed=0
  for i in "${!names[@]}"; do [[ ${statuses[i]} == FAIL ]] && failed=$((failed + 1)); done
  {
    echo "distvae on a GPU machine: tests/gpu/run.sh, $(date -u +%FT%TZ), $SECONDS s"
    [[ -r $P/BUILD_INFO ]] && sed 's/^/  /' "$P/BUILD_INFO"
    echo "  machine: $(nproc) CPUs; GPUs: ${gpus:-?}$( ((${gpus:-0} > 0)) && echo ": $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed -n 1p)")"
    echo
    printf '%-22s %-5s %6s  %s\n' part status seconds note
    for i in "${!names[@]}"; do
      printf '%-22s %-5s %6s  %s\n' "${names[i]}" "${statuses[i]}" "${seconds[i]}" "${notes[i]}"
    done
    echo
    local m
    for m in mlp conv; do
      [[ -s $logs/elbo_$m.log ]] && { echo "ELBO, $m VAE, cuda vs dnnl:"; sed 's/^/  /' "$logs/elbo_$m.log"; }
    done
    echo
    echo "throughput, images/s (distvae bench and torch_peer.py on this machine's GPU; dnnl on its $(nproc) cores)"
    printf '%-14s %12s %12s %12s %12s %10s %10s\n' model "distvae cuda" "torch eager" "torch comp." \
      "distvae dnnl" "cuda/eager" "cuda/comp."
    local c batch a e k d
    for c in "mlp 128" "mlp 1024" "conv 128"; do
      read -r m batch <<<"$c"
      a=$(images_per_s "$logs/bench_cuda_${m}_$batch.log")
      e=$(images_per_s "$logs/torch_eager_${m}_$batch.log")
      k=$(images_per_s "$logs/torch_compile_${m}_$batch.log")
      d=$(images_per_s "$logs/bench_dnnl_${m}_$batch.log")
      printf '%-14s %12s %12s %12s %12s %10s %10s\n' "vae_$m b$batch" "${a:--}" "${e:--}" "${k:--}" \
        "${d:--}" "$(ratio "$a" "$e")" "$(ratio "$a" "$k")"
    done
    echo
    echo "$failed part(s) failed; SKIP: not possible here (reason given); N/A: not possible on one GPU"
  } | tee "$OUT/summary.txt"
  for m in mlp conv; do
    [[ -s $work/elbo_$m.tsv ]] && sed "s/^/$m\t/" "$work/elbo_$m.tsv"
  done | awk 'NR == 1 || !/\tstep\t/' >"$OUT/elbo_curves.tsv"
  [[ -s $OUT/elbo_curves.tsv ]] || rm -f "$OUT/elbo_curves.tsv"
  # The runs' metrics and reports, every log and the gtest XML (checkpoints stay behind).
  (cd "$work" && tar -czf "$OUT/results.tar.gz" --exclude='checkpoints' logs runs elbo_*.tsv 2>/dev/null)
  echo "run.sh: $SECONDS s; in $OUT: $(find "$OUT" -maxdepth 1 -type f -printf '%f ')"
  return $((failed > 0))
}
ratio() { [[ -n $1 && -n $2 ]] && python3 -c "print(f'{$1 / $2:.2f}')" 2>/dev/null || echo -; }

mkdir -p "$OUT"
main 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
