#!/usr/bin/env bash
# The test command: install dependencies, build, run every test (unit, e2e, mpi) and fail if one
# skipped that should have run here (tests/check_skips.py), then build the unit tests with
# address+undefined sanitizers and run them, the CUDA configuration where a CUDA toolkit exists,
# the loader test with thread sanitizer, and the libFuzzer targets (clang) for a bounded time
# each. Each extra build compiles only the targets it runs. Prints the time of each stage.
# DISTVAE_CUDA_ROOT: the CUDA toolkit to check (default /usr/local/cuda, else nvcc on PATH).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t_all=$SECONDS t_stage=$SECONDS
stage() {
  echo
  echo "=== $1 ($(( SECONDS - t_all )) s elapsed; the previous stage took $(( SECONDS - t_stage )) s)"
  t_stage=$SECONDS
}

stage "setup"
bash launch/setup.sh

stage "build (RelWithDebInfo)"
BUILD_DIR="$root/build" bash launch/build.sh

stage "tests: unit, e2e and mpi"
(cd build && ctest --output-on-failure -j2 --timeout 900 --output-junit ctest-junit.xml)
# Every skip, with its reason; fails when one should not have happened on this machine.
python3 tests/check_skips.py build/ctest-junit.xml

stage "sanitizer build (address,undefined): unit test binaries and the MPI test binary"
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DDISTVAE_SANITIZE=address,undefined -DDISTVAE_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-asan" -j"$(nproc)" --target core_tests io_tests launch_tests dist_tests

stage "tests under sanitizers"
# Leak checking stays on; UBSan findings abort (-fno-sanitize-recover=all).
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
# The statistical fits (a discriminator trained for thousands of steps, a million-draw Monte Carlo
# reference) run in the optimized build above; at -O0 they would take most of the CI budget and
# exercise no code the other tests do not.
slow_fits="-DensityRatio.*:Ais.NonlinearTwoDimensionsAgreesWithPlainMonteCarlo"
for t in core_tests io_tests launch_tests; do
  echo "--- $t"
  filter=()
  [[ $t == core_tests ]] && filter=(--gtest_filter="$slow_fits")
  (cd "$root/build-asan/tests" && ./$t --gtest_brief=1 "${filter[@]}")
done

# The MPI tests (the shared-memory all-reduce among them) at 2 ranks, and at 4 as two emulated
# nodes. Leak checking is off here only: Open MPI leaves its own allocations behind at
# MPI_Finalize, many from components it has already unloaded, which no suppression can name.
dist_asan() {  # RANKS [VAR=VALUE]: the MPI test binary under mpirun, the variable passed on
  echo "--- dist_tests, $1 ranks ${2:-}"
  (cd "$root/build-asan/tests" &&
    env ${2:+"$2"} ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 OMP_NUM_THREADS=1 \
      mpirun --allow-run-as-root --oversubscribe -np "$1" -x ASAN_OPTIONS -x UBSAN_OPTIONS \
      -x OMP_NUM_THREADS ${2:+-x "${2%%=*}"} ./dist_tests --gtest_brief=1)
}
dist_asan 2
dist_asan 4 DISTVAE_RANKS_PER_NODE=2

stage "CUDA build (-DDISTVAE_CUDA=ON): the GPU test binary and the distvae command"
# Where a CUDA toolkit exists (nvcc, cuBLASLt, cuDNN and NCCL), this proves the CUDA configuration
# (sm_80 and sm_90) compiles and links without a warning, and that every GPU test runs, or
# reports "skipped: no CUDA device" instead of passing silently. A plain Debian machine has no
# CUDA toolkit: then one line says so and the rest still runs.
cuda_check() {  # CUDA_ROOT: build the CUDA configuration, run the GPU tests
  cmake -S "$root" -B "$root/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDISTVAE_CUDA=ON -DDISTVAE_CUDA_ROOT="$1" -DDISTVAE_BUILD_BENCH=OFF >/dev/null
  local log="$root/build-cuda/build.log" out="$root/build-cuda/ctest.log"
  cmake --build "$root/build-cuda" -j"$(nproc)" --target cuda_tests distvae 2>&1 | tee "$log"
  if grep -iE "warning[: #]" "$log" >/dev/null; then
    echo "the CUDA build printed warnings (above); it must be warning-free" >&2
    exit 1
  fi

  stage "CUDA tests (skip without a GPU)"
  if ! (cd "$root/build-cuda" && ctest -L cuda -V --timeout 600) >"$out" 2>&1; then
    cat "$out"
    exit 1
  fi
  # Each GPU test's verdict (np1: every GPU test; np2: the NCCL ones on two ranks), the skip
  # reason, and ctest's summary.
  grep -E "^[0-9]+: \[ +(OK|SKIPPED|FAILED) +\] .* \([0-9]+ ms\)$" "$out" |
    sed -E "s/^[0-9]+: //; s/ \([0-9]+ ms\)$//"
  grep -m1 -o "skipped: no CUDA device.*" "$out" || echo "(a CUDA device is present: nothing skipped)"
  grep -E "tests passed|tests failed" "$out"
}
cuda_root=${DISTVAE_CUDA_ROOT:-/usr/local/cuda}
if [[ -z ${DISTVAE_CUDA_ROOT:-} && ! -x $cuda_root/bin/nvcc ]] && command -v nvcc >/dev/null; then
  cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
fi
if [[ -x $cuda_root/bin/nvcc ]]; then
  cuda_check "$cuda_root"
else
  if [[ -n ${DISTVAE_CUDA_ROOT:-} ]]; then
    why="DISTVAE_CUDA_ROOT=$cuda_root has no bin/nvcc"
  else
    why="no $cuda_root/bin/nvcc, no nvcc on PATH; set DISTVAE_CUDA_ROOT to check one"
  fi
  echo "CUDA configuration not checked: no CUDA toolkit here ($why)"
fi

stage "thread sanitizer build: the loader test only"
# oneDNN's OpenMP runtime is not TSan-instrumented and floods it with false reports, so only the
# loader (the one multi-threaded part of io/, which needs no oneDNN) runs under TSan.
cmake -S "$root" -B "$root/build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DDISTVAE_SANITIZE=thread -DDISTVAE_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-tsan" -j"$(nproc)" --target loader_tests

stage "loader test under thread sanitizer (10 repetitions)"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  "$root/build-tsan/tests/loader_tests" --gtest_brief=1 --gtest_repeat=10

stage "fuzz build (clang, libFuzzer + address,undefined): the three fuzz targets only"
cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DDISTVAE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$root/build-fuzz" -j"$(nproc)"

stage "fuzzing: ${DISTVAE_FUZZ_SECONDS:-60} s per target (config, idx, png)"
bash tests/fuzz/run.sh "$root/build-fuzz" "${DISTVAE_FUZZ_SECONDS:-60}"

stage "all tests passed"
