#!/usr/bin/env bash
# Training throughput and exposed communication, read from metrics.jsonl of short real runs:
#   1 rank x 1 thread, 2 ranks x 1 thread (per-rank batch 128), overlap on and off, and overlap
#   off with the gradients reduced by MPI_Allreduce instead of node shared memory.
# Runs are interleaved (A B A B ...) REPEATS times (default 3) and medians are printed.
#   bench/scaling.sh [CONFIG] [EPOCHS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
config=${1:-configs/fmnist_vae_mlp.yaml}
epochs=${2:-2}
repeats=${REPEATS:-3}
distvae=build/launch/distvae
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as_root=()
[[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
common=(--quiet --set train.epochs="$epochs" --set train.threads=1 --set train.checkpoint_every=1000
        --set data.validation= --set train.log_every=50)

# Median over the steady-state records (the first record of the run is skipped) of a field.
field() { python3 - "$1" "$2" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l]
vals = [r[sys.argv[2]] for r in rows[1:] if r.get(sys.argv[2]) is not None]
print(statistics.median(vals))
PY
}

declare -A results
for r in $(seq "$repeats"); do
  for variant in np1 np2 np2_nooverlap np2_mpi; do
    dir=$tmp/$variant-$r
    case $variant in
      np1) $distvae train "$config" --run-dir "$dir" "${common[@]}" ;;
      np2) mpirun "${as_root[@]}" -np 2 --bind-to core $distvae train "$config" --run-dir "$dir" \
              "${common[@]}" --set train.overlap=true ;;
      np2_nooverlap) mpirun "${as_root[@]}" -np 2 --bind-to core $distvae train "$config" --run-dir "$dir" \
                        "${common[@]}" --set train.overlap=false ;;
      np2_mpi) mpirun "${as_root[@]}" -np 2 --bind-to core $distvae train "$config" --run-dir "$dir" \
                  "${common[@]}" --set train.overlap=false --set train.shm_allreduce=false ;;
    esac
    results[$variant]+="$(field "$dir/metrics.jsonl" images_per_s) "
    results[${variant}_comm]+="$(field "$dir/metrics.jsonl" comm_exposed_ms) "
  done
done
med() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" $1; }
a=$(med "${results[np1]}"); b=$(med "${results[np2]}"); c=$(med "${results[np2_nooverlap]}")
m=$(med "${results[np2_mpi]}")
printf "config %s, %s epochs, %s repeats (medians)\n" "$config" "$epochs" "$repeats"
printf "1 rank  x 1 thread:                      %8.0f images/s\n" "$a"
printf "2 ranks x 1 thread, overlap on:          %8.0f images/s  (%.2fx)  exposed comm %.3f ms/step\n" \
  "$b" "$(python3 -c "print($b/$a)")" "$(med "${results[np2_comm]}")"
printf "2 ranks x 1 thread, overlap off:         %8.0f images/s  (%.2fx)  exposed comm %.3f ms/step\n" \
  "$c" "$(python3 -c "print($c/$a)")" "$(med "${results[np2_nooverlap_comm]}")"
printf "2 ranks x 1 thread, off, MPI_Allreduce:  %8.0f images/s  (%.2fx)  exposed comm %.3f ms/step\n" \
  "$m" "$(python3 -c "print($m/$a)")" "$(med "${results[np2_mpi_comm]}")"
