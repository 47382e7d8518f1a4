#!/usr/bin/python3
"""PyTorch peer of `distvae bench`: the same four models, training steps only, on synthetic batches.

Each model mirrors its configs/ file (shapes, batch, Adam settings) and does the same work per
step as distvae's Trainee:
  vae_mlp         fmnist_vae_mlp.yaml: 784-512-256-(mu, logvar 2x32) / 32-256-512-784 logits,
                  Bernoulli likelihood, analytic KL (estimator B), batch 128, Adam 1e-3
  vae_conv        fmnist_vae_conv.yaml: conv 1-32-64 k4 s2 p1 + linear / linear + deconv 64-32-1
  implicit_prior  fmnist_implicit_prior.yaml: vae_mlp + T(z) 32-256-256-1 (ELU). Per step one T
                  step on q samples (encoder under no_grad, fresh noise) and N(0, I) samples in one
                  batch, then the VAE step with -T(z) in its loss through T frozen (no T weight
                  gradients)
  dcgan           fmnist_gan_dcgan.yaml: G 64-3136-(64x7x7)-bn-deconv 32-bn-1-sigmoid, D conv
                  1-32-64-bn leaky 0.2 + linear, batch 64, Adam 2e-4 beta1 0.5. D on real and
                  G(z) as two batches (G under no_grad), then G on fresh z through D frozen

Timed like distvae bench: --warmup untimed steps, then --steps timed steps; prints images/s.
--iw K times the importance-weighted evaluation instead (like `distvae bench --iw K`).
--procs N runs DistributedDataParallel over gloo (vae_mlp, vae_conv) with --batch per process.
--device cuda runs on the GPU (one process), synchronizing before every timer read; FP32 without
TF32 (as distvae's cuda backend) unless --tf32. --compile wraps the networks in torch.compile
(the optimizers stay eager), on either device.

Run with the OpenMP OpenBLAS, torch's fastest CPU path on Debian (bench/compare.sh does this):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX \\
    /usr/bin/python3 bench/peer/torch_peer.py --model vae_mlp --threads 1
"""
import argparse
import os
import time

MODELS = ["vae_mlp", "vae_conv", "implicit_prior", "dcgan"]


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--steps", type=int, default=100, help="timed training steps")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    p.add_argument("--batch", type=int, default=0, help="per process (default: the config's)")
    p.add_argument("--procs", type=int, default=1,
                   help="processes; > 1: DistributedDataParallel over gloo (VAE models only)")
    p.add_argument("--port", type=int, default=29517, help="rendezvous port for --procs > 1")
    p.add_argument("--iw", type=int, default=0,
                   help="> 0: time the importance-weighted evaluation with K = IW instead")
    p.add_argument("--images", type=int, default=1000, help="images for --iw")
    p.add_argument("--iw-batch", type=int, default=100, help="samples per pass (eval.iw_batch)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: the first visible GPU, one process")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the networks (warm-up steps include the compilation)")
    p.add_argument("--tf32", action="store_true",
                   help="cuda: let matmuls and convolutions use TF32 (default: full FP32)")
    a = p.parse_args()
    if a.device == "cuda" and a.procs > 1:
        p.error("--device cuda runs one process (--procs 1)")
    if a.procs > 1 and a.model not in ("vae_mlp", "vae_conv"):
        p.error("--procs > 1 supports vae_mlp and vae_conv only")
    if a.iw > 0 and (a.procs > 1 or a.model not in ("vae_mlp", "vae_conv")):
        p.error("--iw supports vae_mlp and vae_conv in one process")
    return a


def vae_nets(model, L, nn):
    """The encoder (image -> (mu, logvar)), the decoder (z -> logits) and the image shape."""
    if model == "vae_conv":
        enc = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(),   # 32 x 14 x 14
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),  # 64 x 7 x 7
            nn.Flatten(), nn.Linear(3136, 2 * L))   # (mu, logvar)
        dec = nn.Sequential(
            nn.Linear(L, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),     # 32 x 14 x 14
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Flatten())  # 784 logits
        return enc, dec, (1, 28, 28)
    enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                        nn.Linear(256, 2 * L))
    dec = nn.Sequential(nn.Linear(L, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                        nn.Linear(512, 784))
    return enc, dec, (784,)


def iw_eval(a, torch, dev):
    """distvae eval's importance-weighted bound on synthetic binary images: per batch of
    --iw-batch images the ELBO, then per image K samples in passes of --iw-batch (eval.iw_batch),
    log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) by logsumexp. Returns the mean bound."""
    import math
    F = torch.nn.functional
    L = 32
    enc, dec, shape = vae_nets(a.model, L, torch.nn)
    enc, dec = maybe_compile(enc.to(dev), a, torch), maybe_compile(dec.to(dev), a, torch)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand((a.images,) + shape, generator=g) >= 0.5).float().to(dev)
    log2pi = math.log(2 * math.pi)
    total, B = 0.0, a.iw_batch
    with torch.no_grad():
        for first in range(0, a.images, B):
            xb = x[first:first + B]
            mu, logvar = enc(xb).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            ll = -F.binary_cross_entropy_with_logits(dec(z), xb.flatten(1), reduction="none")
            elbo = ll.sum(1) - 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
            assert torch.isfinite(elbo).all()
            for i in range(xb.shape[0]):
                xi = xb[i:i + 1].flatten(1)
                logw = []
                for k0 in range(0, a.iw, B):
                    c = min(B, a.iw - k0)
                    eps = torch.randn(c, L, device=dev)
                    zk = mu[i] + torch.exp(0.5 * logvar[i]) * eps
                    lx = -F.binary_cross_entropy_with_logits(
                        dec(zk), xi.expand(c, -1), reduction="none").sum(1)
                    lp = -0.5 * (log2pi + zk.pow(2)).sum(1)
                    lq = -0.5 * (log2pi + logvar[i] + eps.pow(2)).sum(1)
                    logw.append(lx + lp - lq)
                total += float(torch.logsumexp(torch.cat(logw), 0)) - math.log(a.iw)
    return total / a.images


def maybe_compile(net, a, torch):
    """net, or torch.compile(net) under --compile (the parameters stay net's)."""
    return torch.compile(net) if a.compile else net


def build(a, B, torch, ddp, dev):
    """The model's networks (on dev) and optimizers; returns (step(x), per-image input shape)."""
    nn, F = torch.nn, torch.nn.functional
    model = a.model

    def adam(params, lr, beta1=0.9):
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), eps=1e-8)

    if model == "dcgan":
        L = 64
        G = nn.Sequential(
            nn.Linear(L, 3136, bias=False), nn.Unflatten(1, (64, 7, 7)),
            nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False),  # 32 x 14 x 14
            nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid())  # 1 x 28 x 28
        D = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),     # 32 x 14 x 14
            nn.Conv2d(32, 64, 4, 2, 1, bias=False),           # 64 x 7 x 7
            nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(3136, 1))
        G, D = G.to(dev), D.to(dev)
        g_opt, d_opt = adam(G.parameters(), 2e-4, 0.5), adam(D.parameters(), 2e-4, 0.5)
        Gc, Dc = maybe_compile(G, a, torch), maybe_compile(D, a, torch)

        def step(x):
            with torch.no_grad():
                fake = Gc(torch.randn(B, L, device=dev))
            # each class its own batch (batch norm), per-class means
            d_loss = F.softplus(-Dc(x)).mean() + F.softplus(Dc(fake)).mean()
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            D.requires_grad_(False)  # the generator step reaches G only
            g_loss = F.softplus(-Dc(Gc(torch.randn(B, L, device=dev)))).mean()  # -log D(G(z))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            D.requires_grad_(True)
        return step, (1, 28, 28)

    L = 32
    enc, dec, shape = vae_nets(model, L, nn)

    class Vae(nn.Module):  # one module, so DDP buckets encoder and decoder together
        def __init__(self):
            super().__init__()
            self.enc, self.dec = enc, dec

        def forward(self, x):
            mu, logvar = self.enc(x).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            return self.dec(z), mu, logvar, z

    vae = Vae().to(dev)
    opt = adam(vae.parameters(), 1e-3)
    net = nn.parallel.DistributedDataParallel(vae) if ddp else vae
    net = maybe_compile(net, a, torch)
    T = None
    if model == "implicit_prior":
        T = nn.Sequential(nn.Linear(L, 256), nn.ELU(), nn.Linear(256, 256), nn.ELU(),
                          nn.Linear(256, 1)).to(dev)
        t_opt = adam(T.parameters(), 1e-3)
        Tc, enc_c = maybe_compile(T, a, torch), maybe_compile(enc, a, torch)

    def step(x):
        if T is not None:
            with torch.no_grad():  # T's step leaves the encoder alone
                mu, logvar = enc_c(x).chunk(2, dim=1)
                zq = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            t = Tc(torch.cat([zq, torch.randn_like(zq)]))  # q rows label 1, N(0, I) rows label 0
            t_loss = F.softplus(-t[:B]).mean() + F.softplus(t[B:]).mean()
            t_opt.zero_grad(set_to_none=True)
            t_loss.backward()
            t_opt.step()
            T.requires_grad_(False)  # frozen: its input gradient reaches z, no weight gradients
        logits, mu, logvar, z = net(x)
        ll = -F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        loss = (kl - ll).mean()
        if T is not None:
            loss = loss - Tc(z).mean()  # KL(q(z|x)||q(z)) = KL(q(z|x)||p(z)) - E_q T(z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if T is not None:
            T.requires_grad_(True)
    return step, shape


def blas_name():
    """The libblas this process loaded: .../openblas-openmp/libblas.so.3 is the fast one."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "libblas" in line or "libopenblas" in line}
        return ", ".join(sorted(libs)) or "none loaded"
    except OSError:
        return "unknown"


def set_tf32(torch, on):
    """TF32 for cuBLAS matmuls and cuDNN convolutions on or off (off: IEEE FP32, as distvae)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(cudnn, "conv"):  # torch 2.9+
        matmul.fp32_precision = cudnn.conv.fp32_precision = "tf32" if on else "ieee"
    else:
        matmul.allow_tf32 = cudnn.allow_tf32 = on


def setup_device(a, torch):
    """The torch.device to run on, after checking that --device and --compile can be had."""
    if a.compile and not hasattr(torch, "compile"):
        raise SystemExit(f"torch_peer.py: torch {torch.__version__} has no torch.compile (2.0+)")
    if a.device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit(f"torch_peer.py: --device cuda: torch {torch.__version__} sees no CUDA "
                         "device")
    set_tf32(torch, a.tf32)
    return torch.device("cuda", 0)


def sync(dev, torch):
    """Waits for the device's queued work, so a timer read after it counts that work."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_line(a, torch):
    """What ran the model: the BLAS on cpu (unchanged output), the GPU and precision on cuda."""
    if a.device == "cpu":
        return f"blas: {blas_name()}" + ("; torch.compile" if a.compile else "")
    return (f"device: cuda, {torch.cuda.get_device_name(0)}; "
            f"{'TF32' if a.tf32 else 'FP32 (no TF32)'}; {'torch.compile' if a.compile else 'eager'}")


def worker(rank, a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(1 + rank)
    dev = setup_device(a, torch)
    if a.iw > 0:
        sync(dev, torch)
        t0 = time.perf_counter()
        bound = iw_eval(a, torch, dev)
        sync(dev, torch)
        secs = time.perf_counter() - t0
        print(f"torch {torch.__version__} {a.model} --iw {a.iw}: {a.images} images, "
              f"{a.threads} thread(s), samples in passes of {a.iw_batch}")
        print(run_line(a, torch))
        print(f"seconds:              {secs:.3f}  (iw bound {bound:.2f} nats per image)")
        print(f"images/s:             {a.images / secs:.2f}")
        return
    ddp = a.procs > 1
    if ddp:
        torch.distributed.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=rank, world_size=a.procs)
    B = a.batch or (64 if a.model == "dcgan" else 128)
    step, shape = build(a, B, torch, ddp, dev)
    # Synthetic batches as distvae bench makes them: {0, 1} pixels for the Bernoulli VAEs,
    # intensities in [0, 1) for the GAN; a few distinct batches cycled.
    g = torch.Generator().manual_seed(7 + rank)
    xs = [torch.rand((B,) + shape, generator=g) for _ in range(4)]
    if a.model != "dcgan":
        xs = [(x >= 0.5).float() for x in xs]
    xs = [x.to(dev) for x in xs]
    for s in range(a.warmup):
        step(xs[s % 4])
    if ddp:
        torch.distributed.barrier()
    sync(dev, torch)
    t0 = time.perf_counter()
    for s in range(a.steps):
        step(xs[s % 4])
    if ddp:
        torch.distributed.barrier()  # the slowest process's time counts
    sync(dev, torch)
    elapsed = time.perf_counter() - t0
    if rank == 0:
        print(f"torch {torch.__version__} {a.model}: batch {B} x {a.procs} process(es), "
              f"{a.threads} thread(s) each, {a.warmup} warm-up + {a.steps} timed steps")
        print(run_line(a, torch))
        print(f"images/s:             {a.steps * B * a.procs / elapsed:.1f}")
        print(f"step time:            {1e3 * elapsed / a.steps:.3f} ms")
    if ddp:
        torch.distributed.destroy_process_group()


def main():
    a = parse()
    # Before torch loads: OpenMP (torch's and OpenBLAS's) sizes its pool from this.
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    if a.procs > 1:
        import torch.multiprocessing as mp
        mp.spawn(worker, args=(a,), nprocs=a.procs, join=True)
    else:
        worker(0, a)


if __name__ == "__main__":
    main()
