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
