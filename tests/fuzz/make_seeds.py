#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from scratch.

Small valid inputs of every layout the readers accept, plus a few near misses, so the fuzzer
starts from deep inside each parser. Run from anywhere: python3 tests/fuzz/make_seeds.py
"""
import gzip
import pathlib
import struct
import zlib

root = pathlib.Path(__file__).resolve().parent / "corpus"


def put(target, name, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# ---- IDX: big-endian magic 0x0000TTRR, RR uint32 dims, uint8 data ----
def idx(rank, dims, data, ttype=0x08):
    return struct.pack(">I", (ttype << 8) | rank) + b"".join(struct.pack(">I", d) for d in dims) + data


images = idx(3, [2, 3, 4], bytes(range(24)))
labels = idx(1, [5], bytes([0, 1, 2, 3, 9]))
put("idx", "images_2x3x4", images)
put("idx", "labels_5", labels)
put("idx", "images_2x3x4.gz", gzip.compress(images, mtime=0))
put("idx", "labels_5.gz", gzip.compress(labels, mtime=0))
put("idx", "truncated", images[:-3])
put("idx", "too_long", labels + b"\x07")
put("idx", "float_type", idx(3, [1, 2, 2], bytes(16), ttype=0x0D))
put("idx", "zero_dim", idx(3, [0, 2, 2], b""))

# ---- PNG: signature, IHDR, IDAT (zlib of filtered rows), optional PLTE / tRNS, IEND ----
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(w, h, depth, color, rows, extra=b"", interlace=0):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace)
    raw = b"".join(b"\x00" + r for r in rows)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


put("png", "gray8_3x2", png(3, 2, 8, 0, [bytes([0, 128, 255]), bytes([10, 20, 30])]))
put("png", "gray1_8x2", png(8, 2, 1, 0, [b"\xa5", b"\x5a"]))
put("png", "gray16_2x2", png(2, 2, 16, 0, [bytes(4), b"\xff\xff\x80\x00"]))
put("png", "rgb8_2x2", png(2, 2, 8, 2, [bytes(range(6)), bytes(range(6, 12))]))
put("png", "rgba8_2x1", png(2, 1, 8, 6, [bytes([255, 0, 0, 128, 0, 255, 0, 255])]))
put("png", "graya8_2x1", png(2, 1, 8, 4, [bytes([200, 100, 50, 255])]))
put("png", "palette4_4x1_trns",
    png(4, 1, 4, 3, [b"\x01\x23"], extra=chunk(b"PLTE", bytes(range(12))) + chunk(b"tRNS", b"\x00\x80")))


def adam7_rows(pixels, w, h):
    """The rows of an Adam7-interlaced 8-bit gray image: each pass's sub-image, pass by pass."""
    rows = []
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)]:
        for y in range(y0, h, dy):
            row = bytes(pixels[y * w + x] for x in range(x0, w, dx))
            if row:
                rows.append(row)
    return rows


put("png", "gray8_interlaced_5x5", png(5, 5, 8, 0, adam7_rows(range(0, 250, 10), 5, 5), interlace=1))
put("png", "bad_crc", png(2, 2, 8, 0, [b"\x00\x01", b"\x02\x03"])[:-5] + b"\x00\x00\x00\x00\x00")

# ---- config: the shipped configs are added by hand (cp configs/*.yaml); a few edge cases ----
put("config", "minimal.yaml",
    b"model:\n  encoder: [{type: linear, out: 4}, relu]\n  decoder: [{type: linear, out: 784}]\n"
    b"data:\n  train: d/*.h5\n")
put("config", "conv.yaml",
    b"model:\n  family: vae\n  latent: 2\n  encoder:\n    - {type: reshape, shape: [1, 28, 28]}\n"
    b"    - {type: conv2d, out: 4, kernel: 3, stride: 2, padding: 1}\n    - {type: leaky_relu, alpha: 0.2}\n"
    b"    - flatten\n  decoder:\n    - {type: linear, out: 196}\n    - {type: reshape, shape: [4, 7, 7]}\n"
    b"    - {type: deconv2d, out: 1, kernel: 4, stride: 4, output_padding: 0, bias: false}\n"
    b"  likelihood: gaussian\n  gaussian_variance: learned\nobjective: {estimator: A, samples: 2}\n"
    b"data: {train: 'a b/*.h5', binarize: none}\noptim: {kind: sgd, momentum: 0.9, schedule: cosine}\n")
put("config", "typo.yaml", b"model:\n  latnet: 3\n")
# Regressions: inputs the fuzzer once failed on (each must be rejected or round-trip exactly).
ok_model = b"model:\n  encoder: [{type: linear, out: 4}]\n  decoder: [{type: linear, out: 784}]\n"
put("config", "regress-list-key.yaml", b"? [a, b]\n: 1\n")
put("config", "regress-layer-map-key.yaml", b"model:\n  encoder:\n    - {[x]: 1}\n")
put("config", "regress-escaped-path.yaml", ok_model + b'data:\n  train: "d/\\\\x\\"y\\"#z/*.h5"\n')
put("config", "regress-flow-layer-type.yaml",
    b"model:\n  encoder: [{type: linear, out: 4}, 're56}', 'rel, ou']\n"
    b"  decoder: [{type: linear, out: 784}]\ndata: {train: d}\n")
put("config", "regress-not-utf8.yaml", ok_model + b"data:\n  train: d/\xba\xba.h5\n")
put("config", "syntax.yaml", b"model: [unclosed\n")
