"""Read a distvae checkpoint in Python: the networks as numpy forward passes, and as PyTorch modules.

numpy and h5py only (Debian: python3-numpy, python3-h5py); torch only for to_torch(). The layout
this reads is docs/checkpoint.md; the networks come from the checkpoint's "model" attribute
(format 2), never from the YAML config.

    import distvae_reader as dr
    m = dr.load("runs/demo/checkpoints/ckpt-000010.h5")
    images, labels = dr.load_images("data/fmnist-test-*.h5")   # (N, C, H, W) in [0, 1]
    mu, logvar = m.encode(images)                               # posterior means, log-variances
    logits = m.decode(mu)                                       # decoder output (bernoulli: logits)
    raw, _ = dr.load_raw_images("data/fmnist-test-*.h5")        # stored uint8 (N, H, W, C)
    elbo, log_px_given_z, kl = m.elbo(m.binarize_for_eval(raw))  # what `distvae eval` averages

Every number is computed the way distvae computes it, in float64 from the stored float32 values;
the random draws (dynamic binarization, reparameterization noise, z ~ N(0, I)) are distvae's own
Philox4x32-10 streams (core/rng.h), so elbo() reproduces `distvae eval` image by image.
"""

import glob
import json

import h5py
import numpy as np

FORMAT = 2  # the newest checkpoint format this reader knows (io/hdf5/checkpoint.h)


class CheckpointError(ValueError):
    """A checkpoint this reader cannot use; the message says why and what to do."""


# ---- distvae's random numbers (core/philox.h, core/rng.h) ----

PURPOSE = {"reparam_noise": 2, "binarize": 3, "prior_sample": 4}  # rng_purpose, never renumbered


def stream_id(purpose, index):
    """purpose << 48 | index: the stream of draws for one use (an image, a batch slot)."""
    return (np.uint64(PURPOSE[purpose]) << np.uint64(48)) | np.asarray(index, dtype=np.uint64)


def philox_words(seed, stream, block):
    """Philox4x32-10 blocks: (..., 4) uint32 words for counter {block, stream}, key seed."""
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    lo = np.uint64(0xFFFFFFFF)
    block, stream = np.broadcast_arrays(np.asarray(block, dtype=np.uint64),
                                        np.asarray(stream, dtype=np.uint64))
    c0, c1 = block & lo, block >> np.uint64(32)
    c2, c3 = stream & lo, stream >> np.uint64(32)
    k0, k1 = np.uint64(seed) & lo, np.uint64(seed) >> np.uint64(32)
    for r in range(10):
        if r:  # the Weyl key schedule, before every round but the first
            k0, k1 = (k0 + np.uint64(0x9E3779B9)) & lo, (k1 + np.uint64(0xBB67AE85)) & lo
        p0, p1 = m0 * c0, m1 * c2  # 32 x 32 -> 64-bit products, exact
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & lo, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & lo
    return np.stack([c0, c1, c2, c3], axis=-1)


def stream_words(seed, streams, n):
    """Words 0..n-1 of each stream (one row per stream): (len(streams), n) uint64."""
    streams = np.asarray(streams, dtype=np.uint64).reshape(-1, 1)
    blocks = np.arange((n + 3) // 4, dtype=np.uint64).reshape(1, -1)
    return philox_words(seed, streams, blocks).reshape(streams.shape[0], -1)[:, :n]


def stream_normals(seed, streams, offset, n):
    """Standard normals offset..offset+n-1 of each stream, Box-Muller in double on the word
    pairs (0, 1) and (2, 3) of a block: r = sqrt(-2 log u_a), z = (r cos 2pi u_b, r sin 2pi u_b)."""
    first, last = offset // 4, (offset + n + 3) // 4
    streams = np.asarray(streams, dtype=np.uint64).reshape(-1, 1)
    w = philox_words(seed, streams, np.arange(first, last, dtype=np.uint64).reshape(1, -1))
    u = (w.astype(np.float64) + 0.5) * 2.0**-32
    r = np.sqrt(-2.0 * np.log(u[..., 0::2]))
    theta = 2 * np.pi * u[..., 1::2]
    z = np.stack([r[..., 0] * np.cos(theta[..., 0]), r[..., 0] * np.sin(theta[..., 0]),
                  r[..., 1] * np.cos(theta[..., 1]), r[..., 1] * np.sin(theta[..., 1])], axis=-1)
    z = z.reshape(streams.shape[0], -1)
    return z[:, offset - 4 * first: offset - 4 * first + n]


def binarize(images_u8, seed, keys):
    """distvae's dynamic binarization: stored pixel i (HWC order) of image b is 1 with
    probability k/255, decided by word i of stream (binarize, keys[b]). Returns (N, C, H, W)."""
    x = np.asarray(images_u8)
    n, h, w, c = x.shape
    words = stream_words(seed, stream_id("binarize", keys), h * w * c).reshape(n, h, w, c)
    ones = 255 * words + 128 <= x.astype(np.uint64) << np.uint64(32)
    return ones.astype(np.float64).transpose(0, 3, 1, 2)


def load_images(pattern, max_images=None):
    """The shards matching pattern, in distvae's order (sorted names): (N, C, H, W) intensities in
    [0, 1] and the labels (None when the shards have none)."""
    raw, labels = load_raw_images(pattern, max_images)
    return raw.astype(np.float64).transpose(0, 3, 1, 2) / 255.0, labels


def load_raw_images(pattern, max_images=None):
    """The stored uint8 images (N, H, W, C) and labels of the shards matching pattern."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise CheckpointError(f"{pattern}: no files match")
    images, labels = [], []
    for f in files:
        with h5py.File(f, "r") as h:
            images.append(h["images"][...])
            labels.append(h["labels"][...] if "labels" in h else None)
    x = np.concatenate(images)
    y = None if any(v is None for v in labels) else np.concatenate(labels)
    if max_images:
        x, y = x[:max_images], (None if y is None else y[:max_images])
    return x, y


# ---- layers (core/layers.h; the reference backend's loops, as array operations) ----

def activation(x, name, alpha):
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if name == "elu":
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    if name == "softplus":
        return softplus(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    raise CheckpointError(f"unknown activation '{name}'")


def softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def pixelcnn_mask(kernel, mask):
    """A masked conv2d's (K, K) mask, broadcast over its channels: 1 at the taps that read pixels
    before the output pixel in raster order (rows above; to the left on its own row), and the
    pixel itself for mask "B"."""
    c = kernel // 2
    m = np.zeros((kernel, kernel))
    m[:c, :] = 1
    m[c, :c] = 1
    if mask == "B":
        m[c, c] = 1
    return m


def conv2d(x, w, b, stride, pad, out_hw):
    """y[n, o, i, j] = b[o] + sum_{c, kh, kw} x[n, c, i s - p + kh, j s - p + kw] w[o, c, kh, kw]."""
    ho, wo = out_hw
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for kh in range(k):
        for kw in range(k):
            tap = xp[:, :, kh: kh + stride * (ho - 1) + 1: stride, kw: kw + stride * (wo - 1) + 1: stride]
            y += np.einsum("nchw,oc->nohw", tap, w[:, :, kh, kw], optimize=True)
    return y if b is None else y + b[None, :, None, None]


def deconv2d(x, w, b, stride, pad, out_hw):
    """Transposed convolution, weights (Cout, Cin, K, K): y[n, o, i s - p + kh, j s - p + kw] +=
    x[n, c, i, j] w[o, c, kh, kw]."""
    ho, wo = out_hw
    n, _, h, wi = x.shape
    k = w.shape[2]
    full = np.zeros((n, w.shape[0], max((h - 1) * stride + k, ho + pad), max((wi - 1) * stride + k, wo + pad)))
    for kh in range(k):
        for kw in range(k):
            full[:, :, kh: kh + stride * (h - 1) + 1: stride, kw: kw + stride * (wi - 1) + 1: stride] += \
                np.einsum("nchw,oc->nohw", x, w[:, :, kh, kw], optimize=True)
    y = full[:, :, pad: pad + ho, pad: pad + wo]
    return y if b is None else y + b[None, :, None, None]


class Network:
    """One network of the checkpoint: its resolved layer list and its flat values array."""

    def __init__(self, name, desc, values):
        self.name, self.desc, self.values = name, desc, values
        self.input, self.output = tuple(desc["input"]), tuple(desc["output"])

    def param(self, s):
        """A parameter tensor: values[offset, offset + size) in its row-major shape."""
        if s is None:
            return None
        size = int(np.prod(s["shape"]))
        return self.values[s["offset"]: s["offset"] + size].astype(np.float64).reshape(s["shape"])

    def weight(self, l):
        """A layer's weights as the layer uses them: times its PixelCNN mask, if it has one. The
        mask covers input channels below mask_channels; those after (a feature map of z, right
        after an autoregressive layer) are seen whole."""
        w = self.param(l["weight"])
        if not l.get("mask"):
            return w
        m = np.ones(w.shape)
        # (checkpoints from before autoregressive decoders mask every input channel)
        m[:, : l.get("mask_channels", w.shape[1])] = pixelcnn_mask(l["kernel"], l["mask"])
        return w * m

    def __call__(self, x, image=None):
        """The forward pass in evaluation mode (batch norms by their running averages); image:
        the images (N, C, H, W) an autoregressive layer puts before its feature map."""
        x = np.asarray(x, dtype=np.float64).reshape((-1,) + self.input)
        for l in self.desc["layers"]:
            x = self.layer(l, x, image).reshape((-1,) + tuple(l["out"]))
        return x

    def layer(self, l, x, image=None):
        kind, act, alpha = l["kind"], l["activation"], l.get("alpha", 0.0)
        out = tuple(l["out"])
        if kind == "view":
            return x
        if kind == "autoregressive":
            if image is None:
                raise CheckpointError(f"{l['name']}: an autoregressive decoder needs the image")
            image = np.asarray(image, dtype=np.float64).reshape((len(x), -1) + out[1:])
            return np.concatenate([image, x], axis=1)
        if kind == "activation":
            return activation(x, act, alpha)
        w, b = self.weight(l), self.param(l["bias"])
        if kind == "linear":
            y = x @ w.T + (0 if b is None else b)
        elif kind == "conv2d":
            y = conv2d(x, w, b, l["stride"], l["padding"], out[1:])
        elif kind == "deconv2d":
            y = deconv2d(x, w, b, l["stride"], l["padding"], out[1:])
        elif kind == "batchnorm":
            shape = (1, -1) + (1,) * (x.ndim - 2)  # a channel per feature (F) or per map (C, H, W)
            mean, var = self.param(l["running_mean"]), self.param(l["running_var"])
            a = w / np.sqrt(var + l["eps"])
            y = x * a.reshape(shape) + (b - mean * a).reshape(shape)
        else:
            raise CheckpointError(f"{l['name']}: unknown layer kind '{kind}'")
        return activation(y, act, alpha)


class Model:
    """A checkpoint's model: its networks by name, and the family's operations on them."""

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as h:
            version = int(h.attrs.get("format_version", 1))
            if version > FORMAT:
                raise CheckpointError(
                    f"{path}: checkpoint format {version} was written by a newer distvae; this "
                    f"reader knows formats up to {FORMAT}: use the distvae_reader.py of that "
                    "version (python/ in its source)")
            if version < 2 or "model" not in h.attrs:
                raise CheckpointError(
                    f"{path}: checkpoint format 1 (written by a distvae from before 2026-12) has no "
                    "model description, so its networks cannot be rebuilt here; distvae itself "
                    "still reads it (eval, encode, sample), and a run resumed from it "
                    "(distvae train ... --resume) writes format 2 checkpoints")
            self.desc = json.loads(_text(h.attrs["model"]))
            self.config = _text(h.attrs["config"])
            self.format = version
            self.networks = {name: Network(name, d, h[d["values"]][...])
                             for name, d in self.desc["networks"].items()}
        self.family, self.latent = self.desc["family"], self.desc["latent"]
        img = self.desc["image"]
        self.image_shape = (img["channels"], img["height"], img["width"])
        dec = self.desc["networks"].get("decoder", {"layers": []})
        # A PixelCNN decoder: its output needs the image (decode(z, x)); no sampler here.
        self.autoregressive = any(l["kind"] == "autoregressive" for l in dec["layers"])
        self._nets = self.networks  # what the forward passes run: numpy, or to_torch()'s modules

    def __getitem__(self, name):
        return self.networks[name]

    def run(self, name, x, image=None):
        return self._nets[name](x) if image is None else self._nets[name](x, image)

    # -- VAE families --

    def encode(self, x):
        """Posterior q(z|x) = N(mu, diag exp(logvar)) of images x ((N, C, H, W) or (N, C*H*W))."""
        self._need("encoder", "encode")
        h = self.run("encoder", np.asarray(x).reshape(len(x), -1))
        return h[:, : self.latent], h[:, self.latent:]

    def decode(self, z, x=None):
        """The decoder's output for codes z (N, latent), (N, C*H*W): bernoulli logits, gaussian
        means, or [means | logvars] (N, 2 C*H*W) for a learned variance. An autoregressive
        decoder's logits are those of p(x|z) at the images x, each pixel's given those before."""
        self._need("decoder", "decode")
        return self.run("decoder", z, x).reshape(len(z), -1)

    def decode_mean(self, z):
        """The images `distvae sample` draws: decoder means, clamped to [0, 1], (N, C*H*W)."""
        out = self.decode(z)
        lik = self.desc["likelihood"]
        d = int(np.prod(self.image_shape))
        mean = 1 / (1 + np.exp(-out)) if lik["kind"] == "bernoulli" else out[:, :d]
        return np.clip(mean, 0, 1)

    def log_px_given_z(self, x, out):
        """log p(x|z) per image from the decoder's output (objectives.h)."""
        lik = self.desc["likelihood"]
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if lik["kind"] == "bernoulli":
            return np.sum(x * out - softplus(out), axis=1)
        d = x.shape[1]
        if lik["variance"] == "learned":
            mean, v = out[:, :d], np.maximum(out[:, d:], lik["logvar_floor"])
        else:
            mean, v = out, lik["fixed_logvar"]
        return np.sum(-0.5 * (np.log(2 * np.pi) + v + (x - mean) ** 2 * np.exp(-v)), axis=1)

    def elbo(self, x, seed=None, keys=None):
        """Per-image ELBO, log p(x|z) and KL, as `distvae eval` computes them: z = mu + sigma eps
        with eps from stream (reparam_noise, keys[i]) under seed (default: the evaluation's noise
        seed), the checkpoint's estimator (B: analytic KL; A: log q(z|x) - log p(z) at z) and
        samples; the implicit prior's ELBO adds T(z). x: the (binarized) images; keys: each
        image's index in the evaluated set (default 0..N-1). Returns (elbo, log_px_given_z, kl)."""
        self._need("encoder", "elbo")
        seed = self.desc["evaluation"]["noise_seed"] if seed is None else seed
        keys = np.arange(len(x)) if keys is None else np.asarray(keys)
        mu, logvar = self.encode(x)
        s_count, lat = self.desc["samples"], self.latent
        ll, kl, cost = np.zeros(len(x)), np.zeros(len(x)), np.zeros(len(x))
        streams = stream_id("reparam_noise", keys)
        for s in range(s_count):
            eps = stream_normals(seed, streams, s * lat, lat).astype(np.float32).astype(np.float64)
            z = mu + np.exp(0.5 * logvar) * eps
            ll += self.log_px_given_z(x, self.decode(z, x)) / s_count
            if self.desc["estimator"] == "A":
                log_q = np.sum(-0.5 * (np.log(2 * np.pi) + logvar + eps**2), axis=1)
                log_p = np.sum(-0.5 * (np.log(2 * np.pi) + z**2), axis=1)
                kl += (log_q - log_p) / s_count
            if self.desc["prior"] == "implicit":
                cost -= self.log_density_ratio(z) / s_count
        if self.desc["estimator"] == "B":
            kl = np.sum(0.5 * (mu**2 + np.exp(logvar) - logvar - 1), axis=1)
        return ll - kl - cost, ll, kl

    def log_density_ratio(self, z):
        """The implicit prior's T(z), the discriminator's logit, bounded by the cap c when one is
        set: T = c - softplus(c - t)."""
        t = self.run("discriminator", z).reshape(len(z))
        c = self.desc.get("discriminator_cap", 0)
        return t if not c else c - softplus(c - t)

    def binarize_for_eval(self, images_u8, keys=None):
        """Stored uint8 images (N, H, W, C) as `distvae eval` sees them: binarized under the
        evaluation's seed (when training binarized), else intensities in [0, 1]; (N, C, H, W)."""
        ev = self.desc["evaluation"]
        keys = np.arange(len(images_u8)) if keys is None else keys
        if ev["binarize"]:
            return binarize(images_u8, ev["binarize_seed"], keys)
        return np.asarray(images_u8, dtype=np.float64).transpose(0, 3, 1, 2) / 255.0

    # -- GAN --

    def generate(self, z):
        """The generator's output for z (N, latent), (N, C*H*W); `distvae sample` clamps it to
        [0, 1]."""
        self._need("generator", "generate")
        return self.run("generator", z).reshape(len(z), -1)

    def prior_draws(self, n, seed=1):
        """The z ~ N(0, I) of `distvae sample --seed SEED --n N`: (N, latent)."""
        z = stream_normals(seed, stream_id("prior_sample", 1), 0, n * self.latent)
        return z.astype(np.float32).astype(np.float64).reshape(n, self.latent)

    # -- PyTorch --

    def to_torch(self, dtype=None):
        """Every network as a torch.nn.Module (evaluation mode) with the checkpoint's weights, by
        name. Model.using(modules) runs this model's operations through them."""
        import torch
        return {name: _torch_network(net, torch, dtype or torch.float64) for name, net in self.networks.items()}

    def using(self, modules):
        """A view of this model whose forward passes run through modules (to_torch()'s)."""
        import copy
        import torch
        view = copy.copy(self)

        def wrap(mod):
            p = next(iter(mod.parameters()), None)
            dt = p.dtype if p is not None else torch.float64

            def f(x):
                with torch.no_grad():
                    return mod(torch.as_tensor(np.asarray(x), dtype=dt)).double().numpy()
            return f
        view._nets = {name: wrap(m) for name, m in modules.items()}
        return view

    def _need(self, net, what):
        if net not in self.networks:
            raise CheckpointError(f"{what}: {self.path} holds a {self.family}, which has no {net}")


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _torch_network(net, torch, dtype):
    """torch.nn.Sequential of net's layers; the weights copied, deconv weights transposed to
    ConvTranspose2d's (Cin, Cout, K, K)."""
    nn = torch.nn
    reshape = _reshape_class(torch)
    mods = []

    def t(s):
        return torch.as_tensor(net.param(s), dtype=dtype)

    mods.append(reshape(net.input))
    for l in net.desc["layers"]:
        kind, inp, out = l["kind"], l["in"], l["out"]
        if kind == "linear":
            m = nn.Linear(inp[0], out[0], bias=l["bias"] is not None)
        elif kind == "conv2d":
            m = nn.Conv2d(inp[0], out[0], l["kernel"], l["stride"], l["padding"], bias=l["bias"] is not None)
        elif kind == "deconv2d":
            k, s, p = l["kernel"], l["stride"], l["padding"]
            op = out[1] - ((inp[1] - 1) * s - 2 * p + k)
            m = nn.ConvTranspose2d(inp[0], out[0], k, s, p, output_padding=op, bias=l["bias"] is not None)
        elif kind == "batchnorm":
            bn = nn.BatchNorm1d if len(inp) == 1 else nn.BatchNorm2d
            m = bn(inp[0], eps=l["eps"], momentum=l["momentum"])
            m.running_mean.data = t(l["running_mean"])
            m.running_var.data = t(l["running_var"])
        elif kind == "view":
            m = reshape(out)
        elif kind == "autoregressive":
            raise CheckpointError(f"{l['name']}: to_torch() has no autoregressive layer; use the "
                                  "numpy forward (decode(z, x))")
        else:
            m = None
        if m is not None and kind != "view":
            w = torch.as_tensor(net.weight(l), dtype=dtype)  # masked: fixed as loaded
            m.weight.data = w.transpose(0, 1).contiguous() if kind == "deconv2d" else w
            if l["bias"] is not None:
                m.bias.data = t(l["bias"])
        if m is not None:
            mods.append(m.to(dtype))
        act = _torch_activation(nn, l["activation"], l.get("alpha", 0.0))
        if act is not None:
            mods.append(act)
    return nn.Sequential(*mods).eval()


def _torch_activation(nn, name, alpha):
    return {"none": None, "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(alpha), "elu": nn.ELU(alpha),
            "softplus": nn.Softplus(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}[name]


def _reshape_class(torch):
    class Reshape(torch.nn.Module):
        """x -> (batch,) + shape: distvae's flatten and reshape layers, and a network's input."""

        def __init__(self, shape):
            super().__init__()
            self.shape = tuple(shape)

        def forward(self, x):
            return x.reshape((x.shape[0],) + self.shape)
    return Reshape


def load(path):
    """The model of a distvae checkpoint (docs/checkpoint.md)."""
    return Model(path)
