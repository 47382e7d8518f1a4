#!/usr/bin/env bash
# The test command: install dependencies, build, run every test (unit, e2e), then build the unit
# tests with address+undefined sanitizers and run them. Prints the time of each stage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t_all=$SECONDS
stage() { echo; echo "=== $1 ($(( SECONDS - t_all )) s elapsed)"; }

stage "setup"
bash launch/setup.sh

stage "build (RelWithDebInfo)"
BUILD_DIR="$root/build" bash launch/build.sh

stage "tests: unit and e2e"
(cd build && ctest --output-on-failure -j2 --timeout 900)

stage "sanitizer build (address,undefined): unit test binaries only"
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DDISTVAE_SANITIZE=address,undefined -DDISTVAE_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-asan" -j"$(nproc)" --target core_tests io_tests launch_tests

stage "tests under sanitizers"
# Leak checking stays on; UBSan findings abort (-fno-sanitize-recover=all).
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
for t in core_tests io_tests launch_tests; do
  echo "--- $t"
  (cd "$root/build-asan/tests" && ./$t --gtest_brief=1)
done

stage "all tests passed"
