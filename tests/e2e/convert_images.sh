#!/usr/bin/env bash
# End to end: `distvae convert images` on a generated folder of mixed JPEG / PNG files in class
# sub-folders, with corrupt files among them. Checks the shard and image counts, that every
# corrupt file is named, that a conversion killed (SIGKILL) part-way continues on rerun without
# redoing finished shards and ends with the same contents as an uninterrupted one, and that two
# MPI ranks write the same shards between them.
#   tests/e2e/convert_images.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
distvae=$build/launch/distvae
tmp=$(mktemp -d "$build/convert_images.XXXXXX")
pid=""
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; [[ -z ${KEEP:-} ]] && rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "convert_images: FAIL: $*" >&2; exit 1; }
command -v cjpeg >/dev/null || fail "cjpeg not found (launch/setup.sh installs libjpeg-turbo-progs)"

# 12 distinct base images (6 PNG, 6 JPEG via cjpeg) of 320x240 .. 480x360, copied under 1200
# names in 3 class folders; then 5 corrupt files.
python3 - <<'PY'
import os, struct, zlib, math
def rgb(w, h, k):
    rows = []
    for y in range(h):
        row = bytearray()
        for x in range(w):
            row += bytes(((x * (k + 3)) % 256, (y * (k + 5)) % 256, int(128 + 100 * math.sin((x + y + 7 * k) / 9.0))))
        rows.append(bytes(row))
    return rows
def png(path, w, h, rows):
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + r for r in rows)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                          + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
os.makedirs("base", exist_ok=True)
for k in range(12):
    w, h = 320 + 16 * k, 240 + 12 * k
    rows = rgb(w, h, k)
    if k % 2:
        png(f"base/{k}.png", w, h, rows)
    else:
        open(f"base/{k}.ppm", "wb").write(b"P6 %d %d 255\n" % (w, h) + b"".join(rows))
PY
for k in 0 2 4 6 8 10; do cjpeg -quality 90 base/$k.ppm > base/$k.jpg; done
for c in ants bees cats; do mkdir -p in/$c; done
n=0
for c in ants bees cats; do
  for i in $(seq -w 0 399); do
    k=$(( n % 12 )); ext=jpg; (( k % 2 )) && ext=png
    cp base/$k.$ext in/$c/img$i.$ext
    n=$(( n + 1 ))
  done
done
head -c 3000 base/0.jpg > in/ants/cut.jpg           # truncated JPEG
head -c 2000 /dev/urandom > in/bees/noise.jpg       # not an image
: > in/cats/empty.png                               # empty
printf 'hello' > in/cats/text.png                   # a text file named .png
python3 -c "
d = bytearray(open('base/1.png','rb').read()); i = d.find(b'IDAT') + 40; d[i] ^= 0xFF
open('in/bees/badcrc.png','wb').write(d)"            # a PNG with a damaged data chunk
corrupt="in/ants/cut.jpg in/bees/badcrc.png in/bees/noise.jpg in/cats/empty.png in/cats/text.png"

opts=(--size 32 --crop center --channels 3 --labels --shard-images 100 --chunk 50)
# 1. Uninterrupted: 1205 files in 13 shards (the corrupt ones are counted where they sort).
"$distvae" convert images in --out full "${opts[@]}" -j 2 > full.txt 2> full.err ||
  fail "conversion failed: $(cat full.err)"
grep -q "^train         1200 images (32x32x3) in 13 file(s)" full.txt || fail "counts: $(cat full.txt)"
for f in $corrupt; do grep -q "^skipped unreadable: $f (" full.txt || fail "$f not reported"; done
grep -q "^5 unreadable file(s) skipped" full.txt || fail "skip count: $(cat full.txt)"
grep -q "images/s" full.err || fail "no progress on stderr"
[[ $(ls full/data-train-*.h5 | wc -l) -eq 13 ]] || fail "expected 13 shard files"

# 2. Killed after the third shard is complete (one decoding thread: slow enough to catch).
"$distvae" convert images in --out part "${opts[@]}" -j 1 --quiet > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 2000); do
  [[ -f part/data-train-00002.h5 ]] && break
  sleep 0.01
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
pid=""
done_before=$(ls part/data-train-*.h5 2>/dev/null | wc -l)
(( done_before >= 3 && done_before < 13 )) ||
  fail "the kill did not land part-way ($done_before of 13 shards complete)"
stamp() { for f in part/data-train-*.h5; do echo "$f $(stat -c %Y.%y "$f")"; done; }
stamp > before.txt
"$distvae" convert images in --out part "${opts[@]}" -j 2 > rerun.txt 2>&1 ||
  fail "rerun failed: $(cat rerun.txt)"
grep -q "$(( 13 - done_before )) shard(s) written now, $done_before already complete (resumed)" \
  rerun.txt || fail "rerun did not resume $done_before shards: $(cat rerun.txt)"
stamp > after.txt
head -n "$done_before" after.txt | diff - before.txt >&2 || fail "finished shards were rewritten"
for f in $corrupt; do grep -q "^skipped unreadable: $f (" rerun.txt || fail "$f not in rerun summary"; done
for i in $(seq -w 0 12); do
  h5diff full/data-train-000$i.h5 part/data-train-000$i.h5 /images > /dev/null &&
    h5diff full/data-train-000$i.h5 part/data-train-000$i.h5 /labels > /dev/null ||
    fail "shard $i differs between the interrupted and the uninterrupted conversion"
done

# 3. Two MPI ranks: each writes its own shards; together the same dataset.
as_root=(); [[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
mpirun "${as_root[@]}" --oversubscribe -np 2 "$distvae" convert images in --out mpi "${opts[@]}" \
  -j 1 > mpi.txt 2>&1 || fail "mpirun conversion failed: $(cat mpi.txt)"
grep -q "13 shard(s) written now, 0 already complete" mpi.txt || fail "mpi summary: $(cat mpi.txt)"
for i in $(seq -w 0 12); do
  h5diff full/data-train-000$i.h5 mpi/data-train-000$i.h5 /images > /dev/null ||
    fail "shard $i differs between 1 and 2 ranks"
done
echo "convert_images: OK (1205 files, 5 corrupt named, resumed $done_before of 13 shards, 2 ranks)"
