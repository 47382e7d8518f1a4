#!/usr/bin/env python3
"""Checks python/distvae_reader.py against the distvae command on one trained checkpoint.

usage: reader_check.py SRC CHECKPOINT DIR    (run by tests/e2e/python_reader.sh)

DIR holds what distvae wrote from CHECKPOINT: enc.h5 (distvae encode), sample.h5 (distvae sample
--out .h5 --seed 7), eval.json (distvae eval --max-images N --iw 1 --json). Compares the reader's
encoder outputs, z draws, decoded images and per-image ELBO with them, prints the largest
differences, and exits 1 when one is beyond its tolerance. With torch importable, the same through
to_torch()'s modules; otherwise it prints a SKIP [module:torch] line for that case.
"""
import json
import sys

import h5py
import numpy as np

src, checkpoint, out = sys.argv[1:4]
sys.path.insert(0, f"{src}/python")
import distvae_reader as dr  # noqa: E402

failed = []


def close(what, got, want, tol):
    diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))))
    ok = diff <= tol
    print(f"{'PASS' if ok else 'FAIL'}  {what}: max |difference| {diff:.3g} (tolerance {tol:g})")
    if not ok:
        failed.append(what)


m = dr.load(checkpoint)
print(f"{checkpoint}: {m.family}, networks {', '.join(m.networks)}")
with h5py.File(f"{out}/sample.h5", "r") as h:
    z, images = h["z"][...], h["images"][...]
close("z ~ N(0, I) (Philox streams)", m.prior_draws(len(z), seed=7), z, 0)
make = m.generate if m.family == "gan" else m.decode_mean
if m.autoregressive:  # distvae draws those pixel by pixel; the reader has no sampler
    print("not compared: sampled images (distvae draws them pixel by pixel; the reader has no sampler)")
else:
    close("sampled images", np.clip(make(z), 0, 1) if m.family == "gan" else make(z), images, 1e-5)

ev = None
if m.family != "gan":
    raw, _ = dr.load_raw_images(f"{out}/data/fmnist-test-*.h5")
    with h5py.File(f"{out}/enc.h5", "r") as h:
        mu_d, lv_d = h["mu"][...], h["logvar"][...]
    n = min(len(raw), 1000)
    x_int = raw[:n].astype(np.float64).transpose(0, 3, 1, 2) / 255.0  # as distvae encode sees them
    mu, lv = m.encode(x_int)
    close("encoder mu", mu, mu_d[:n], 1e-5)
    close("encoder logvar", lv, lv_d[:n], 1e-5)
    ev = json.load(open(f"{out}/eval.json"))
    k = ev["images"]
    x = m.binarize_for_eval(raw[:k])
    elbo, ll, kl = m.elbo(x)
    close("mean ELBO vs distvae eval", elbo.mean(), ev["elbo"], 1e-3)
    close("mean log p(x|z) vs distvae eval", ll.mean(), ev["log_px_given_z"], 1e-3)
    close("mean KL vs distvae eval", kl.mean(), ev["kl"], 1e-3)

try:
    import torch  # noqa: F401
except ImportError:
    print("SKIP [module:torch]: to_torch() not checked: torch is not importable "
          "(apt-get install python3-torch; bench/compare.sh installs it)")
else:
    torch = None
if torch is not None and m.autoregressive:
    try:
        m.to_torch()
        failed.append("to_torch() accepted an autoregressive decoder")
    except dr.CheckpointError as e:
        print(f"PASS  to_torch() refuses the autoregressive decoder: {e}")
elif torch is not None:
    t = m.using(m.to_torch())
    close("to_torch() sampled images", np.clip(t.generate(z), 0, 1) if m.family == "gan" else t.decode_mean(z),
          images, 1e-5)
    if ev is not None:
        close("to_torch() encoder mu", t.encode(x_int)[0], mu_d[:n], 1e-5)
        close("to_torch() mean ELBO vs distvae eval", t.elbo(x)[0].mean(), ev["elbo"], 1e-3)

sys.exit(1 if failed else 0)
