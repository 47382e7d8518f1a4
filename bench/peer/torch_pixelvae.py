#!/usr/bin/python3
"""PyTorch peer of configs/fmnist_pixelvae.yaml: the same PixelVAE, trained and evaluated as
`distvae train` and `distvae eval` do, or timed as `distvae bench` does.

The model mirrors the config layer for layer: the MLP encoder 784-512-256-(mu, logvar 2x32); the
decoder z-512-3136 reshaped to a 4 x 28 x 28 feature map, the binarized image put before it as
channel 0, a 7x7 conv with mask A on the image channel (the feature map's channels are seen whole),
two 3x3 convs with mask B, and a 1x1 conv to one Bernoulli logit per pixel; relu between. The
loss is distvae's estimator B: mean over the batch of -log p(x|z) + beta * sum_d max(lambda,
batch mean of KL_d) (free bits lambda, 0 for none). Adam (lr, betas 0.9/0.999, eps 1e-8), batch
128, dynamic binarization each epoch (torch's RNG; distvae draws from Philox, so the draws differ),
PyTorch's default initialization (distvae: Kaiming/Xavier normal).

Evaluation is distvae eval's protocol: the test images binarized once with the evaluation's seed
(bit for bit as distvae binarizes them, python/distvae_reader.py), the ELBO of each, the active
units (Cov_x E_q[z_d] > 0.01) and the importance-weighted bound with K samples on the first
--iw-images images.

  /usr/bin/python3 bench/peer/torch_pixelvae.py --config configs/fmnist_pixelvae.yaml \\
      --epochs 10 --threads 2 --iw 1000 --iw-images 10000
  /usr/bin/python3 bench/peer/torch_pixelvae.py --config configs/fmnist_pixelvae.yaml \\
      --bench --threads 2 --sample 64   # training images/s; the time to draw a 64-image grid
  /usr/bin/python3 bench/peer/torch_pixelvae.py --config configs/fmnist_pixelvae.yaml \\
      --load runs/pixelvae/checkpoints/ckpt-000010.h5 --iw 100 --iw-images 1000
      # distvae's trained model through the peer's evaluation
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import distvae_reader as reader  # noqa: E402


class MaskedConv2d(nn.Conv2d):
    """A PixelCNN convolution: tap (kh, kw) reads a pixel before the output pixel in raster order;
    mask A excludes the pixel itself, B includes it. Input channels from `open_from` on are not
    masked (the feature map of z)."""

    def __init__(self, cin, cout, k, mask, open_from=None):
        super().__init__(cin, cout, k, padding=k // 2)
        c = k // 2
        m = torch.zeros(k, k)
        m[:c, :] = 1
        m[c, :c] = 1
        if mask == "B":
            m[c, c] = 1
        full = torch.ones(cout, cin, k, k)
        full[:, : (cin if open_from is None else open_from)] = m
        self.register_buffer("mask", full)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelVae(nn.Module):
    def __init__(self, latent, feature_channels=4, width=32):
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                     nn.Linear(256, 2 * latent))
        self.to_map = nn.Sequential(nn.Linear(latent, 512), nn.ReLU(),
                                    nn.Linear(512, feature_channels * 784))
        self.fc = feature_channels
        self.pixelcnn = nn.Sequential(
            MaskedConv2d(1 + feature_channels, width, 7, "A", open_from=1), nn.ReLU(),
            MaskedConv2d(width, width, 3, "B"), nn.ReLU(),
            MaskedConv2d(width, width, 3, "B"), nn.ReLU(),
            nn.Conv2d(width, 1, 1))

    def encode(self, x):
        h = self.encoder(x.reshape(len(x), -1))
        return h[:, : self.latent], h[:, self.latent:]

    def logits(self, z, x):
        """Each pixel's Bernoulli logit given z and the pixels before it, (N, 784)."""
        feat = self.to_map(z).reshape(len(z), self.fc, 28, 28)
        return self.pixelcnn(torch.cat([x.reshape(len(x), 1, 28, 28), feat], 1)).reshape(len(z), -1)


def distvae_init(model):
    """distvae's initialization (Network::init): Kaiming normal before a relu, Xavier normal
    otherwise (fans over every tap, masked or not), zero biases."""
    for seq in (model.encoder, model.to_map, model.pixelcnn):
        mods = list(seq)
        for i, m in enumerate(mods):
            if not isinstance(m, (nn.Linear, nn.Conv2d)):
                continue
            taps = m.weight[0, 0].numel() if m.weight.dim() == 4 else 1
            fan_in, fan_out = m.weight.shape[1] * taps, m.weight.shape[0] * taps
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            std = math.sqrt(2 / fan_in) if relu else math.sqrt(2 / (fan_in + fan_out))
            with torch.no_grad():
                m.weight.normal_(0, std)
                m.bias.zero_()


def load_distvae(model, path):
    """A distvae checkpoint's values in the peer's modules, layer by layer in order (the masked
    weights as distvae applies them), so the peer's evaluation can score distvae's training."""
    m = reader.load(path)
    for name, seqs in (("encoder", [model.encoder]), ("decoder", [model.to_map, model.pixelcnn])):
        net = m[name]
        theirs = [l for l in net.desc["layers"] if l.get("weight")]
        ours = [mod for seq in seqs for mod in seq if isinstance(mod, (nn.Linear, nn.Conv2d))]
        if len(theirs) != len(ours):
            sys.exit(f"{path}: {name} has {len(theirs)} weighted layers, the peer {len(ours)}")
        for l, mod in zip(theirs, ours):
            w = torch.as_tensor(net.weight(l), dtype=torch.float32)
            if w.shape != mod.weight.shape:
                sys.exit(f"{path}: {name} layer {l['name']} is {tuple(w.shape)}, the peer's "
                         f"{tuple(mod.weight.shape)}")
            with torch.no_grad():
                mod.weight.copy_(w)
                mod.bias.copy_(torch.as_tensor(net.param(l["bias"]), dtype=torch.float32))


def log_px_given_z(logits, x):
    return -F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), -1), reduction="none").sum(1)


def kl_dims(mu, logvar):
    return 0.5 * (mu * mu + logvar.exp() - logvar - 1)  # (N, latent)


def loss_fn(model, x, beta, free_bits):
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    ll = log_px_given_z(model.logits(z, x), x)
    kl = kl_dims(mu, logvar)
    kl_term = kl.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl.sum(1).mean()
    return -ll.mean() + beta * kl_term, ll.detach(), kl.sum(1).detach()


def config(path):
    with open(path) as f:
        c = yaml.safe_load(f)
    o = c.get("objective", {})
    return {
        "latent": c["model"]["latent"],
        "beta": o.get("beta", 1.0),
        "free_bits": o.get("free_bits", 0.0),
        "warmup": o.get("warmup_epochs", 0.0),
        "lr": c.get("optim", {}).get("lr", 1e-3),
        "batch": c.get("train", {}).get("batch", 128),
        "train": c["data"]["train"], "test": c["data"]["test"],
        "binarize_seed": c.get("eval", {}).get("binarize_seed", 12345),
    }


@torch.no_grad()
def evaluate(model, x, K, iw_images, chunk=100):
    """Per-image ELBO (mean), active units and the IW bound (mean over the first iw_images)."""
    elbos, mus = [], []
    for i in range(0, len(x), 500):
        xb = x[i:i + 500]
        mu, logvar = model.encode(xb)
        # the ELBO with one z per image, as distvae eval (estimator B: analytic KL)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        elbos.append(log_px_given_z(model.logits(z, xb), xb) - kl_dims(mu, logvar).sum(1))
        mus.append(mu)
    mu = torch.cat(mus)
    active = int(((mu * mu).mean(0) - mu.mean(0) ** 2 > 0.01).sum())
    iw = []
    t0 = time.time()
    for i in range(min(iw_images, len(x))):
        xi = x[i:i + 1]
        m, lv = model.encode(xi)
        logw = []
        for k0 in range(0, K, chunk):
            c = min(chunk, K - k0)
            eps = torch.randn(c, model.latent)
            z = m + (0.5 * lv).exp() * eps
            lp = -0.5 * (z * z + math.log(2 * math.pi)).sum(1)
            lq = -0.5 * (eps * eps + lv + math.log(2 * math.pi)).sum(1)
            logw.append(log_px_given_z(model.logits(z, xi.expand(c, -1, -1, -1)), xi.expand(c, -1, -1, -1)) + lp - lq)
        logw = torch.cat(logw)
        iw.append(float(torch.logsumexp(logw, 0) - math.log(K)))
        if (i + 1) % 500 == 0:
            print(f"  iw: {i + 1} images, so far {np.mean(iw):.3f} nats ({time.time() - t0:.0f} s)", flush=True)
    return float(torch.cat(elbos).mean()), active, (float(np.mean(iw)) if iw else float("nan"))


def train(a, c, model):
    raw, _ = reader.load_raw_images(c["train"])
    images = torch.as_tensor(raw.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)
    opt = torch.optim.Adam(model.parameters(), lr=c["lr"], eps=1e-8)
    B, n = c["batch"], len(images)
    steps = n // B + (n % B > 0)
    t_train = 0.0
    for epoch in range(a.epochs):
        beta = c["beta"] * (min(1.0, epoch / c["warmup"]) if c["warmup"] > 0 else 1.0)
        perm = torch.randperm(n)
        t0 = time.time()
        sums = np.zeros(2)
        for s in range(steps):
            x = torch.bernoulli(images[perm[s * B:(s + 1) * B]])
            loss, ll, kl = loss_fn(model, x, beta, c["free_bits"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [float((ll - kl).sum()), float(kl.sum())]
        dt = time.time() - t0
        t_train += dt
        print(f"epoch {epoch + 1} done in {dt:.1f} s ({n / dt:.0f} img/s)  train elbo "
              f"{sums[0] / n:.2f}  kl {sums[1] / n:.2f}", flush=True)
    return t_train


def bench(a, c, model):
    opt = torch.optim.Adam(model.parameters(), lr=c["lr"], eps=1e-8)
    x = torch.bernoulli(torch.full((c["batch"], 1, 28, 28), 0.3))

    def step():
        loss, _, _ = loss_fn(model, x, c["beta"], c["free_bits"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(f"torch {torch.__version__} pixelvae, {a.threads} thread(s), batch {c['batch']}: "
          f"{a.steps * c['batch'] / dt:.1f} images/s ({1000 * dt / a.steps:.2f} ms/step)")
    if a.sample:
        t0 = time.perf_counter()
        sample(model, a.sample)
        print(f"drew {a.sample} images pixel by pixel (784 passes) in {time.perf_counter() - t0:.2f} s")


@torch.no_grad()
def sample(model, n):
    """x ~ p(x|z), z ~ N(0, I), pixel by pixel in raster order: 784 passes of the masked stack
    on the same feature map, as distvae's Vae::draw_images."""
    z = torch.randn(n, model.latent)
    feat = model.to_map(z).reshape(n, model.fc, 28, 28)
    x = torch.zeros(n, 1, 28, 28)
    for p in range(784):
        r, c = divmod(p, 28)
        prob = torch.sigmoid(model.pixelcnn(torch.cat([x, feat], 1))[:, 0, r, c])
        x[:, 0, r, c] = torch.bernoulli(prob)
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--iw", type=int, default=1000, help="importance samples per test image")
    p.add_argument("--iw-images", type=int, default=10000, help="test images for the IW bound")
    p.add_argument("--bench", action="store_true", help="time training steps instead")
    p.add_argument("--init", choices=["torch", "distvae"], default="torch",
                   help="PyTorch's default initialization, or distvae's (Kaiming/Xavier normal)")
    p.add_argument("--load", metavar="CHECKPOINT",
                   help="evaluate this distvae checkpoint (same model) instead of training")
    p.add_argument("--steps", type=int, default=30, help="--bench: timed steps")
    p.add_argument("--warmup", type=int, default=5, help="--bench: untimed steps first")
    p.add_argument("--sample", type=int, default=0,
                   help="--bench: also time drawing this many images pixel by pixel")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = config(a.config)
    model = PixelVae(c["latent"])
    if a.init == "distvae":
        distvae_init(model)
    if a.bench:
        return bench(a, c, model)
    if a.load:
        load_distvae(model, a.load)
        a.epochs = 0
    t_train = train(a, c, model)
    raw, _ = reader.load_raw_images(c["test"])
    x = torch.as_tensor(reader.binarize(raw, c["binarize_seed"], np.arange(len(raw))).astype(np.float32))
    t0 = time.time()
    elbo, active, iw = evaluate(model, x, a.iw, a.iw_images)
    print(f"trained {a.epochs} epochs in {t_train:.0f} s; test elbo {elbo:.3f} nats, active units "
          f"{active} of {c['latent']}, iw log-likelihood (K={a.iw}, {min(a.iw_images, len(x))} "
          f"images) {iw:.3f} nats ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
