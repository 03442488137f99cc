#!/usr/bin/env python3
"""Tessera vs PyTorch on this machine, side by side in one run (medians, ns/element).

    pip install "torch==2.13.0+cpu"       # CPU-only wheel
    swift build -c release --product scale-test
    python3 tools/compare_pytorch.py [--threads 1,2] [--repetitions 15]

PyTorch is timed writing into preallocated outputs (out= variants), like Tessera's runs, so
neither pays for allocating and faulting in a 64 MiB result.
"""
import argparse, json, os, subprocess, sys, time

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--threads", default="1,2")
ap.add_argument("--repetitions", type=int, default=15)
ap.add_argument("--scale-test", default=None)
args = ap.parse_args()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
exe = args.scale_test or subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], cwd=root, text=True).strip() + "/scale-test"
threads = [int(t) for t in args.threads.split(",")]

A = torch.ops.aten
def bench(f, reps):
    f(); f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

x = torch.randn(1 << 24) * 2
y = torch.empty_like(x)
torch_ops = {
    ("relu", (1 << 24,)): lambda: torch.clamp_min(x, 0, out=y),
    ("sigmoid", (1 << 24,)): lambda: torch.sigmoid(x, out=y),
    ("tanh", (1 << 24,)): lambda: torch.tanh(x, out=y),
    ("gelu", (1 << 24,)): lambda: A.gelu.out(x, out=y),
    ("gelu_tanh", (1 << 24,)): lambda: A.gelu.out(x, approximate="tanh", out=y),
    ("chain4", (1 << 24,)): lambda: (torch.clamp_min(x, 0, out=y), torch.sigmoid(y, out=y), torch.tanh(y, out=y), A.gelu.out(y, out=y)),
}
for shape in [(4096, 4096), (65536, 256), (8, 1 << 21)]:
    s, o = x.view(*shape), y.view(*shape)
    torch_ops[("softmax", shape)] = (lambda s=s, o=o: A._softmax.out(s, -1, False, out=o))
    torch_ops[("log_softmax", shape)] = (lambda s=s, o=o: A._log_softmax.out(s, -1, False, out=o))
s, o = x.view(4096, 4096), y.view(4096, 4096)
torch_ops[("softmax_dim0", (4096, 4096))] = lambda: A._softmax.out(s, 0, False, out=o)

rows = []
for t in threads:
    torch.set_num_threads(t)
    tt = {k: bench(f, args.repetitions) for k, f in torch_ops.items()}
    out = subprocess.check_output([exe, "--thread-list", str(t), "--ops", "relu,sigmoid,tanh,gelu,gelu_tanh,softmax,log_softmax,softmax_dim0,chain4",
                                   "--repetitions", str(args.repetitions), "--format", "json"], text=True, stderr=subprocess.DEVNULL)
    rep = json.loads(out)
    for r in rep["results"]:
        if not r["fused"]:
            continue
        key = (r["op"], tuple(r["shape"]))
        if key in tt:
            n = np.prod(r["shape"])
            rows.append((r["op"], "x".join(map(str, r["shape"])), t, r["ns_per_element"], tt[key] * 1e9 / n))

print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}) vs Tessera ({rep['machine']['isa']}), {rep['machine']['cpu']}, median of {args.repetitions}")
print("| op | shape | workers | Tessera ns/elem | PyTorch ns/elem | PyTorch / Tessera |")
print("|---|---|---|---|---|---|")
for op, shape, t, a, b in rows:
    print(f"| {op} | {shape} | {t} | {a:.3f} | {b:.3f} | {b / a:.2f}x |")
