#!/usr/bin/env python3
"""Tessera vs onnxruntime vs PyTorch vs the memory limit, side by side in one process.

    python3 -m venv .venv-peers && .venv-peers/bin/pip install numpy onnx onnxruntime torch
    swift build -c release --product TesseraC
    .venv-peers/bin/python tools/compare_peers.py [--threads 1,2] [--repetitions 15] [--ops relu,softmax]

(torch's Linux wheel pulls ~6 GB of CUDA wheels; only its CPU backend runs here.)  No test
needs these packages.  What each peer runs, into preallocated outputs:
  Tessera      its C ABI through ctypes (Examples/python/tessera_ctypes.py), default executor
  onnxruntime  one single-node model per op, IOBinding onto the same numpy buffers,
               intra_op_num_threads = workers, sequential execution
  PyTorch      out= variants (aten ops), torch.set_num_threads(workers)
  memory limit tools/memory_limit.c: y = max(x, 0) with streaming stores over pthreads
               (compiled by this script with cc), the floor for 8 bytes moved per element;
               for the *_backward rows dx = dy * (x > 0), 12 bytes per element
Backward rows compare with PyTorch's aten backward ops into a preallocated grad_input
(threshold_backward, sigmoid_backward, tanh_backward, gelu_backward, _softmax_backward_data,
_log_softmax_backward_data); onnxruntime's CPU build has no training kernels.
Blocks of calls alternate over five rounds (the host's speed drifts), each round starting with
the next peer (none is always first after a switch), each block after
50 ms of untimed calls.  Target (issue 13): Tessera <= 0.9x the faster peer, or <= 1.15x
the memory limit where that is the bound.
"""
import argparse, ctypes, os, platform, statistics, subprocess, sys, tempfile, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Examples", "python"))
import tessera_ctypes as tc  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", default="1,2")
ap.add_argument("--repetitions", type=int, default=15)
ap.add_argument("--ops", default=None, help="comma-separated op names (default: all)")
ap.add_argument("--lib", default=None, help="path to libTesseraC.so")
args = ap.parse_args()

try:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError:
    ort = None
try:
    import torch
except ImportError:
    torch = None

lib = tc.load(args.lib)


def check(status):
    tc.check(lib, status)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split()
                isa = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse2"
                return f"{name} ({isa}, {os.cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- the memory limit (plain C) ----
tmp = tempfile.mkdtemp()
so = os.path.join(tmp, "memory_limit.so")
subprocess.check_call(["cc", "-O2", "-shared", "-fPIC", "-pthread", os.path.join(ROOT, "tools", "memory_limit.c"), "-o", so])
ml = ctypes.CDLL(so)
ml.memory_limit_relu.argtypes = [tc.f32p, tc.f32p, ctypes.c_size_t, ctypes.c_int]
ml.memory_limit_relu_backward.argtypes = [tc.f32p, tc.f32p, tc.f32p, ctypes.c_size_t, ctypes.c_int]

n = 1 << 24
xn = (np.random.default_rng(7).standard_normal(n) * 2).astype(np.float32)
yn = np.empty_like(xn)
gn = np.random.default_rng(8).standard_normal(n).astype(np.float32)  # backward: the gradient dy
sn = np.empty_like(xn)  # backward: the saved forward output (sigmoid, tanh, softmax read y)
xp, yp = xn.ctypes.data_as(tc.f32p), yn.ctypes.data_as(tc.f32p)
gp, sp = gn.ctypes.data_as(tc.f32p), sn.ctypes.data_as(tc.f32p)

# ---- the workloads: (op, shape, Tessera call, ONNX node builder, torch call) ----
pipe = ctypes.c_void_p()
check(lib.tessera_pipeline_create(ctypes.byref(pipe)))
for act in (0, 1, 2, 3):  # relu, sigmoid, tanh, gelu (tessera.h's tessera_activation)
    check(lib.tessera_pipeline_add_activation(pipe, act))
flat, flat_rank = tc.shape([n])


def t_unary(fn):
    return lambda rt: check(fn(rt, xp, yp, n))


def t_softmax(fn, shape, dim):
    s, r = tc.shape(shape)
    return lambda rt: check(fn(rt, xp, yp, s, r, dim))


def onnx_node(kind, **attrs):
    return lambda: [helper.make_node(kind, ["x"], ["y"], **attrs)]


def onnx_chain():
    return [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["b"]),
            helper.make_node("Tanh", ["b"], ["c"]), helper.make_node("Gelu", ["c"], ["y"])]


cases = []
flat_shape = (n,)
cases += [
    ("relu", flat_shape, t_unary(lib.tessera_relu), onnx_node("Relu"), lambda x, y: torch.clamp_min(x, 0, out=y)),
    ("sigmoid", flat_shape, t_unary(lib.tessera_sigmoid), onnx_node("Sigmoid"), lambda x, y: torch.sigmoid(x, out=y)),
    ("tanh", flat_shape, t_unary(lib.tessera_tanh), onnx_node("Tanh"), lambda x, y: torch.tanh(x, out=y)),
    ("gelu", flat_shape, t_unary(lib.tessera_gelu), onnx_node("Gelu"), lambda x, y: torch.ops.aten.gelu.out(x, out=y)),
    ("gelu_tanh", flat_shape, t_unary(lib.tessera_gelu_tanh), onnx_node("Gelu", approximate="tanh"),
     lambda x, y: torch.ops.aten.gelu.out(x, approximate="tanh", out=y)),
]
for shape in [(4096, 4096), (65536, 256), (8, 1 << 21)]:
    cases.append(("softmax", shape, t_softmax(lib.tessera_softmax, shape, -1), onnx_node("Softmax", axis=-1),
                  lambda x, y: torch.ops.aten._softmax.out(x, -1, False, out=y)))
    cases.append(("log_softmax", shape, t_softmax(lib.tessera_log_softmax, shape, -1), onnx_node("LogSoftmax", axis=-1),
                  lambda x, y: torch.ops.aten._log_softmax.out(x, -1, False, out=y)))
cases.append(("softmax_dim0", (4096, 4096), t_softmax(lib.tessera_softmax, (4096, 4096), 0), onnx_node("Softmax", axis=0),
              lambda x, y: torch.ops.aten._softmax.out(x, 0, False, out=y)))
cases.append(("chain4", flat_shape, lambda rt: check(lib.tessera_pipeline_run(rt, pipe, xp, yp, flat, flat_rank)), onnx_chain,
              lambda x, y: (torch.clamp_min(x, 0, out=y), torch.sigmoid(y, out=y), torch.tanh(y, out=y),
                            torch.ops.aten.gelu.out(y, out=y))))
# the newer activations (issue 16), PyTorch's out= aten op where it has one
F = torch.nn.functional if torch is not None else None
aten = torch.ops.aten if torch is not None else None
newer = [
    ("silu", None, lambda x, y: aten.silu.out(x, out=y)),  # onnx: no single SiLU op
    ("leaky_relu", onnx_node("LeakyRelu", alpha=0.01), lambda x, y: aten.leaky_relu.out(x, 0.01, out=y)),
    ("elu", onnx_node("Elu", alpha=1.0), lambda x, y: aten.elu.out(x, 1.0, 1.0, 1.0, out=y)),
    ("selu", onnx_node("Selu"), lambda x, y: y.copy_(F.selu(x))),
    ("softplus", onnx_node("Softplus"), lambda x, y: aten.softplus.out(x, 1.0, 20.0, out=y)),
    ("mish", onnx_node("Mish"), lambda x, y: aten.mish.out(x, out=y)),
    ("hardswish", onnx_node("HardSwish"), lambda x, y: aten.hardswish.out(x, out=y)),
    ("hardsigmoid", onnx_node("HardSigmoid", alpha=1 / 6, beta=0.5), lambda x, y: aten.hardsigmoid.out(x, out=y)),
    ("hardtanh", None, lambda x, y: aten.hardtanh.out(x, -1.0, 1.0, out=y)),  # onnx Clip takes its bounds as inputs
    ("softsign", onnx_node("Softsign"), lambda x, y: y.copy_(F.softsign(x))),
    ("logsigmoid", None, lambda x, y: y.copy_(F.logsigmoid(x))),
]
for name, node, fn in newer:
    f = getattr(lib, "tessera_" + name)
    params = {"leaky_relu": (0.01,), "elu": (1.0,), "softplus": (1.0, 20.0), "hardtanh": (-1.0, 1.0)}.get(name, ())
    cases.append((name, flat_shape, lambda rt, f=f, p=params: check(f(rt, xp, yp, n, *p)), node, fn))
# backward: (op, shape, Tessera call, None (onnxruntime's training ops are not in its CPU
# inference build), torch aten backward op, the forward that makes the saved output)
def t_bwd(fn, reads_output):
    return lambda rt: check(fn(rt, None if reads_output else xp, sp if reads_output else None, gp, yp, n))


def saved_unary(fn):
    return lambda rt: check(fn(rt, xp, sp, n))


def saved_softmax(fn, shape):
    s, r = tc.shape(shape)
    return lambda rt: check(fn(rt, xp, sp, s, r, -1))


def t_softmax_bwd(fn, shape):
    s, r = tc.shape(shape)
    return lambda rt: check(fn(rt, sp, gp, yp, s, r, -1))


backward = [
    ("relu_backward", flat_shape, t_bwd(lib.tessera_relu_backward, False),
     lambda x, s, g, y: torch.ops.aten.threshold_backward.grad_input(g, x, 0, grad_input=y), None),
    ("sigmoid_backward", flat_shape, t_bwd(lib.tessera_sigmoid_backward, True),
     lambda x, s, g, y: torch.ops.aten.sigmoid_backward.grad_input(g, s, grad_input=y), saved_unary(lib.tessera_sigmoid)),
    ("tanh_backward", flat_shape, t_bwd(lib.tessera_tanh_backward, True),
     lambda x, s, g, y: torch.ops.aten.tanh_backward.grad_input(g, s, grad_input=y), saved_unary(lib.tessera_tanh)),
    ("gelu_backward", flat_shape, t_bwd(lib.tessera_gelu_backward, False),
     lambda x, s, g, y: torch.ops.aten.gelu_backward.grad_input(g, x, approximate="none", grad_input=y), None),
    ("gelu_tanh_backward", flat_shape, t_bwd(lib.tessera_gelu_tanh_backward, False),
     lambda x, s, g, y: torch.ops.aten.gelu_backward.grad_input(g, x, approximate="tanh", grad_input=y), None),
    ("silu_backward", flat_shape, t_bwd(lib.tessera_silu_backward, False),
     lambda x, s, g, y: torch.ops.aten.silu_backward.grad_input(g, x, grad_input=y), None),
    ("softplus_backward", flat_shape, lambda rt: check(lib.tessera_softplus_backward(rt, xp, None, gp, yp, n, 1.0, 20.0)),
     lambda x, s, g, y: torch.ops.aten.softplus_backward.grad_input(g, x, 1.0, 20.0, grad_input=y), None),
    ("hardswish_backward", flat_shape, t_bwd(lib.tessera_hardswish_backward, False),
     lambda x, s, g, y: y.copy_(torch.ops.aten.hardswish_backward(g, x)), None),
    ("mish_backward", flat_shape, t_bwd(lib.tessera_mish_backward, False),
     lambda x, s, g, y: y.copy_(torch.ops.aten.mish_backward(g, x)), None),
]
for shape in [(4096, 4096), (65536, 256), (8, 1 << 21)]:
    backward.append(("softmax_backward", shape, t_softmax_bwd(lib.tessera_softmax_backward, shape),
                     lambda x, s, g, y: torch.ops.aten._softmax_backward_data.out(g, s, -1, torch.float32, grad_input=y),
                     saved_softmax(lib.tessera_softmax, shape)))
    backward.append(("log_softmax_backward", shape, t_softmax_bwd(lib.tessera_log_softmax_backward, shape),
                     lambda x, s, g, y: torch.ops.aten._log_softmax_backward_data.out(g, s, -1, torch.float32, out=y),
                     saved_softmax(lib.tessera_log_softmax, shape)))
cases += [(op, shape, tf, None, fn, saved) for op, shape, tf, fn, saved in backward]
cases = [c if len(c) == 6 else c + (None,) for c in cases]
if args.ops:
    wanted = set(args.ops.split(","))
    cases = [c for c in cases if c[0] in wanted]


def ort_runner(nodes, shape, threads):
    """A session for one op, bound to xn / yn viewed as `shape`; None if onnxruntime lacks the op."""
    g = helper.make_graph(nodes(), "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 -- report and go on without this peer for the op
        print(f"onnxruntime: {nodes()[0].op_type}: {e}", file=sys.stderr)
        return None
    io = sess.io_binding()
    io.bind_input("x", "cpu", 0, np.float32, list(shape), xn.ctypes.data)
    io.bind_output("y", "cpu", 0, np.float32, list(shape), yn.ctypes.data)
    return lambda: sess.run_with_iobinding(io)


def warm(f, seconds=0.05):
    end = time.perf_counter() + seconds
    f()
    while time.perf_counter() < end:
        f()


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


rounds = 5
rows = []
isa_ml = ml.memory_limit_relu(xp, yp, n, 1)  # 512 or 256: which streaming loop it runs
if isa_ml < 0:
    sys.exit("memory_limit.c needs AVX2")
for threads in [int(t) for t in args.threads.split(",")]:
    if torch is not None:
        torch.set_num_threads(threads)
    rt = ctypes.c_void_p()
    check(lib.tessera_runtime_create(threads, 0, None, ctypes.byref(rt)))
    for op, shape, tf, onnx_nodes, torch_fn, saved in cases:
        is_bwd = op.endswith("_backward")
        if saved is not None:
            saved(rt)  # the forward output the backward reads, untimed
        runners = {"tessera": lambda tf=tf: tf(rt)}
        if ort is not None and onnx_nodes is not None:
            r = ort_runner(onnx_nodes, shape, threads)
            if r is not None:
                runners["onnxruntime"] = r
        if torch is not None:
            xt, yt = torch.from_numpy(xn).view(*shape), torch.from_numpy(yn).view(*shape)
            if is_bwd:
                st, gt = torch.from_numpy(sn).view(*shape), torch.from_numpy(gn).view(*shape)
                runners["pytorch"] = lambda f=torch_fn, xt=xt, st=st, gt=gt, yt=yt: f(xt, st, gt, yt)
            else:
                runners["pytorch"] = lambda f=torch_fn, xt=xt, yt=yt: f(xt, yt)
        if is_bwd:
            runners["memory limit"] = lambda: ml.memory_limit_relu_backward(xp, gp, yp, n, threads)
        else:
            runners["memory limit"] = lambda: ml.memory_limit_relu(xp, yp, n, threads)
        for k in list(runners):  # a peer op this version lacks drops the peer for the row, not the run
            try:
                runners[k]()
            except Exception as e:  # noqa: BLE001
                print(f"{k}: {op}: {e}".splitlines()[0], file=sys.stderr)
                del runners[k]
        times = {k: [] for k in runners}
        for k, f in runners.items():  # 0.2 s of warm-up for each before any timing
            warm(f, 0.2)
        order = list(runners.items())
        for r in range(rounds):
            reps = args.repetitions * (r + 1) // rounds - args.repetitions * r // rounds
            # each round starts with the next runner: none is always first after a switch
            for k, f in order[r % len(order):] + order[:r % len(order)]:
                # blocks, not single calls: PyTorch's and onnxruntime's threads spin after a
                # call and hold the other core for a while; 50 ms of untimed calls first
                warm(f)
                times[k] += [timed(f) for _ in range(reps)]
        med = {k: statistics.median(v) * 1e9 / n for k, v in times.items()}
        rows.append((op, "x".join(map(str, shape)), threads, med))
    check(lib.tessera_runtime_destroy(rt))
check(lib.tessera_pipeline_destroy(pipe))

print(f"machine: {cpu_name()}")
vers = [f"Tessera {lib.tessera_version().decode()} (C ABI, concurrentPerform)"]
if ort is not None:
    vers.append(f"onnxruntime {ort.__version__}")
if torch is not None:
    vers.append(f"PyTorch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})")
vers.append(f"memory limit: plain C relu, AVX{'-512' if isa_ml == 512 else '2'} streaming stores "
            "(backward rows: dx = dy * (x > 0), AVX2, 12 bytes per element)")
print("peers: " + ", ".join(vers))
print(f"ns/element, medians of {args.repetitions} calls per peer in blocks alternating over {rounds} rounds "
      "(each round starting with the next peer); "
      "target: Tessera <= 0.9x the faster peer or <= 1.15x the memory limit")
print()
print("| op | shape | workers | Tessera | onnxruntime | PyTorch | memory limit | Tessera / faster peer | Tessera / memory limit | target |")
print("|---|---|---|---|---|---|---|---|---|---|")
misses = 0
for op, shape, t, med in rows:
    peers = [med[k] for k in ("onnxruntime", "pytorch") if k in med]
    best = min(peers) if peers else None
    ts, lim = med["tessera"], med["memory limit"]
    ok = (best is not None and ts <= 0.9 * best) or ts <= 1.15 * lim
    misses += not ok
    cells = [f"{med[k]:.3f}" if k in med else "-" for k in ("onnxruntime", "pytorch")]
    vs_peer = f"{ts / best:.2f}x" if best else "-"
    print(f"| {op} | {shape} | {t} | {ts:.3f} | {cells[0]} | {cells[1]} | {lim:.3f} | {vs_peer} | {ts / lim:.2f}x | "
          f"{'met' if ok else 'MISSED'} |")
print()
print(f"{len(rows) - misses} of {len(rows)} rows within the target")
