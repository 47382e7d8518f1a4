#!/usr/bin/env python3
"""Per GEMM shape of a model's training step: oneDNN (distvae's backend) against OpenBLAS and
BLIS, each timed alone on the same threads, in interleaved rounds; medians.

oneDNN's figures come from `distvae bench CONFIG --ops` (its GEMM reference, each operation timed
alone through the backend); OpenBLAS's and BLIS's from torch.mm on the same M x K x N with the
same operand layouts (B transposed for the forward, A transposed for the weight gradient), in a
python process whose libblas.so.3 is that library's (Debian's libopenblas0-openmp and
libblis4-openmp; this script does not install them). The answer to "would another GEMM library
be faster for some shape of this model on this CPU": the last column, and the step's GEMMs in
total per provider.

  /usr/bin/python3 bench/gemm_providers.py [--config configs/fmnist_vae_mlp.yaml] [--threads 1]
      [--rounds 3] [--distvae build/launch/distvae]
Environment as for compare.sh: DNNL_MAX_CPU_ISA, OPENBLAS_CORETYPE (e.g. Haswell to stand in
for an AVX2 CPU), ATEN_CPU_CAPABILITY.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

LIBS = {"OpenBLAS": "/usr/lib/x86_64-linux-gnu/openblas-openmp",
        "BLIS": "/usr/lib/x86_64-linux-gnu/blis-openmp"}
OP = re.compile(r"^linear (\d+)->(\d+) (forward|input gradient|weight gradient) "
                r"\((\d+) x (\d+) x (\d+)\)\s+(\S+)\s+(\S+)\s+(\S+)")


def onednn_ops(a):
    """[(label, M, K, N, calls, ms)] from distvae bench --ops."""
    out = subprocess.run([a.distvae, "bench", a.config, "--steps", "1", "--warmup", "0",
                          "--threads", str(a.threads), "--ops"], check=True,
                         capture_output=True, text=True).stdout
    ops = []
    for line in out.splitlines():
        m = OP.match(line)
        if m:
            In, Out, what, M, K, N, calls, ms, _ = m.groups()
            ops.append((f"{In}->{Out} {what}", int(M), int(K), int(N), float(calls), float(ms)))
    if not ops:
        sys.exit(f"gemm_providers: no linear operations in `{a.distvae} bench {a.config} --ops`")
    return ops


def time_torch(shapes, threads):
    """Child: ms per torch.mm call for each 'what M K N' line on stdin, one per line."""
    import time
    import torch
    torch.set_num_threads(threads)
    for line in sys.stdin:
        what, M, K, N = line.rsplit(" ", 3)
        M, K, N = int(M), int(K), int(N)
        # distvae's layouts: forward x . w^T (B transposed), weight gradient dy^T . x (A
        # transposed), input gradient dy . w (both plain).
        A = torch.randn(K, M).t() if what.endswith("weight gradient") else torch.randn(M, K)
        B = torch.randn(N, K).t() if what.endswith("forward") else torch.randn(K, N)
        C = torch.empty(M, N)
        for _ in range(10):
            torch.mm(A, B, out=C)
        n = max(10, int(0.02 / max(1e-7, _once(torch, A, B, C))))
        best = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                torch.mm(A, B, out=C)
            best.append((time.perf_counter() - t0) / n)
        print(f"{statistics.median(best) * 1e3:.6f}", flush=True)


def _once(torch, A, B, C):
    import time
    t0 = time.perf_counter()
    torch.mm(A, B, out=C)
    return time.perf_counter() - t0


def provider_ms(name, ops, threads):
    env = dict(os.environ, LD_LIBRARY_PATH=LIBS[name], OMP_NUM_THREADS=str(threads))
    lines = "".join(f"{label} {M} {K} {N}\n" for label, M, K, N, _, _ in ops)
    out = subprocess.run([sys.executable, __file__, "--child", "--threads", str(threads)],
                         input=lines, env=env, check=True, capture_output=True, text=True).stdout
    return [float(v) for v in out.split()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/fmnist_vae_mlp.yaml")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    p.add_argument("--distvae", default="build/launch/distvae")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return time_torch(sys.stdin, a.threads)
    missing = [n for n, d in LIBS.items() if not os.path.exists(f"{d}/libblas.so.3")]
    if missing:
        sys.exit(f"gemm_providers: {', '.join(missing)} not installed: apt-get install "
                 "libopenblas0-openmp libblis4-openmp")
    rounds = {"oneDNN": [], **{n: [] for n in LIBS}}
    ops = None
    for r in range(a.rounds):
        ops = onednn_ops(a)
        rounds["oneDNN"].append([ms for *_, ms in ops])
        for name in LIBS:
            rounds[name].append(provider_ms(name, ops, a.threads))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    med = {n: [statistics.median(v) for v in zip(*rs)] for n, rs in rounds.items()}
    names = list(rounds)
    print(f"{a.config}, {a.threads} thread(s), GFLOP/s per GEMM alone, medians of {a.rounds} "
          "interleaved rounds")
    print(f"{'GEMM (M x K x N)':<44}" + "".join(f"{n:>10}" for n in names) + "   fastest")
    totals = {n: 0.0 for n in names}
    for i, (label, M, K, N, calls, _) in enumerate(ops):
        g = {n: 2 * M * K * N / (med[n][i] * 1e-3) * 1e-9 for n in names}
        for n in names:
            totals[n] += calls * med[n][i]
        best = max(names, key=lambda n: g[n])
        print(f"{label + f' ({M} x {K} x {N})':<44}" + "".join(f"{g[n]:>10.1f}" for n in names)
              + f"   {best} ({g[best] / g['oneDNN']:.2f}x oneDNN)")
    print("a step's GEMMs, ms: " + ", ".join(f"{n} {totals[n]:.3f}" for n in names))


if __name__ == "__main__":
    main()
