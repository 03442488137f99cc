#!/usr/bin/env python3
"""Tessera from Python through the C ABI (ctypes): run ops on numpy arrays, check against numpy.

    bash Examples/c/run.sh            # builds libTesseraC (or: swift build -c release --product TesseraC)
    python3 Examples/python/example.py [path/to/libTesseraC.so]
"""
import ctypes
import glob
import math
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
path = sys.argv[1] if len(sys.argv) > 1 else (glob.glob(os.path.join(root, ".build", "*", "release", "libTesseraC.so"))
                                              + glob.glob(os.path.join(root, ".build", "release", "libTesseraC.so")))[0]
lib = ctypes.CDLL(path)
f32p = ctypes.POINTER(ctypes.c_float)
lib.tessera_last_error.restype = ctypes.c_char_p
lib.tessera_version.restype = ctypes.c_char_p
for name in ["tessera_relu", "tessera_sigmoid", "tessera_tanh", "tessera_gelu", "tessera_gelu_tanh"]:
    getattr(lib, name).argtypes = [ctypes.c_void_p, f32p, f32p, ctypes.c_size_t]
lib.tessera_softmax.argtypes = [ctypes.c_void_p, f32p, f32p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_int]
lib.tessera_runtime_create.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
lib.tessera_runtime_destroy.argtypes = [ctypes.c_void_p]


def ptr(a):
    assert a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(f32p)


def check(status):
    if status != 0:
        raise RuntimeError(f"tessera status {status}: {lib.tessera_last_error().decode()}")


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
shape = (ctypes.c_int64 * 2)(64, 1000)
check(lib.tessera_softmax(rt, ptr(s), ptr(out), shape, 2, -1))
sd = s.astype(np.float64)
ref = np.exp(sd - sd.max(axis=1, keepdims=True))
ref /= ref.sum(axis=1, keepdims=True)
err = np.max(np.abs(out - ref) / ref)
print(f"   softmax: max relative error {err:.2e}, row sums within {np.max(np.abs(out.sum(axis=1) - 1)):.1e} of 1")
failures += err > 2e-6

status = lib.tessera_sigmoid(rt, None, ptr(y), 4)
print(f"null input -> status {status}: {lib.tessera_last_error().decode()}")
failures += status != 1
check(lib.tessera_runtime_destroy(rt))
print("Python example", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
