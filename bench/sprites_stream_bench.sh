#!/usr/bin/env bash
# Large-data benchmarks on the 64x64 sprites (issue 8), all in one script:
#   1. loader alone, full dataset (737,280 images, 3 GB decoded, gzip shards): streamed with 1 and
#      2 decompression threads (files evicted from the page cache before each run) and preloaded;
#      images/s, MB/s decoded, MB/s read as stored, peak RSS per rank;
#   2. memory at two dataset sizes: the loader streaming 40,960 images vs all 737,280, and
#      training (configs/sprites_vae_conv.yaml) streaming 4,096 vs all, stopped by SIGTERM after
#      TRAIN_SECONDS (the trainer checkpoints and exits 75, as under SLURM preemption);
#   3. training images/s on configs/sprites_vae_conv.yaml from the gzip shards on disk (evicted
#      before each run) vs preloaded, IMAGES images per one-epoch run, REPEATS interleaved runs,
#      medians of the steady-state log records (the first record, with start-up and the preload
#      read, is dropped).
# Usage: bench/sprites_stream_bench.sh [DATA_DIR]   (default data; converted there if missing)
# Environment: BUILD (default build), REPEATS (3), IMAGES (2048), TRAIN_SECONDS (90), STAGES
# (default "1 2 3"). Runs are short and interleaved because a shared machine's noise is large:
# quote medians, and the spread this prints.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
data=${1:-data}
repeats=${REPEATS:-3}
images=${IMAGES:-2048}
train_seconds=${TRAIN_SECONDS:-90}
stages=${STAGES:-1 2 3}
distvae=$build/launch/distvae
bench=$build/bench/loader_stream_bench
config=$root/configs/sprites_vae_conv.yaml
glob="$data/sprites-train-*.h5"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! compgen -G "$glob" > /dev/null; then
  echo "converting the sprites into $data ..."
  "$distvae" convert procedural --kind sprites --out "$data" --val 7280 -j 2 --quiet | tail -1
fi
evict() {
  python3 - "$data" <<'PY'
import glob, os, sys
for f in glob.glob(os.path.join(sys.argv[1], "sprites-*.h5")):
    fd = os.open(f, os.O_RDONLY); os.fdatasync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
PY
}
median() { python3 -c "import statistics, sys; v = [float(x) for x in sys.argv[1:]]; print(f'{statistics.median(v):.1f} (min {min(v):.1f}, max {max(v):.1f}, n={len(v)})')" "$@"; }
field() { sed -n "s/.* = \([0-9.]*\) images\/s, \([0-9.]*\) MB\/s decoded, \([0-9.]*\) MB\/s read.*peak RSS \([0-9.]*\) MB/\\$1/p"; }

if [[ " $stages " == *" 1 "* ]]; then
  echo "== 1. loader alone, all images, batch 64, $repeats interleaved repeats"
  declare -A ips mbs rss
  for r in $(seq "$repeats"); do
    for mode in t1 t2 pre; do
      case $mode in t1) args=(--threads 1) ;; t2) args=(--threads 2) ;; pre) args=(--preload) ;; esac
      line=$("$bench" "$glob" "${args[@]}")
      echo "   $line"
      ips[$mode]+=" $(echo "$line" | field 1)"; mbs[$mode]+=" $(echo "$line" | field 2)"
      rss[$mode]+=" $(echo "$line" | field 4)"
    done
  done
  for mode in t1 t2 pre; do
    echo "   $mode: images/s $(median ${ips[$mode]}); MB/s decoded $(median ${mbs[$mode]}); peak RSS MB $(median ${rss[$mode]})"
  done
fi

if [[ " $stages " == *" 2 "* ]]; then
  echo "== 2. peak memory per rank at two dataset sizes (streamed)"
  for n in 40960 0; do
    line=$("$bench" "$glob" --max-images $n --steps 600)
    echo "   loader, max_images $n (0: all): $(echo "$line" | sed 's/.*peak RSS/peak RSS/')"
  done
  for n in 4096 0; do
    set +e
    /usr/bin/time -f "%M" -o "$tmp/rss" timeout -s TERM "$train_seconds" "$distvae" train "$config" \
      --run-dir "$tmp/mem$n" --quiet --set data.train="$glob" --set data.validation= \
      --set data.preload=off --set data.max_images=$n --set train.epochs=1 \
      --set train.checkpoint_minutes=0 > /dev/null 2>&1
    set -e
    echo "   training, max_images $n (0: all), stopped after ${train_seconds} s: peak RSS $(( $(tail -1 "$tmp/rss") / 1024 )) MB"
  done
fi

if [[ " $stages " == *" 3 "* ]]; then
  [[ -x /usr/bin/time ]] || { echo "stage 3 needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
  echo "== 3. training images/s, $images images per run, disk (evicted) vs preloaded, $repeats interleaved repeats"
  disk=() pre=() wait_disk=() wait_pre=() cpu_disk=() cpu_pre=()
  for r in $(seq "$repeats"); do
    order="off on"
    (( r % 2 == 0 )) && order="on off"  # ABBA: a drift in the machine's load favours neither
    for mode in $order; do
      evict
      /usr/bin/time -f "%U %S" -o "$tmp/cpu" \
        "$distvae" train "$config" --run-dir "$tmp/run-$mode$r" --quiet --set train.epochs=1 \
        --set data.preload=$mode --set data.train="$glob" --set data.validation= \
        --set data.max_images="$images" --set train.log_every=4 --set train.checkpoint_every=1000 \
        --set train.sample_grid=16
      read -r ips waitms < <(python3 - "$tmp/run-$mode$r/metrics.jsonl" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if '"images_per_s"' in l][1:]
print(statistics.median(r["images_per_s"] for r in rows), statistics.median(r["data_wait_ms"] for r in rows))
PY
)
      # CPU time per image of the whole run (start-up included): unlike images/s, barely moved by
      # other jobs on a shared machine, and it shows any extra work streaming costs.
      cpu=$(awk -v n="$images" '{printf "%.3f", 1000 * ($1 + $2) / n}' "$tmp/cpu")
      echo "   run $r preload=$mode: $ips images/s, data wait $waitms ms/step, $cpu CPU-ms/image"
      if [[ $mode == off ]]; then disk+=("$ips"); wait_disk+=("$waitms"); cpu_disk+=("$cpu")
      else pre+=("$ips"); wait_pre+=("$waitms"); cpu_pre+=("$cpu"); fi
    done
  done
  echo "   from disk (evicted): $(median "${disk[@]}") images/s, data wait $(median "${wait_disk[@]}") ms/step"
  echo "   preloaded:           $(median "${pre[@]}") images/s, data wait $(median "${wait_pre[@]}") ms/step"
  echo "   CPU-ms per image: from disk $(median "${cpu_disk[@]}"), preloaded $(median "${cpu_pre[@]}")"
  python3 -c "import statistics as s, sys; d=[float(x) for x in sys.argv[1].split()]; p=[float(x) for x in sys.argv[2].split()]; print(f'   ratio of medians: {100*s.median(d)/s.median(p):.1f}%; per repeat (disk / preloaded): ' + ', '.join(f'{100*a/b:.0f}%' for a, b in zip(d, p)))" "${disk[*]}" "${pre[*]}"
fi
