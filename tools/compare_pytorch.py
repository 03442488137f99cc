#!/usr/bin/env python3
"""Tessera vs PyTorch on this machine, call by call in one process (medians, ns/element).

    pip install "torch==2.13.0+cpu"       # CPU-only wheel
    swift build -c release --product TesseraC
    python3 tools/compare_pytorch.py [--threads 1,2] [--repetitions 15] [--lib path/to/libTesseraC.so]

Tessera is called through its C ABI (ctypes; the default executor, concurrentPerform), so
both libraries run in the same process on the same input buffer, in blocks that alternate
over three rounds: a drift of the host's speed (these VMs drift by 20 % within minutes) hits
both alike.
PyTorch writes into preallocated outputs (out= variants), like Tessera, so neither pays for
allocating and faulting in a 64 MiB result.  Each op first runs for 0.2 s of warm-up calls.
"""
import argparse, ctypes, os, statistics, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Examples", "python"))
import tessera_ctypes as tc  # noqa: E402  (the C ABI's signatures, shared with the Python example)

ap = argparse.ArgumentParser()
ap.add_argument("--threads", default="1,2")
ap.add_argument("--repetitions", type=int, default=15)
ap.add_argument("--lib", default=None)
args = ap.parse_args()
lib = tc.load(args.lib)
f32p = tc.f32p


def check(status):
    tc.check(lib, status)


n = 1 << 24
xn = (np.random.default_rng(7).standard_normal(n) * 2).astype(np.float32)
x = torch.from_numpy(xn)
yt = torch.empty_like(x)
yn = np.empty_like(xn)
xp, yp = xn.ctypes.data_as(f32p), yn.ctypes.data_as(f32p)
A = torch.ops.aten


def tessera_softmax(fn, shape, dim):
    s, r = tc.shape(shape)
    return lambda rt: check(fn(rt, xp, yp, s, r, dim))


# chain4 = gelu(tanh(sigmoid(relu(x)))) as a fused Tessera pipeline
pipe = ctypes.c_void_p()
check(lib.tessera_pipeline_create(ctypes.byref(pipe)))
for act in (0, 1, 2, 3):  # TESSERA_RELU, SIGMOID, TANH, GELU (tessera.h)
    check(lib.tessera_pipeline_add_activation(pipe, act))
flat, flat_rank = tc.shape([n])

cases = [
    ("relu", "16777216", lambda: torch.clamp_min(x, 0, out=yt), lambda rt: check(lib.tessera_relu(rt, xp, yp, n))),
    ("sigmoid", "16777216", lambda: torch.sigmoid(x, out=yt), lambda rt: check(lib.tessera_sigmoid(rt, xp, yp, n))),
    ("tanh", "16777216", lambda: torch.tanh(x, out=yt), lambda rt: check(lib.tessera_tanh(rt, xp, yp, n))),
    ("gelu", "16777216", lambda: A.gelu.out(x, out=yt), lambda rt: check(lib.tessera_gelu(rt, xp, yp, n))),
    ("gelu_tanh", "16777216", lambda: A.gelu.out(x, approximate="tanh", out=yt),
     lambda rt: check(lib.tessera_gelu_tanh(rt, xp, yp, n))),
]
for shape in [(4096, 4096), (65536, 256), (8, 1 << 21)]:
    s, o = x.view(*shape), yt.view(*shape)
    label = "x".join(map(str, shape))
    cases.append(("softmax", label, lambda s=s, o=o: A._softmax.out(s, -1, False, out=o),
                  tessera_softmax(lib.tessera_softmax, shape, -1)))
    cases.append(("log_softmax", label, lambda s=s, o=o: A._log_softmax.out(s, -1, False, out=o),
                  tessera_softmax(lib.tessera_log_softmax, shape, -1)))
s, o = x.view(4096, 4096), yt.view(4096, 4096)
cases.append(("softmax_dim0", "4096x4096", lambda: A._softmax.out(s, 0, False, out=o),
              tessera_softmax(lib.tessera_softmax, (4096, 4096), 0)))
cases.append(("chain4", "16777216",
              lambda: (torch.clamp_min(x, 0, out=yt), torch.sigmoid(yt, out=yt), torch.tanh(yt, out=yt), A.gelu.out(yt, out=yt)),
              lambda rt: check(lib.tessera_pipeline_run(rt, pipe, xp, yp, flat, flat_rank))))


def warm(f, seconds=0.05):
    end = time.perf_counter() + seconds
    f()
    while time.perf_counter() < end:
        f()


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


rows = []
rounds = 3
for threads in [int(t) for t in args.threads.split(",")]:
    torch.set_num_threads(threads)
    rt = ctypes.c_void_p()
    check(lib.tessera_runtime_create(threads, 0, None, ctypes.byref(rt)))
    for op, shape, tf, sf in cases:
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            tf()
            sf(rt)
        tt, st, ratios = [], [], []
        for r in range(rounds):
            k = args.repetitions * (r + 1) // rounds - args.repetitions * r // rounds
            # blocks, not single calls: PyTorch's OpenMP threads spin after each call (libgomp's
            # GOMP_SPINCOUNT) and hold the second core for a while, which made a Tessera call
            # right after a PyTorch one 0.94 instead of 0.70 ns/element (gelu, 2 workers; relu
            # 0.23-0.43 instead of 0.20); 50 ms of untimed calls start each block
            warm(tf)
            a = [timed(tf) for _ in range(k)]
            warm(lambda: sf(rt))
            b = [timed(lambda: sf(rt)) for _ in range(k)]
            tt += a
            st += b
            ratios.append(statistics.median(a) / statistics.median(b))
        rows.append((op, shape, threads, statistics.median(st) * 1e9 / n, statistics.median(tt) * 1e9 / n,
                     statistics.median(tt) / statistics.median(st), min(ratios), max(ratios)))
    check(lib.tessera_runtime_destroy(rt))
check(lib.tessera_pipeline_destroy(pipe))

print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}) vs Tessera {lib.tessera_version().decode()} "
      f"(C ABI, concurrentPerform), blocks alternating over {rounds} rounds, median of {args.repetitions}")
print()
print("| op | shape | workers | Tessera ns/elem | PyTorch ns/elem | PyTorch / Tessera | per round |")
print("|---|---|---|---|---|---|---|")
for op, shape, t, a, b, r, lo, hi in rows:
    print(f"| {op} | {shape} | {t} | {a:.3f} | {b:.3f} | {r:.2f}x | {lo:.2f}-{hi:.2f} |")
