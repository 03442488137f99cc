#!/usr/bin/env python3
"""SHA-256 of Tessera's outputs for every element-wise op, softmax shape (forward and backward) and pipeline, at 1 and 2
workers, through the C ABI: a refactor that must not change bits prints the same lines before and
after (diff the two outputs).

    swift build -c release --product TesseraC && python3 tools/output_hashes.py > before.txt
"""
import ctypes
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Examples", "python"))
import tessera_ctypes as tc  # noqa: E402

lib = tc.load(sys.argv[1] if len(sys.argv) > 1 else None)
rng = np.random.default_rng(7)
edge = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1000, -1000, 1e-40, -1e-40, 1, -1, 88.7, -88.7, 1e-7],
                dtype=np.float32)
x = np.concatenate([edge, (rng.standard_normal(1 << 20) * 6).astype(np.float32),
                    rng.uniform(-30, 30, 4099).astype(np.float32)])
shapes = [[4096, 256], [256, 4096], [3, 1 << 18], [7, 5, 33], [1 << 16, 16]]


def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).view(np.uint32).tobytes()).hexdigest()[:16]


def op_names():
    if hasattr(lib, "tessera_op_count"):
        lib.tessera_op_name.restype = ctypes.c_char_p
        return list(enumerate(lib.tessera_op_name(i).decode() for i in range(lib.tessera_op_count())))
    return list(enumerate(["relu", "sigmoid", "tanh", "gelu", "gelu_tanh"]))


for workers in (1, 2):
    rt = ctypes.c_void_p()
    tc.check(lib, lib.tessera_runtime_create(workers, 0, None, ctypes.byref(rt)))
    lib.tessera_activation_run.argtypes = [ctypes.c_void_p, ctypes.c_int, tc.f32p, tc.f32p, ctypes.c_size_t]
    for i, name in op_names():
        if name in ("affine", "clamp"):
            continue
        y = np.empty_like(x)
        tc.check(lib, lib.tessera_activation_run(rt, i, tc.ptr(x), tc.ptr(y), x.size))
        print(f"w{workers} {name} {digest(y)}")
    for s in shapes:
        n = int(np.prod(s))
        a = np.ascontiguousarray(x[:n].reshape(s) if n <= x.size else rng.standard_normal(n).astype(np.float32).reshape(s))
        for dim in range(len(s)):
            for log, fn in ((0, lib.tessera_softmax), (1, lib.tessera_log_softmax)):
                y = np.empty_like(a)
                sh, rank = tc.shape(s)
                tc.check(lib, fn(rt, tc.ptr(a), tc.ptr(y), sh, rank, dim))
                print(f"w{workers} {'log_' if log else ''}softmax {s} dim{dim} {digest(y)}")
                # the backward from that output (long rows split in chunks, columns in slabs)
                dy = np.ascontiguousarray(np.roll(a, 1))
                dx = np.empty_like(a)
                bw = lib.tessera_log_softmax_backward if log else lib.tessera_softmax_backward
                tc.check(lib, bw(rt, tc.ptr(y), tc.ptr(dy), tc.ptr(dx), sh, rank, dim))
                print(f"w{workers} {'log_' if log else ''}softmax_backward {s} dim{dim} {digest(dx)}")
    # a fused chain with affine and clamp, and one ending in a softmax
    lib.tessera_pipeline_add_affine.argtypes = [ctypes.c_void_p, ctypes.c_float, ctypes.c_float]
    lib.tessera_pipeline_add_clamp.argtypes = [ctypes.c_void_p, ctypes.c_float, ctypes.c_float]
    lib.tessera_pipeline_add_softmax.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    for softmax in (False, True):
        p = ctypes.c_void_p()
        tc.check(lib, lib.tessera_pipeline_create(ctypes.byref(p)))
        tc.check(lib, lib.tessera_pipeline_add_affine(p, 0.5, -0.25))
        for op in range(5):
            tc.check(lib, lib.tessera_pipeline_add_activation(p, op))
        tc.check(lib, lib.tessera_pipeline_add_clamp(p, -0.5, 0.75))
        if softmax:
            tc.check(lib, lib.tessera_pipeline_add_softmax(p, -1, 1))
        a = np.ascontiguousarray(x[:4096 * 256].reshape(4096, 256))
        y = np.empty_like(a)
        sh, rank = tc.shape([4096, 256])
        tc.check(lib, lib.tessera_pipeline_run(rt, p, tc.ptr(a), tc.ptr(y), sh, rank))
        print(f"w{workers} pipeline{'+log_softmax' if softmax else ''} {digest(y)}")
        lib.tessera_pipeline_destroy(p)
    lib.tessera_runtime_destroy(rt)
