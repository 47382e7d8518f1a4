#!/usr/bin/env bash
# Bad input through the real CLI (docs/design.md section 8): every malformed config, file or flag must
# give a non-zero exit, no crash or hang, exactly one "distvae: error:" line on stderr, and a
# message naming the problem (the key, the file, the expected shape).
#
# Usage: bash tests/e2e/bad_input.sh BUILD_DIR SOURCE_DIR
set -u
source "$(dirname "$0")/common.bash"  # e2e_skip_case

BUILD_DIR=$(cd "${1:?usage: bad_input.sh BUILD_DIR SOURCE_DIR}" && pwd)
SOURCE_DIR=$(cd "${2:?usage: bad_input.sh BUILD_DIR SOURCE_DIR}" && pwd)
DISTVAE="$BUILD_DIR/launch/distvae"
TIMEOUT=${DISTVAE_E2E_TIMEOUT:-180}

if [[ ! -x "$DISTVAE" ]]; then
  echo "bad_input: $DISTVAE not found or not executable (build the project first)" >&2
  exit 2
fi

mkdir -p "$BUILD_DIR/test-tmp"
TMP=$(mktemp -d "$BUILD_DIR/test-tmp/bad_input.XXXXXX") || exit 2
trap 'umount "$TMP/full" 2>/dev/null; rm -rf "$TMP"' EXIT
cd "$TMP" || exit 2

passed=0
failed=0
failures=()

# check_error NAME PATTERN... -- COMMAND...
# Runs COMMAND; passes when it exits with 1..127 (not killed, not timed out), stderr has no crash
# markers, exactly one line starting with "distvae: error:", and every PATTERN (a fixed string)
# occurs in that line.
check_error() {
  local name=$1
  shift
  local patterns=()
  while [[ $# -gt 0 && $1 != "--" ]]; do
    patterns+=("$1")
    shift
  done
  shift  # --
  local out="$TMP/case.out" err="$TMP/case.err"
  timeout "$TIMEOUT" "$@" >"$out" 2>"$err"
  local rc=$? problems=()
  if [[ $rc -eq 0 ]]; then
    problems+=("exit code 0, expected an error")
  elif [[ $rc -eq 124 ]]; then
    problems+=("timed out (exit 124 from timeout(1): a hang)")
  elif [[ $rc -ge 128 ]]; then
    problems+=("exit code $rc: killed by signal $((rc - 128))")
  fi
  if grep -qE 'Segmentation|terminate called|Aborted|core dumped|AddressSanitizer' "$err"; then
    problems+=("crash marker on stderr")
  fi
  local nerr
  nerr=$(grep -c '^distvae: error:' "$err")
  if [[ $nerr -ne 1 ]]; then
    problems+=("$nerr lines start with 'distvae: error:', expected exactly 1")
  fi
  local line
  line=$(grep -m1 '^distvae: error:' "$err")
  local p
  for p in "${patterns[@]}"; do
    if ! grep -qF -- "$p" <<<"$line"; then
      problems+=("the error line lacks '$p'")
    fi
  done

  if [[ ${#problems[@]} -eq 0 ]]; then
    echo "PASS  $name: ${line#distvae: error: }"
    passed=$((passed + 1))
    return
  fi
  echo "FAIL  $name"
  failed=$((failed + 1))
  failures+=("$name")
  printf '      command: %s\n' "$*"
  printf '      exit code: %s\n' "$rc"
  for p in "${problems[@]}"; do printf '      problem: %s\n' "$p"; done
  sed 's/^/      stderr: /' "$err" | head -20
  sed 's/^/      stdout: /' "$out" | tail -5
}

# check_that NAME COMMAND...: a follow-up assertion about the state an error case left behind;
# passes when COMMAND succeeds.
check_that() {
  local name=$1
  shift
  if "$@" >"$TMP/that.out" 2>&1; then
    echo "PASS  $name"
    passed=$((passed + 1))
    return
  fi
  echo "FAIL  $name"
  failed=$((failed + 1))
  failures+=("$name")
  sed 's/^/      output: /' "$TMP/that.out" | tail -10
}

# A uint8 IDX file: write_idx PATH MAGIC_BYTE3 DIM... (then the data from /dev/urandom, or
# fewer bytes with TRUNCATE_BY set).
be32() { printf "\\x$(printf %02x $((($1 >> 24) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $(($1 & 255)))"; }
write_idx() {
  local path=$1 rank=$2
  shift 2
  local n=1 d
  {
    printf '\x00\x00\x08'
    printf "\\x$(printf %02x "$rank")"
    for d in "$@"; do
      be32 "$d"
      n=$((n * d))
    done
    head -c $((n - ${TRUNCATE_BY:-0})) /dev/urandom
  } >"$path"
}

# An HDF5 file with one dataset from h5import: make_h5 PATH DATASET CLASS(UIN|IN|FP) BITS DIM...
make_h5() {
  local path=$1 dset=$2 cls=$3 bits=$4
  shift 4
  local n=1 d
  for d in "$@"; do n=$((n * d)); done
  local in_class=TEXTIN
  [[ $cls == FP ]] && in_class=TEXTFP
  seq 1 "$n" | awk '{print $1 % 200}' >"$path.txt"
  cat >"$path.cfg" <<EOF
PATH $dset
INPUT-CLASS $in_class
RANK $#
DIMENSION-SIZES $*
OUTPUT-CLASS $cls
OUTPUT-SIZE $bits
OUTPUT-ARCHITECTURE NATIVE
EOF
  h5import "$path.txt" -c "$path.cfg" -o "$path" >/dev/null 2>&1
}

# ---- Fixtures -----------------------------------------------------------------------------------
mkdir -p data bad
# Good 28x28 data: 256 random images, plus a validation split of 64.
write_idx raw-train-images 3 320 28 28
"$DISTVAE" convert idx --images raw-train-images --out data --prefix fmnist --val 64 \
  --overwrite >/dev/null || { echo "bad_input: converting the fixture data failed" >&2; exit 2; }
# 10x10 images: a size the 784-pixel tiny model does not fit.
write_idx raw-small-images 3 128 10 10
"$DISTVAE" convert idx --images raw-small-images --out bad --prefix small --split train \
  --overwrite >/dev/null || { echo "bad_input: converting the 10x10 data failed" >&2; exit 2; }

HAVE_H5IMPORT=0
if command -v h5import >/dev/null; then
  make_h5 bad/no-images.h5 pixels UIN 8 4 28 28 1 &&
    make_h5 bad/rank3.h5 images UIN 8 4 28 28 &&
    make_h5 bad/float.h5 images FP 32 4 28 28 1 &&
    HAVE_H5IMPORT=1
fi

TINY="$SOURCE_DIR/configs/fmnist_vae_tiny.yaml"
FAST=(--quiet --set train.epochs=1 --set train.threads=1 --set data.max_images=256
  --set train.sample_grid=4)

# A config derived from the tiny one: derive NAME SED_EXPRESSION
derive() {
  sed "$2" "$TINY" >"$1"
  if cmp -s "$TINY" "$1"; then
    echo "bad_input: deriving $1 from $TINY changed nothing (was the config edited?)" >&2
    exit 2
  fi
}

# Sanity: the fixtures train (otherwise every case below would pass for the wrong reason).
if ! timeout "$TIMEOUT" "$DISTVAE" train "$TINY" --run-dir runs/ok "${FAST[@]}" >sanity.out 2>&1; then
  echo "bad_input: the tiny config does not train on the fixture data:" >&2
  cat sanity.out >&2
  exit 2
fi

# ---- Config cases -------------------------------------------------------------------------------
check_error "unknown key in --set with a suggestion" "train.bach" "did you mean 'train.batch'" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --set train.bach=32

derive typo.yaml 's/^  batch: 64/  bach: 64/'
check_error "unknown key in the YAML file with a suggestion" "typo.yaml" "train.bach" \
  "did you mean 'train.batch'" -- "$DISTVAE" train typo.yaml --run-dir runs/x

check_error "unknown section" "trian.batch" "did you mean 'train.batch'" \
  -- "$DISTVAE" config check "$TINY" --set trian.batch=3

check_error "wrong type" "train.batch" "abc" "integer" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --set train.batch=abc

check_error "out of range" "train.batch" "out of range" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --set train.batch=0

check_error "negative learning rate" "optim.lr" "out of range" \
  -- "$DISTVAE" config check "$TINY" --set optim.lr=-1

check_error "not one of the choices" "model.likelihood" "bernoulli" \
  -- "$DISTVAE" config check "$TINY" --set model.likelihood=poisson

check_error "--set without =" "--set" "train.batch" "key.path=value" \
  -- "$DISTVAE" config check "$TINY" --set train.batch

printf 'model:\n  latent: 8\n  encoder: [{type: linear, out: 64}\ntrain:\n  batch: 64\n' >syntax.yaml
check_error "YAML syntax error" "syntax.yaml" "line" \
  -- "$DISTVAE" train syntax.yaml --run-dir runs/x

printf 'train:\n  batch: 64\n   epochs: 2\n' >indent.yaml
check_error "YAML bad indentation" "indent.yaml" "line 3" \
  -- "$DISTVAE" config check indent.yaml

derive layer-type.yaml '0,/{type: linear, out: 64}/s//{type: lienar, out: 64}/'
check_error "unknown layer type" "encoder layer 0" "lienar" "unknown layer type" \
  -- "$DISTVAE" train layer-type.yaml --run-dir runs/x

derive layer-key.yaml '0,/{type: linear, out: 64}/s//{type: linear, outs: 64}/'
check_error "unknown layer key" "model.encoder[0]" "outs" \
  -- "$DISTVAE" config check layer-key.yaml

derive layer-no-out.yaml '0,/{type: linear, out: 64}/s//{type: linear}/'
check_error "layer missing out" "encoder layer 0" "'out'" \
  -- "$DISTVAE" train layer-no-out.yaml --run-dir runs/x

derive conv-after-flatten.yaml '0,/    - relu/s//    - relu\n    - flatten\n    - {type: conv2d, out: 8, kernel: 3}/'
check_error "conv after flatten" "encoder layer 3" "conv2d" \
  -- "$DISTVAE" train conv-after-flatten.yaml --run-dir runs/x

derive encoder-in.yaml '0,/{type: linear, out: 64}/s//{type: linear, in: 100, out: 64}/'
check_error "encoder declares in: 100 for 784-pixel images" "100" "784" \
  -- "$DISTVAE" train encoder-in.yaml --run-dir runs/x

derive decoder-out.yaml 's/{type: linear, out: 784}/{type: linear, out: 100}/'
check_error "decoder output of the wrong size" "decoder" "100" "784" \
  -- "$DISTVAE" train decoder-out.yaml --run-dir runs/x

printf 'train: [1, 2]\n' >section-list.yaml
check_error "section is a list, not a map" "section-list.yaml" "train" "map" \
  -- "$DISTVAE" config check section-list.yaml

# ---- Data cases ---------------------------------------------------------------------------------
check_error "missing data file (glob matches nothing)" "data.train" "nowhere/fmnist-train-*.h5" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --set "data.train=nowhere/fmnist-train-*.h5"

check_error "missing validation file" "data.validation" "nothing-*.h5" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --set "data.validation=data/nothing-*.h5"

printf 'this is not HDF5\n' >bad/text.h5
check_error "data file that is not HDF5" "bad/text.h5" "not an HDF5 file" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --set data.train=bad/text.h5

if [[ $HAVE_H5IMPORT == 1 ]]; then
  check_error "HDF5 file without 'images'" "bad/no-images.h5" "images" "pixels" \
    -- "$DISTVAE" train "$TINY" --run-dir runs/x --set data.train=bad/no-images.h5

  check_error "'images' of rank 3" "bad/rank3.h5" "rank 3" "[N, H, W, C]" \
    -- "$DISTVAE" train "$TINY" --run-dir runs/x --set data.train=bad/rank3.h5

  check_error "'images' of type float32" "bad/float.h5" "float32" "uint8" \
    -- "$DISTVAE" train "$TINY" --run-dir runs/x --set data.train=bad/float.h5
else
  e2e_skip_case command:h5import "HDF5 structure cases: h5import (hdf5-tools) is missing or failed"
fi

# One byte of the shard's only chunk flipped: Fletcher32 catches it when the chunk is read.
cp data/fmnist-train-00000.h5 bad/flipped-shard.h5
at=$(($(stat -c %s bad/flipped-shard.h5) / 2))
byte=$(od -An -tu1 -j "$at" -N1 bad/flipped-shard.h5)
printf "\\x$(printf %02x $((byte ^ 0x5a)))" |
  dd of=bad/flipped-shard.h5 bs=1 seek="$at" conv=notrunc status=none
check_error "a flipped byte in a data shard (Fletcher32)" "bad/flipped-shard.h5" "Fletcher32" \
  "corrupt on disk" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x "${FAST[@]}" --set data.train=bad/flipped-shard.h5

check_error "train and validation of different image sizes" "data.validation" "10" "28" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x "${FAST[@]}" \
  --set "data.validation=bad/small-train-*.h5"

check_error "10x10 images for a model whose decoder makes 784 values" "784" "10" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x "${FAST[@]}" --set "data.train=bad/small-train-*.h5" \
  --set "data.validation=bad/small-train-*.h5"

check_error "fewer images than one batch" "batch 300" "larger than the 256 images" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --quiet --set data.max_images=10 --set train.batch=300

# ---- convert idx cases --------------------------------------------------------------------------
TRUNCATE_BY=1000 write_idx bad/truncated-images 3 64 28 28
check_error "truncated IDX file" "bad/truncated-images" "bytes" \
  -- "$DISTVAE" convert idx --images bad/truncated-images --split train --out bad/conv --overwrite

head -c 10 raw-train-images >bad/truncated-header
check_error "IDX file cut inside its header" "bad/truncated-header" "header" \
  -- "$DISTVAE" convert idx --images bad/truncated-header --split train --out bad/conv --overwrite

{ printf '\x00\x00\x0d\x03'; tail -c +5 raw-small-images; } >bad/float-magic
check_error "IDX with a bad magic (float type)" "bad/float-magic" "magic" "0x00000803" \
  -- "$DISTVAE" convert idx --images bad/float-magic --split train --out bad/conv --overwrite

{ printf 'GIF8'; tail -c +5 raw-small-images; } >bad/garbage-magic
check_error "IDX with a garbage magic" "bad/garbage-magic" "magic" "not a uint8 IDX file" \
  -- "$DISTVAE" convert idx --images bad/garbage-magic --split train --out bad/conv --overwrite

write_idx bad/short-images 3 32 28 28
write_idx bad/labels-64 1 64
check_error "labels count differs from images" "bad/labels-64" "64" "32" \
  -- "$DISTVAE" convert idx --images bad/short-images --labels bad/labels-64 --split train \
  --out bad/conv --overwrite

head -c 2000 raw-train-images | gzip -c | head -c 700 >bad/cut.gz
check_error "truncated .gz IDX" "bad/cut.gz" "" \
  -- "$DISTVAE" convert idx --images bad/cut.gz --split train --out bad/conv --overwrite

check_error "missing IDX file" "bad/nope-images" \
  -- "$DISTVAE" convert idx --images bad/nope-images --split train --out bad/conv --overwrite

check_error "--val larger than the file" "raw-small-images" "500" \
  -- "$DISTVAE" convert idx --images raw-small-images --val 500 --out bad/conv --overwrite

# ---- Checkpoint cases ---------------------------------------------------------------------------
check_error "eval of a missing checkpoint" "runs/ok/checkpoints/ckpt-000099.h5" \
  -- "$DISTVAE" eval --checkpoint runs/ok/checkpoints/ckpt-000099.h5

check_error "eval of a file that is not a checkpoint" "bad/text.h5" \
  -- "$DISTVAE" eval --checkpoint bad/text.h5

check_error "eval of a non-checkpoint HDF5 file" "data/fmnist-train-00000.h5" \
  -- "$DISTVAE" eval --checkpoint data/fmnist-train-00000.h5

check_error "eval on images of another size" "10x10x1" "28x28x1" "trained on" \
  -- "$DISTVAE" eval --checkpoint runs/ok/checkpoints/ckpt-000001.h5 --data "bad/small-train-*.h5"

cp runs/ok/checkpoints/ckpt-000001.h5 bad/flipped.h5
size=$(stat -c %s bad/flipped.h5)
# Flip bytes in the last third (array data) so the checksum must catch it.
printf '\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8' |
  dd of=bad/flipped.h5 bs=1 seek=$((size * 2 / 3)) conv=notrunc status=none
check_error "eval of a corrupted checkpoint" "bad/flipped.h5" \
  -- "$DISTVAE" eval --checkpoint bad/flipped.h5

head -c 4096 runs/ok/checkpoints/ckpt-000001.h5 >bad/cut-ckpt.h5
check_error "eval of a truncated checkpoint" "bad/cut-ckpt.h5" \
  -- "$DISTVAE" eval --checkpoint bad/cut-ckpt.h5

# Resuming with another architecture: the checkpoint of runs/ok has latent 8.
cp -r runs/ok runs/arch
check_error "train --resume with a checkpoint of another architecture" "another architecture" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/arch "${FAST[@]}" --resume --set model.latent=4

# ---- CLI flag cases -----------------------------------------------------------------------------
check_error "missing config file" "missing.yaml" \
  -- "$DISTVAE" train missing.yaml --run-dir runs/x

check_error "non-integer flag value" "--stop-after-epochs" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/x --stop-after-epochs abc

# ---- PNG conversion and run directory cases -----------------------------------------------------

mkdir -p png-empty png-mixed
python3 - <<'PY'
import struct, zlib
def png(path, w, h):  # a valid 8-bit gray PNG
    raw = b"".join(b"\x00" + bytes([128] * w) for _ in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                           chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png("png-mixed/a.png", 8, 8)
png("png-mixed/b.png", 9, 8)
PY
check_error "convert images of a folder without PNGs" "png-empty" "no .png files" \
  -- "$DISTVAE" convert images png-empty --out png-out1
check_error "convert images of different sizes" "png-mixed/b.png" "9x8" "must share one size" \
  -- "$DISTVAE" convert images png-mixed --out png-out2
touch not-a-dir
check_error "run directory that cannot be created" "not-a-dir/run" "cannot create the run directory" \
  -- "$DISTVAE" train "$TINY" --run-dir not-a-dir/run "${FAST[@]}"

# ---- Full disk during checkpointing -------------------------------------------------------------
# A tmpfs with room for one checkpoint but not two: the second must fail with a clear error, leave
# nothing a later --resume would take, and after the disk is enlarged --resume must take the
# first checkpoint and end bitwise equal to a run that had room. (ulimit -f cannot stand in for
# it: Open MPI's PMIx shared-memory store is itself larger than one checkpoint and aborts
# MPI_Init.) Needs root and permission to mount; otherwise skips this case (e2e_skip_case).
FULL=(--set train.epochs=2 --set train.threads=1 --set data.max_images=256 --set train.sample_grid=4)
full_resume_matches() {
  mount -o remount,size=64m "$TMP/full" || return 1
  "$DISTVAE" train "$TINY" --run-dir full/run "${FULL[@]}" --resume >full-resume.out 2>&1 ||
    { cat full-resume.out; return 1; }
  grep -F "resuming from full/run/checkpoints/ckpt-000001.h5" full-resume.out || return 1
  local d
  for d in /encoder.values /decoder.values /encoder.opt_m /encoder.opt_v /decoder.opt_m \
    /decoder.opt_v; do
    h5diff runs/roomy/checkpoints/ckpt-000002.h5 full/run/checkpoints/ckpt-000002.h5 "$d" "$d" ||
      return 1
  done
}
mkdir -p full
if mount -t tmpfs -o size=64m distvae-full full 2>mount.err; then
  check_that "disk full: the reference run with room to spare" \
    timeout "$TIMEOUT" "$DISTVAE" train "$TINY" --run-dir runs/roomy "${FULL[@]}" --quiet
  ck=$(stat -c %s runs/roomy/checkpoints/ckpt-000001.h5 2>/dev/null || echo 1000000)
  mount -o remount,size=$((ck * 16 / 10 / 1024))k full  # room for 1.6 checkpoints
  check_error "disk full while writing a checkpoint" \
    "no space left on device while writing checkpoint full/run/checkpoints/ckpt-000002.h5" \
    "MB needed" "the previous checkpoint full/run/checkpoints/ckpt-000001.h5 is intact" -- "$DISTVAE" train "$TINY" --run-dir full/run "${FULL[@]}" --quiet
  check_that "disk full: no checkpoint 2 and no partial file left, checkpoint 1 kept" \
    test ! -e full/run/checkpoints/ckpt-000002.h5 -a ! -e full/run/checkpoints/ckpt-000002.h5.tmp \
    -a -s full/run/checkpoints/ckpt-000001.h5
  check_that "disk full: --resume takes checkpoint 1 and ends equal to the run with room" \
    full_resume_matches
else
  e2e_skip_case mount "disk full while writing a checkpoint: cannot mount a small tmpfs" \
    "($(head -1 mount.err))"
fi


# ---- Never lose or mix a run --------------------------------------------------------------------
# Each case below also checks that nothing a later --resume could use (checkpoints, metrics.jsonl,
# config.yaml) changed: their hashes before and after.
run_files_hash() {
  (cd "$1" && find . -path './replaced-*' -prune -o -type f \
    \( -name 'ckpt-*.h5' -o -name metrics.jsonl -o -name config.yaml \) -print0 |
    sort -z | xargs -0 -r sha256sum) | sha256sum
}
# check_keeps DIR NAME PATTERN... -- COMMAND: check_error, then DIR's run files are unchanged.
check_keeps() {
  local dir=$1 name=$2 before
  shift
  before=$(run_files_hash "$dir")
  check_error "$@"
  check_that "$name: nothing a resume could use changed" test "$(run_files_hash "$dir")" = "$before"
}
timeout "$TIMEOUT" "$DISTVAE" train "$TINY" --run-dir runs/owned "${FAST[@]}" >/dev/null 2>&1 ||
  { echo "bad_input: the tiny run for the run-directory cases failed" >&2; exit 2; }

check_keeps runs/owned "train again on a run directory without --resume" "runs/owned" \
  "already holds a run" "--resume" "--overwrite" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/owned "${FAST[@]}"

cp -r runs/owned runs/damaged
for f in runs/damaged/checkpoints/ckpt-*.h5; do truncate -s 1000 "$f"; done
check_keeps runs/damaged "--resume where every checkpoint is damaged" "no usable checkpoint" \
  "holds an earlier run" "--overwrite" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/damaged "${FAST[@]}" --resume

# A checkpoint the user cannot read is not damage: it must stop the resume, not be passed over
# (and later overwritten). Root reads every file, so this runs as nobody.
if [[ $(id -u) -eq 0 ]] && command -v runuser >/dev/null; then
  locked=$(mktemp -d /tmp/distvae-unreadable.XXXXXX)
  cp -r runs/owned "$locked/run" && cp data/fmnist-train* "$locked/" && chmod 755 "$locked"
  chown -R nobody "$locked/run" && chmod 000 "$locked/run/checkpoints/ckpt-000001.h5"
  check_keeps "$locked/run" "--resume with a checkpoint the user cannot read" "ckpt-000001.h5" \
    "cannot read the checkpoint: Permission denied" "not passed over" \
    -- runuser -u nobody -- "$DISTVAE" train "$TINY" --run-dir "$locked/run" "${FAST[@]}" --resume \
    --set "data.train=$locked/fmnist-train-*.h5" --set data.validation=
  mkdir "$locked/nobody" && chown nobody "$locked/nobody" &&
    chmod 000 "$locked/fmnist-train-00000.h5"
  check_error "a data file the user cannot read" "fmnist-train-00000.h5" "cannot read it" \
    "Permission denied" -- runuser -u nobody -- "$DISTVAE" train "$TINY" \
    --run-dir "$locked/nobody/run" --quiet --set "data.train=$locked/fmnist-train-00000.h5" \
    --set data.validation=
  rm -rf "$locked"
else
  e2e_skip_case root "unreadable checkpoint and data cases: they run as nobody, which needs root"
fi

# Two trainings on one run directory: the second stops at once, naming the first's PID; after
# the first is SIGKILLed, --resume works at once (the kernel released the lock). "At once" without
# a timed assertion (a loaded machine slows any start): the first is stopped (SIGSTOP) meanwhile,
# so a second that waited on it in any way would run into the 30 s timeout instead.
"$DISTVAE" train "$TINY" --run-dir runs/busy --quiet --set train.threads=1 \
  --set train.epochs=100000 --set train.checkpoint_every_steps=4 --set data.validation= &
first=$!
for _ in $(seq 200); do ls runs/busy/checkpoints/ckpt-* >/dev/null 2>&1 && break; sleep 0.05; done
kill -STOP "$first"
t0=$(date +%s.%N)
check_error "a second training on a run directory in use (the first one stopped)" \
  "runs/busy is in use" "PID $first" -- timeout 30 "$DISTVAE" train "$TINY" --run-dir runs/busy \
  "${FAST[@]}" --resume
echo "      (the second training ended $(awk -v a="$t0" -v b="$(date +%s.%N)" \
  'BEGIN { printf "%.2f", b - a }') s after it started)"
kill -CONT "$first"
kill -KILL "$first"
wait "$first" 2>/dev/null
check_that "after kill -9 of the first, --resume starts at once (no stale lock)" \
  timeout "$TIMEOUT" "$DISTVAE" train "$TINY" --run-dir runs/busy --quiet --set train.threads=1 \
  --set train.epochs=100000 --set data.validation= --resume --stop-after-epochs 1

before=$(run_files_hash runs/owned)
check_that "--overwrite starts anew, moving the earlier run aside" \
  timeout "$TIMEOUT" "$DISTVAE" train "$TINY" --run-dir runs/owned "${FAST[@]}" --overwrite
check_that "--overwrite kept every earlier file under replaced-*/" \
  test "$(run_files_hash runs/owned/replaced-*)" = "$before"

# Arguments outside their domain, and options that do not apply to the model family.
CK=runs/owned/checkpoints/ckpt-000001.h5
check_error "eval --iw 0" "--iw" "1 to 1000000" -- "$DISTVAE" eval --checkpoint "$CK" --iw 0
check_error "eval --iw -3" "--iw" "1 to 1000000" -- "$DISTVAE" eval --checkpoint "$CK" --iw -3
check_error "eval --max-images -5" "--max-images" "not in range" \
  -- "$DISTVAE" eval --checkpoint "$CK" --max-images -5
# Refused before any likelihood pass: with --iw 1000 over every test image that would take minutes.
check_error "eval --ratio-check on a vae checkpoint" "--ratio-check" "is a vae" \
  "only implicit_prior_vae" -- timeout 20 "$DISTVAE" eval --checkpoint "$CK" --ratio-check 100 \
  --iw 1000
check_error "train --stop-after-epochs -1" "--stop-after-epochs" "not in range" \
  -- "$DISTVAE" train "$TINY" --run-dir runs/neg "${FAST[@]}" --stop-after-epochs -1
GAN_FAST=(--quiet --set train.epochs=1 --set train.threads=1 --set data.max_images=256
  --set train.sample_grid=4 --set data.validation= --set train.batch=32)
timeout "$TIMEOUT" "$DISTVAE" train "$SOURCE_DIR/configs/fmnist_gan_mlp.yaml" --run-dir runs/gan \
  "${GAN_FAST[@]}" >/dev/null 2>&1 || { echo "bad_input: the gan fixture run failed" >&2; exit 2; }
check_error "eval --iw on a gan checkpoint" "--iw" "is a gan" "--quality" \
  -- "$DISTVAE" eval --checkpoint runs/gan/checkpoints/ckpt-000001.h5 --iw 10
check_error "eval of a gan checkpoint with nothing to compute" "is a gan" "--quality" \
  -- "$DISTVAE" eval --checkpoint runs/gan/checkpoints/ckpt-000001.h5
printf 'model:\n  latent: 8\n  latent: 16\n' >bad/dup-key.yaml
check_error "a YAML key written twice" "model.latent is written twice (lines 2 and 3)" \
  -- "$DISTVAE" config check bad/dup-key.yaml
{ cat "$TINY"; printf 'model:\n  latent: 4\n'; } >bad/dup-section.yaml
check_error "a YAML section written twice" "model is written twice" \
  -- "$DISTVAE" config check bad/dup-section.yaml
check_error "a key written twice inside a --set value" \
  "model.encoder[0].out is written twice" -- "$DISTVAE" config check "$TINY" \
  --set "model.encoder=[{type: linear, out: 8, out: 16}]"
check_error "config check: a decoder that cannot make the data's images" "decoder" "need 784" \
  -- "$DISTVAE" config check "$SOURCE_DIR/configs/sprites_vae_conv.yaml" \
  --set "data.train=data/fmnist-train-*.h5"

# on_nonfinite: skip must not end in a NaN model: once an update overflowed the parameters
# (SGD at lr 10, momentum 0.99), skipping cannot recover, so the run stops writing no checkpoint.
check_error "train.on_nonfinite: skip into a broken model" "validation ELBO of epoch 1 is non-finite" \
  "without a checkpoint" -- "$DISTVAE" train "$TINY" --run-dir runs/nan "${FAST[@]}" \
  --set optim.kind=sgd --set optim.lr=10 --set optim.momentum=0.99 --set train.on_nonfinite=skip
check_that "on_nonfinite: skip wrote no checkpoint of non-finite parameters" \
  test -z "$(ls runs/nan/checkpoints)"

# A real allocation failure (a 2 GB address-space limit) names what was allocated and how much.
check_error "out of memory for the model's activations" "encoder: out of memory" "MB" \
  "lower train.batch" -- bash -c "ulimit -v 2000000; exec $DISTVAE train \
  $SOURCE_DIR/configs/fmnist_vae_conv.yaml --run-dir runs/oom --quiet \
  --set 'data.train=data/fmnist-train-*.h5' --set data.validation= --set train.batch=65536"

# kill -9 during a sharded conversion: a glob must never silently take the finished shards
# only, and rerunning the same command must finish the conversion.
conv=(convert idx --images /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
      --out killed --prefix k --shard-images 2000)
partial=0
for delay in 0.6 0.9 1.2 1.5 1.9 2.4; do
  rm -rf killed
  "$DISTVAE" "${conv[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if ls killed/k-train-*.h5 >/dev/null 2>&1 && [[ ! -f killed/k-train.done ]]; then
    partial=1
    break
  fi
done
if [[ $partial -eq 1 && -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  check_error "training on a killed conversion's shards ($(ls killed/k-train-*.h5 | wc -l) of 30)" \
    "part of a conversion that did not finish" "Rerun the same distvae convert command" \
    -- "$DISTVAE" train "$TINY" --run-dir runs/killed "${FAST[@]}" --set "data.train=killed/k-train-*.h5"
  check_that "rerunning the killed conversion finishes it" "$DISTVAE" "${conv[@]}"
  check_that "the finished conversion trains" timeout "$TIMEOUT" "$DISTVAE" train "$TINY" \
    --run-dir runs/killed2 "${FAST[@]}" --set "data.train=killed/k-train-*.h5" --set data.validation=
else
  echo "FAIL  kill -9 during a conversion: never caught it half-way (the delays need adjusting)"
  failed=$((failed + 1))
  failures+=("kill -9 during a conversion")
fi
echo
echo "$passed passed, $failed failed"
if [[ $failed -gt 0 ]]; then
  printf 'failed: %s\n' "${failures[@]}"
  exit 1
fi
exit 0
