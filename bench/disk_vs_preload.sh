#!/usr/bin/env bash
# Training images/s reading HDF5 from disk (preload off, files evicted from the page cache before
# each run, so every chunk comes from the device) against the preloaded dataset, interleaved
# REPEATS times (default 3), medians of the steady-state records of one-epoch runs.
# RANKS=2 runs 2 ranks x 1 thread under mpirun (each rank streams its own chunks; its loader
# thread shares the rank's core) instead of one process with the config's threads. EXTRA adds
# --set options to every run (e.g. EXTRA="--set data.decode_on=loader").
#   bench/disk_vs_preload.sh [CONFIG] [DATA-GLOB]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
config=${1:-configs/fmnist_vae_mlp.yaml}
glob=${2:-data/fmnist-train-*.h5}
repeats=${REPEATS:-3}
ranks=${RANKS:-1}
launch=(build/launch/distvae)
extra=(${EXTRA:-})
if ((ranks > 1)); then
  as_root=()
  [[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
  launch=(mpirun "${as_root[@]}" -np "$ranks" --bind-to core build/launch/distvae)
  extra+=(--set train.threads=1)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
evict() { python3 -c "
import glob, os, sys
for f in glob.glob(sys.argv[1]):
    fd = os.open(f, os.O_RDONLY); os.fdatasync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
" "$glob"; }
field() { python3 - "$1" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l]
print(*(statistics.median([r.get(k, 0) for r in rows[1:]]) for k in ("images_per_s", "data_wait_ms", "data_decode_ms")))
PY
}
disk=() pre=() wait_disk=() decode_disk=() decode_pre=()
for r in $(seq "$repeats"); do
  for mode in off on; do
    evict
    "${launch[@]}" train "$config" --run-dir "$tmp/$mode$r" --quiet --set train.epochs=1 "${extra[@]}" \
      --set data.preload=$mode --set data.train="$glob" --set data.validation= --set train.log_every=25 \
      --set train.checkpoint_every=1000
    read -r ips waitms decodems < <(field "$tmp/$mode$r/metrics.jsonl")
    if [[ $mode == off ]]; then
      disk+=("$ips") wait_disk+=("$waitms") decode_disk+=("$decodems")
    else
      pre+=("$ips") decode_pre+=("$decodems")
    fi
  done
done
python3 - "${disk[*]}" "${pre[*]}" "${wait_disk[*]}" "${decode_disk[*]}" "${decode_pre[*]}" "$ranks" <<'PY'
import statistics, sys
d, p, w, dd, dp = (statistics.median(map(float, a.split())) for a in sys.argv[1:6])
print(f"{sys.argv[6]} rank(s): from disk (evicted): {d:.0f} images/s   preloaded: {p:.0f} images/s   ratio {100*d/p:.1f}%   "
      f"data wait from disk {w:.3f} ms/step   decoding on the compute threads {dd:.3f} ms/step from disk, "
      f"{dp:.3f} preloaded")
PY
