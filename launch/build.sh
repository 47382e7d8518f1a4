#!/usr/bin/env bash
# Configures and builds distvae into $BUILD_DIR (default build/). Extra arguments go to cmake's
# configure step; TARGETS (e.g. "distvae") limits what is built (default: everything, tests and
# benches included).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
# shellcheck disable=SC2086 # TARGETS is a list of words
cmake --build "$build" -j"$(nproc)" ${TARGETS:+--target $TARGETS}
