#!/usr/bin/env python3
"""The peers' float32 accuracy next to Tessera's, on the same inputs: max error in ULP of a
float64 reference (numpy/scipy) where |reference| >= 1e-5, over 2^22 inputs (normal x 3 and an
even sweep of -30..30).  Needs the same virtual environment as compare_peers.py plus scipy:

    .venv-peers/bin/pip install scipy
    .venv-peers/bin/python tools/peer_accuracy.py
"""
import os
os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np, onnxruntime as ort, torch, math, sys
from onnx import helper, TensorProto
sys.path.insert(0, "Examples/python"); import tessera_ctypes as tc
from scipy.special import erf
lib = tc.load()
rng = np.random.default_rng(3)
x = np.concatenate([rng.standard_normal(1 << 21) * 3, np.linspace(-30, 30, 1 << 21)]).astype(np.float32)
xd = x.astype(np.float64)
def ulp_err(y, ref):
    r32 = ref.astype(np.float32)
    big = np.abs(ref) >= 1e-5
    u = np.spacing(np.abs(r32).astype(np.float32)).astype(np.float64)
    e = np.abs(y.astype(np.float64) - ref) / u
    return e[big].max(), x[big][np.argmax(e[big])]
refs = {"tanh": np.tanh(xd), "gelu": 0.5 * xd * (1 + erf(xd / math.sqrt(2))),
        "gelu_tanh": 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3))),
        "sigmoid": 1 / (1 + np.exp(-xd))}
def ort_run(kind, **a):
    g = helper.make_graph([helper.make_node(kind, ["x"], ["y"], **a)], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(x)])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [len(x)])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]); m.ir_version = 9
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
xt = torch.from_numpy(x)
peers = {
 "tanh": (ort_run("Tanh"), torch.tanh(xt).numpy(), lib.tessera_tanh),
 "sigmoid": (ort_run("Sigmoid"), torch.sigmoid(xt).numpy(), lib.tessera_sigmoid),
 "gelu": (ort_run("Gelu"), torch.nn.functional.gelu(xt).numpy(), lib.tessera_gelu),
 "gelu_tanh": (ort_run("Gelu", approximate="tanh"), torch.nn.functional.gelu(xt, approximate="tanh").numpy(), lib.tessera_gelu_tanh),
}
print("max error in ULP of the float64 reference (|ref| >= 1e-5), 2^22 inputs: normal*3 and a -30..30 sweep")
print("| op | Tessera | onnxruntime 1.32 | PyTorch 2.15 |")
print("|---|---|---|---|")
for op, (yo, yp, fn) in peers.items():
    yt = np.empty_like(x); tc.check(lib, fn(None, tc.ptr(x), tc.ptr(yt), len(x)))
    cells = []
    for y in (yt, yo, yp):
        e, at = ulp_err(y, refs[op]); cells.append(f"{e:.1f} (x={at:.3g})")
    print(f"| {op} | " + " | ".join(cells) + " |")

# ---- backward: Tessera's backward kernels vs PyTorch's float32 backward ops, same x and dy ----
# reference: the float64 derivative times dy; for sigmoid and tanh at the float32 output y each
# gives its backward (both read y), for the others at x.  ULP where |ref| >= 1e-5 and the error is
# above 1e-7 |dy| (the absolute floor of the bound, for derivatives that cross zero).
dy = rng.standard_normal(len(x)).astype(np.float32)
dyd = dy.astype(np.float64)
A = torch.ops.aten
def phi(v): return 0.5 * (1 + erf(v / math.sqrt(2)))
def sig(v): return 0.5 * (1 + np.tanh(v / 2))
c, k = math.sqrt(2 / math.pi), 0.044715
def ulp_err_bwd(g, ref):
    r32 = ref.astype(np.float32)
    u = np.spacing(np.abs(r32).astype(np.float32)).astype(np.float64)
    e = np.abs(g.astype(np.float64) - ref)
    mask = (np.abs(ref) >= 1e-5) & (e > 1e-7 * np.abs(dyd)) & np.isfinite(ref)
    if not mask.any():
        return 0.0, float("nan")
    q = e[mask] / u[mask]
    return q.max(), x[mask][np.argmax(q)]
ys = {"sigmoid": torch.sigmoid(xt).numpy(), "tanh": torch.tanh(xt).numpy()}
dt = torch.from_numpy(dy)
bwd = {
 "relu": (np.where(xd > 0, 1.0, 0.0), lambda: A.threshold_backward(dt, xt, 0).numpy(), lambda g: lib.tessera_relu_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x))),
 "sigmoid": (ys["sigmoid"].astype(np.float64) * (1 - ys["sigmoid"].astype(np.float64)), lambda: A.sigmoid_backward(dt, torch.from_numpy(ys["sigmoid"])).numpy(),
             lambda g: lib.tessera_sigmoid_backward(None, None, tc.ptr(ys["sigmoid"]), tc.ptr(dy), tc.ptr(g), len(x))),
 "tanh": (1 - ys["tanh"].astype(np.float64) ** 2, lambda: A.tanh_backward(dt, torch.from_numpy(ys["tanh"])).numpy(),
          lambda g: lib.tessera_tanh_backward(None, None, tc.ptr(ys["tanh"]), tc.ptr(dy), tc.ptr(g), len(x))),
 "gelu": (phi(xd) + xd * np.exp(-xd * xd / 2) / math.sqrt(2 * math.pi), lambda: A.gelu_backward(dt, xt).numpy(),
          lambda g: lib.tessera_gelu_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x))),
 "gelu_tanh": (sig(2 * c * (xd + k * xd ** 3)) + 2 * xd * sig(2 * c * (xd + k * xd ** 3)) * sig(-2 * c * (xd + k * xd ** 3)) * c * (1 + 3 * k * xd * xd),
               lambda: A.gelu_backward(dt, xt, approximate="tanh").numpy(),
               lambda g: lib.tessera_gelu_tanh_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x))),
 "silu": (sig(xd) * (1 + xd * sig(-xd)), lambda: A.silu_backward(dt, xt).numpy(),
          lambda g: lib.tessera_silu_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x))),
 "softplus": (sig(xd), lambda: A.softplus_backward(dt, xt, 1.0, 20.0).numpy(),
              lambda g: lib.tessera_softplus_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x), 1.0, 20.0)),
 "mish": (np.tanh(np.logaddexp(0, xd)) + xd * sig(xd) * (1 - np.tanh(np.logaddexp(0, xd)) ** 2), lambda: A.mish_backward(dt, xt).numpy(),
          lambda g: lib.tessera_mish_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x))),
 "elu": (np.where(xd > 0, 1.0, np.exp(np.minimum(xd, 0))), lambda: A.elu_backward(dt, 1.0, 1.0, 1.0, False, xt).numpy(),
         lambda g: lib.tessera_elu_backward(None, tc.ptr(x), None, tc.ptr(dy), tc.ptr(g), len(x), 1.0)),
}
print()
print("backward: max error in ULP of the float64 derivative * dy (beyond 1e-7 |dy| and where |ref| >= 1e-5), same x and dy")
print("| op | Tessera | PyTorch 2.15 |")
print("|---|---|---|")
for op, (deriv, torch_fn, tfn) in bwd.items():
    ref = deriv * dyd
    g = np.empty_like(x); tc.check(lib, tfn(g))
    cells = []
    for out in (g, torch_fn()):
        e, at = ulp_err_bwd(out, ref); cells.append(f"{e:.1f} (x={at:.3g})")
    print(f"| {op}_backward | " + " | ".join(cells) + " |")
