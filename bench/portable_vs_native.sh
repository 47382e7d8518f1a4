#!/usr/bin/env bash
# What the portable default build costs: `distvae bench` of the portable build (BUILD, default
# build/: the x86-64 baseline, hot loops dispatched at load time, core/backends/isa_clones.h) against a
# -DDISTVAE_NATIVE=ON build of the same tree (NATIVE, default build-native/, configured and built
# here when missing: the distvae target only), interleaved portable, native, portable, ... REPEATS
# times per (config, threads). Prints the CPU, the ISA each build dispatches to, the medians of
# images/s with their spread, and portable / native.
#
#   bench/portable_vs_native.sh                          # MLP and conv VAE, 1 and 2 threads
#   REPEATS=9 THREADS="1" CONFIGS="fmnist_vae_mlp" bench/portable_vs_native.sh
# Any two builds compare the same way (the second must exist then), e.g. before and after a change:
#   NATIVE=../old/build LABELS="after before" bench/portable_vs_native.sh
# Environment: BUILD, NATIVE, REPEATS (5), THREADS ("1 2"), CONFIGS ("fmnist_vae_mlp
# fmnist_vae_conv"), STEPS (timed steps per run, default 300), LABELS (the two builds' names in
# the table, default "portable native").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
native=${NATIVE:-build-native}
repeats=${REPEATS:-5}
threads_list=${THREADS:-1 2}
configs=${CONFIGS:-fmnist_vae_mlp fmnist_vae_conv}
steps=${STEPS:-300}
read -r label_a label_b <<<"${LABELS:-portable native}"

[[ -x $build/launch/distvae ]] || { echo "portable_vs_native.sh: $build/launch/distvae not built" >&2; exit 1; }
if [[ ! -x $native/launch/distvae ]]; then
  echo "portable_vs_native.sh: building the native comparison in $native (distvae target only)" >&2
  cmake -S "$root" -B "$native" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDISTVAE_NATIVE=ON \
    -DDISTVAE_BUILD_TESTS=OFF -DDISTVAE_BUILD_BENCH=OFF >/dev/null
  cmake --build "$native" -j"$(nproc)" --target distvae >/dev/null
fi

images_per_s() {  # BINARY CONFIG THREADS
  "$1" bench "configs/$2.yaml" --threads "$3" --steps "$steps" 2>&1 |
    sed -n 's/^result: images_per_s=\([0-9.]*\).*/\1/p'
}
median_spread() {  # values... -> "median (min-max)"
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
    m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%.0f (%.0f-%.0f)", m, v[1], v[NR] }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "CPU: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
for b in "$build" "$native"; do
  echo "$b: $("$b/launch/distvae" --version | grep -E '^(cpu|build)' | paste -sd ';' | sed 's/;/; /g')"
done
printf '\n%-16s %7s  %-26s %-26s %s\n' config threads "$label_a images/s" "$label_b images/s" \
  "$label_a/$label_b"
for config in $configs; do
  for t in $threads_list; do
    p=() n=()
    for _ in $(seq "$repeats"); do
      p+=("$(images_per_s "$build/launch/distvae" "$config" "$t")")
      n+=("$(images_per_s "$native/launch/distvae" "$config" "$t")")
    done
    ratio=$(awk -v a="$(median "${p[@]}")" -v b="$(median "${n[@]}")" 'BEGIN {printf "%.3f", a / b}')
    printf '%-16s %7s  %-26s %-26s %s\n' "$config" "$t" "$(median_spread "${p[@]}")" \
      "$(median_spread "${n[@]}")" "$ratio"
  done
done
echo "(medians of $repeats interleaved runs of $steps timed steps each; spread in brackets)"
