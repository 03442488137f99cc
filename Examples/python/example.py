#!/usr/bin/env python3
"""Tessera from Python through the C ABI (ctypes): run ops on numpy arrays, check against numpy.

    bash Examples/c/run.sh            # builds libTesseraC (or: swift build -c release --product TesseraC)
    python3 Examples/python/example.py [path/to/libTesseraC.so]
"""
import ctypes
import math
import sys

import numpy as np

import tessera_ctypes as tc  # the signatures, next to this file

lib = tc.load(sys.argv[1] if len(sys.argv) > 1 else None)
ptr = tc.ptr


def check(status):
    tc.check(lib, status)


print("tessera", lib.tessera_version().decode())
rt = ctypes.c_void_p()
check(lib.tessera_runtime_create(2, 0, None, ctypes.byref(rt)))

rng = np.random.default_rng(0)
x = (rng.standard_normal(1 << 20) * 3).astype(np.float32)
y = np.empty_like(x)
xd = x.astype(np.float64)
refs = {
    "tessera_relu": np.maximum(xd, 0),
    "tessera_sigmoid": 1 / (1 + np.exp(-xd)),
    "tessera_tanh": np.tanh(xd),
    "tessera_gelu_tanh": 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3))),
}
failures = 0
for name, ref in refs.items():
    check(getattr(lib, name)(rt, ptr(x), ptr(y), x.size))
    err = np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1e-3))
    print(f"{name[8:]:>10}: max error {err:.2e} against numpy float64")
    failures += err > 1e-5

s = (rng.standard_normal((64, 1000)) * 5).astype(np.float32)
out = np.empty_like(s)
shape, rank = tc.shape((64, 1000))
check(lib.tessera_softmax(rt, ptr(s), ptr(out), shape, rank, -1))
sd = s.astype(np.float64)
ref = np.exp(sd - sd.max(axis=1, keepdims=True))
ref /= ref.sum(axis=1, keepdims=True)
err = np.max(np.abs(out - ref) / ref)
print(f"   softmax: max relative error {err:.2e}, row sums within {np.max(np.abs(out.sum(axis=1) - 1)):.1e} of 1")
failures += err > 2e-6

# backward: the gradient of a training step, from the saved tensor each op reads
dy = rng.standard_normal(x.size).astype(np.float32)
dx = np.empty_like(x)
check(lib.tessera_sigmoid(rt, ptr(x), ptr(y), x.size))
check(lib.tessera_sigmoid_backward(rt, None, ptr(y), ptr(dy), ptr(dx), x.size))  # sigmoid reads its output
yd = y.astype(np.float64)  # from the output: exact for the y it is given (as oneDNN's use_dst)
ref = dy * yd * (1 - yd)
err = np.max(np.abs(dx - ref) / np.maximum(np.abs(ref), 1e-6))
print(f"sigmoid backward: max error {err:.2e}")
failures += err > 1e-4
check(lib.tessera_gelu_tanh_backward(rt, ptr(x), None, ptr(dy), ptr(dx), x.size))  # the GELUs read the input
c, k = math.sqrt(2 / math.pi), 0.044715
t = np.tanh(c * (xd + k * xd ** 3))
ref = dy * (0.5 * (1 + t) + 0.5 * xd * (1 - t * t) * c * (1 + 3 * k * xd * xd))
err = np.max(np.abs(dx - ref) / np.maximum(np.abs(ref), 1e-3))
print(f"gelu_tanh backward: max error {err:.2e}")
failures += err > 1e-4
ds = rng.standard_normal((64, 1000)).astype(np.float32)
dsx = np.empty_like(ds)
check(lib.tessera_softmax_backward(rt, ptr(out), ptr(ds), ptr(dsx), shape, rank, -1))
od = out.astype(np.float64)
ref = od * (ds - (ds * od).sum(axis=1, keepdims=True))
err = np.max(np.abs(dsx - ref)) / np.max(np.abs(ref))
print(f"softmax backward: max error {err:.2e} of the largest gradient")
failures += err > 1e-5

status = lib.tessera_sigmoid(rt, None, ptr(y), 4)
print(f"null input -> status {status}: {lib.tessera_last_error().decode()}")
failures += status != 1
check(lib.tessera_runtime_destroy(rt))
print("Python example", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
