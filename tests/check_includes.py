#!/usr/bin/env python3
"""The include rules: a folder is a layer, and a layer includes only itself and the layers below.

usage: check_includes.py SOURCE_DIR    (run by ctest as layering.includes)

Each `#include "a/b/c.h"` of the project's own headers in a source, test or bench file is checked
against the table below; every violation is printed with its file and line, and the exit status
is 1 if there is one. The layers, lowest first:

  core                 tensors, parameter store, layers, networks, optimizers, RNG
  core/backends        reference (the oracle), cpu, dnnl, and cuda/ (a CUDA build), one layer
  core/models          vae, gan, discriminator, ais: networks and objectives over a Backend
  dist                 communicators and gradient sync: buffers, not layers
  io/file              a file written whole or not at all (tmp, fsync, rename)
  io/hdf5, io/image    HDF5 helpers, shards and checkpoints; 8-bit images and their codecs
  io/data              reading datasets for training: shards, shard plan, loader, batches
  io/convert           offline converters to HDF5 shards
  io/output            metrics log and HTML report
  launch/config        the typed config and its YAML
  launch/train         the trainer and everything a training run needs
  launch/eval          evaluation, sampling quality, latent tools (uses the model set-up)
  launch/cli           the distvae command: the only layer nothing else may include

Tests in tests/<layer>/ include only that layer, what it may include, the test helpers under
tests/ (which may include core), and core/backends (a test runs its numbers on a backend: the
reference is the oracle); three test folders need one more layer, each for the reason given in
EXTRA_FOR_TESTS. Benches include anything except launch/cli.
"""
import os
import re
import sys

BELOW = {
    "core": [],
    "core/backends": ["core"],
    "core/models": ["core"],
    "dist": ["core"],
    "io/file": [],
    "io/hdf5": ["io/file"],
    "io/image": [],
    "io/data": ["core", "io/hdf5"],
    "io/convert": ["core", "io/file", "io/hdf5", "io/image"],
    "io/output": ["io/file", "io/image"],
    "launch/config": ["core"],
    "launch/train": ["core", "core/backends", "core/models", "dist", "io/hdf5", "io/image",
                     "io/data", "io/output", "launch/config"],
}
BELOW["launch/eval"] = BELOW["launch/train"] + ["launch/train"]
BELOW["launch/cli"] = sorted(set(BELOW["launch/eval"] + ["launch/eval", "io/convert"]))
ALL = sorted(BELOW)
EXTRA_FOR_TESTS = {
    "dist": ["core/models"],           # equivalence needs a real model's gradients
    "io/convert": ["io/data"],         # converted shards are read back by the training reader
    "launch/train": ["io/convert"],    # end-to-end runs convert their dataset first
}
TEST_GROUPS = {  # test folders that are not a source layer's mirror
    "tests/cuda": ["core", "core/backends", "dist"],
    "tests/fuzz": ["core", "launch/config", "io/convert", "io/image"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path):
    """The deepest layer whose folder holds path, or None."""
    best = None
    for layer in ALL:
        if path.startswith(layer + "/") and (best is None or len(layer) > len(best)):
            best = layer
    return best


def allowed_for(path):
    """(what the file may include, in words) or None for files outside the rules."""
    if path.startswith("bench/"):
        return [l for l in ALL if l != "launch/cli"] + ["bench"], "a bench"
    for group, layers in TEST_GROUPS.items():
        if path.startswith(group + "/"):
            return layers + ["tests"], group
    if path.startswith("tests/"):
        layer = layer_of(path[len("tests/"):])
        if layer is None:
            return ["core", "tests"], "a test helper"
        return (BELOW[layer] + [layer, "core/backends", "tests"] + EXTRA_FOR_TESTS.get(layer, []),
                f"a test of {layer}")
    layer = layer_of(path)
    if layer is None:
        return None
    return BELOW[layer] + [layer], f"layer {layer}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    bad = checked = 0
    for top in ("core", "dist", "io", "launch", "tests", "bench"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                rule = allowed_for(path)
                if rule is None:
                    continue
                allowed, who = rule
                with open(os.path.join(root, path), errors="replace") as fh:
                    for lineno, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        inc = m.group(1)
                        target = "tests" if inc.startswith("tests/") else (
                            "bench" if inc.startswith("bench/") else layer_of(inc))
                        if target is None:
                            continue  # not one of the project's headers (a generated file)
                        checked += 1
                        if target not in allowed:
                            print(f"{path}:{lineno}: {who} includes {inc} (layer {target}); "
                                  f"it may include: {', '.join(sorted(set(allowed)))}")
                            bad += 1
    print(f"check_includes: {checked} includes checked, {bad} against the layering rules")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
