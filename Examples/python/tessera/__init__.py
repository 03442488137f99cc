"""Tessera for numpy users: the activations, softmax and log-softmax of Tessera's C ABI on float32
arrays, forward and backward.

    import numpy as np, tessera
    y = tessera.gelu(x)                         # a new array
    tessera.gelu(x, out=y, threads=2)           # into y, on a 2-worker runtime
    p = tessera.softmax(x, dim=-1)
    dx = tessera.softmax_backward(dy, p, dim=-1)
    dx = tessera.sigmoid_backward(dy, output=y) # from the saved tensor the op reads

Every op of Tessera's table is a function (`tessera.ops()` lists them) taking its parameters
positionally in PyTorch's order (`tessera.leaky_relu(x, 0.2)`, `tessera.softplus(x, 2.0, 20.0)`),
and has a `<name>_backward(grad_output, input=None, output=None, *params)`.  Arrays must be
float32; element-wise ops and the last-dim softmax take C-contiguous arrays and 2-D views whose
rows are contiguous (x[:, :k]); `out` must match.  Errors raise TesseraError with Tessera's
message.  The library: $TESSERA_LIB, else this checkout's .build/release/libTesseraC.so.
"""
import ctypes
import threading

import numpy as np

from . import _capi

__all__ = ["TesseraError", "ops", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "version"]


class TesseraError(RuntimeError):
    """A call Tessera rejected: `status` is its tessera_status, the message is Tessera's."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


_lib = None
_lock = threading.Lock()
_runtimes = {}


def _load():
    global _lib
    with _lock:
        if _lib is None:
            _lib = _capi.load()
    return _lib


def _check(status):
    if status != 0:
        raise TesseraError(status, _lib.tessera_last_error().decode())


def _runtime(threads):
    """NULL (the default runtime) or a cached runtime of `threads` workers."""
    if threads is None:
        return None
    if not isinstance(threads, int) or isinstance(threads, bool):
        raise TypeError(f"threads must be an int, got {type(threads).__name__}")
    with _lock:
        rt = _runtimes.get(threads)
        if rt is None:
            h = ctypes.c_void_p()
            _check(_lib.tessera_runtime_create(threads, 0, None, ctypes.byref(h)))
            rt = _runtimes[threads] = h
    return rt


def _array(a, name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {a.dtype} (convert with .astype(np.float32))")
    return a


def _layout(a, name):
    """('flat', None) for a C-contiguous array, ('rows', row stride in floats) for a 2-D view with
    contiguous rows; anything else is an error."""
    if a.flags["C_CONTIGUOUS"]:
        return "flat", None
    if a.ndim == 2 and a.strides[1] == 4 and a.strides[0] % 4 == 0 and a.strides[0] >= 4 * a.shape[1]:
        return "rows", a.strides[0] // 4
    raise ValueError(f"{name} must be C-contiguous or a 2-D view with contiguous rows (strides {a.strides})")


def _out(out, like, name="out"):
    if out is None:
        return np.empty(like.shape, dtype=np.float32)
    _array(out, name)
    if out.shape != like.shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {like.shape}")
    if not out.flags["WRITEABLE"]:
        raise ValueError(f"{name} is read-only")
    return out


def _p(a):
    return a.ctypes.data_as(_capi.f32p)


def _stride(a, layout):
    return layout[1] if layout[0] == "rows" else a.shape[-1]


def _elementwise(op, params, x, out, threads):
    lib = _load()
    x = _array(x, "x")
    y = _out(out, x)
    lx, ly = _layout(x, "x"), _layout(y, "out")
    a, b = _params(op, params)
    rt = _runtime(threads)
    if lx[0] == "flat" and ly[0] == "flat":
        _check(lib.tessera_activation_run_with(rt, op, a, b, _p(x), _p(y), x.size))
    else:
        rows, cols = x.shape
        _check(lib.tessera_activation_run_strided(rt, op, a, b, _p(x), _stride(x, lx), _p(y), _stride(y, ly), rows, cols))
    return y


def _params(op, params):
    lib = _load()
    n = lib.tessera_op_parameter_count(op)
    if len(params) > n:
        raise TypeError(f"{lib.tessera_op_name(op).decode()} takes {n} parameter(s), got {len(params)}")
    a, b = ctypes.c_float(), ctypes.c_float()
    lib.tessera_op_default_parameters(op, ctypes.byref(a), ctypes.byref(b))
    got = list(params) + [a.value, b.value][len(params):]
    return float(got[0]), float(got[1])


def _backward(op, params, grad_output, input, output, out, threads):
    lib = _load()
    dy = _array(grad_output, "grad_output")
    views = [(dy, "grad_output")] + [(t, n) for t, n in ((input, "input"), (output, "output")) if t is not None]
    for t, n in views[1:]:
        _array(t, n)
        if t.shape != dy.shape:
            raise ValueError(f"{n} has shape {t.shape}, expected grad_output's {dy.shape}")
    dx = _out(out, dy)
    a, b = _params(op, params)
    rt = _runtime(threads)
    layouts = [_layout(t, n) for t, n in views] + [_layout(dx, "out")]
    if all(lay[0] == "flat" for lay in layouts):
        _check(lib.tessera_activation_backward_with(rt, op, a, b, _capi.ptr(input), _capi.ptr(output), _p(dy), _p(dx), dy.size))
    else:
        rows, cols = dy.shape
        def view(t):
            return (None, 0) if t is None else (_p(t), _stride(t, _layout(t, "")))
        (xp, xs), (yp, ys) = view(input), view(output)
        _check(lib.tessera_activation_backward_strided(rt, op, a, b, xp, xs, yp, ys, _p(dy), _stride(dy, layouts[0]),
                                                       _p(dx), _stride(dx, layouts[-1]), rows, cols))
    return dx


def _make(op, name):
    def forward(x, *params, out=None, threads=None):
        return _elementwise(op, params, x, out, threads)

    def backward(grad_output, input=None, output=None, *params, out=None, threads=None):
        return _backward(op, params, grad_output, input, output, out, threads)

    forward.__name__, backward.__name__ = name, name + "_backward"
    forward.__doc__ = f"Tessera's {name} of a float32 array (parameters in PyTorch's order); `out` to write in place."
    backward.__doc__ = (f"The gradient of {name}: grad_output * {name}'(.), from `input` or `output` "
                        f"(the one the op reads; tessera.saved('{name}') says which).")
    return forward, backward


def ops():
    """The op table's names, in its order."""
    return _capi.op_names(_load())


def saved(name):
    """Which saved tensor an op's backward reads: 'input', 'output', 'either' or 'none'."""
    lib = _load()
    op = lib.tessera_op_from_name(name.encode())
    if op < 0:
        raise ValueError(f"unknown op {name!r}")
    return ["input", "output", "either", "none"][lib.tessera_op_saved(op)]


def version():
    return _load().tessera_version().decode()


def _softmax(x, dim, log, out, threads):
    lib = _load()
    x = _array(x, "x")
    y = _out(out, x)
    rt = _runtime(threads)
    lx, ly = _layout(x, "x"), _layout(y, "out")
    if lx[0] == "flat" and ly[0] == "flat":
        sh, rank = _capi.shape(x.shape)
        _check((lib.tessera_log_softmax if log else lib.tessera_softmax)(rt, _p(x), _p(y), sh, rank, dim))
    else:
        if dim not in (-1, 1):
            raise ValueError("a strided view takes softmax along its last dim only")
        rows, cols = x.shape
        _check(lib.tessera_softmax_strided(rt, _p(x), _stride(x, lx), _p(y), _stride(y, ly), rows, cols, int(log)))
    return y


def _softmax_backward(grad_output, output, dim, log, out, threads):
    lib = _load()
    dy, y = _array(grad_output, "grad_output"), _array(output, "output")
    if y.shape != dy.shape:
        raise ValueError(f"output has shape {y.shape}, expected grad_output's {dy.shape}")
    dx = _out(out, dy)
    rt = _runtime(threads)
    lays = [_layout(y, "output"), _layout(dy, "grad_output"), _layout(dx, "out")]
    if all(lay[0] == "flat" for lay in lays):
        sh, rank = _capi.shape(dy.shape)
        _check((lib.tessera_log_softmax_backward if log else lib.tessera_softmax_backward)(rt, _p(y), _p(dy), _p(dx), sh, rank, dim))
    else:
        if dim not in (-1, 1):
            raise ValueError("a strided view takes softmax along its last dim only")
        rows, cols = dy.shape
        _check(lib.tessera_softmax_backward_strided(rt, _p(y), _stride(y, lays[0]), _p(dy), _stride(dy, lays[1]),
                                                    _p(dx), _stride(dx, lays[2]), rows, cols, int(log)))
    return dx


def softmax(x, dim=-1, out=None, threads=None):
    """Softmax of a float32 array along `dim` (any dim of a contiguous array)."""
    return _softmax(x, dim, False, out, threads)


def log_softmax(x, dim=-1, out=None, threads=None):
    """Log-softmax of a float32 array along `dim`."""
    return _softmax(x, dim, True, out, threads)


def softmax_backward(grad_output, output, dim=-1, out=None, threads=None):
    """softmax's gradient from its output: output * (grad_output - sum(grad_output * output))."""
    return _softmax_backward(grad_output, output, dim, False, out, threads)


def log_softmax_backward(grad_output, output, dim=-1, out=None, threads=None):
    """log_softmax's gradient from its output: grad_output - exp(output) * sum(grad_output)."""
    return _softmax_backward(grad_output, output, dim, True, out, threads)


def __getattr__(name):
    # the op table's functions, made when first asked for (loading the library then)
    lib = _load()
    base = name[:-len("_backward")] if name.endswith("_backward") else name
    op = lib.tessera_op_from_name(base.encode())
    if op < 0:
        raise AttributeError(f"module 'tessera' has no attribute {name!r}")
    forward, backward = _make(op, base)
    globals()[base], globals()[base + "_backward"] = forward, backward
    return globals()[name]
