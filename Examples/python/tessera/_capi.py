"""ctypes bindings for Tessera's C ABI (Sources/CTesseraABI/include/tessera.h): the one place that
declares the signatures, under the numpy-friendly `tessera` module and shared by
Examples/python/example.py and tools/compare_peers.py (through the tessera_ctypes shim).

    import tessera_ctypes as tc
    lib = tc.load()                   # or tc.load("path/to/libTesseraC.so")
    tc.check(lib, lib.tessera_relu(runtime, tc.ptr(x), tc.ptr(y), x.size))
"""
import ctypes
import glob
import os

f32p = ctypes.POINTER(ctypes.c_float)
_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def default_path():
    """$TESSERA_LIB, else libTesseraC.so from this checkout's release build (swift build -c release --product TesseraC)."""
    if os.environ.get("TESSERA_LIB"):
        return os.environ["TESSERA_LIB"]
    found = (glob.glob(os.path.join(_root, ".build", "*", "release", "libTesseraC.so"))
             + glob.glob(os.path.join(_root, ".build", "release", "libTesseraC.so")))
    if not found:
        raise FileNotFoundError("libTesseraC.so not found: swift build -c release --product TesseraC")
    return found[0]


def load(path=None):
    lib = ctypes.CDLL(path or default_path())
    lib.tessera_last_error.restype = ctypes.c_char_p
    lib.tessera_version.restype = ctypes.c_char_p
    # the op table: tessera_<name> for every op, and the generic calls
    lib.tessera_op_name.restype = ctypes.c_char_p
    lib.tessera_op_name.argtypes = [ctypes.c_int]
    lib.tessera_op_from_name.argtypes = [ctypes.c_char_p]
    lib.tessera_op_parameter_count.argtypes = [ctypes.c_int]
    lib.tessera_op_default_parameters.argtypes = [ctypes.c_int, f32p, f32p]
    strided = [ctypes.c_size_t] * 2
    lib.tessera_activation_run_strided.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                                   f32p, ctypes.c_size_t, f32p, ctypes.c_size_t] + strided
    lib.tessera_activation_backward_strided.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                                        f32p, ctypes.c_size_t, f32p, ctypes.c_size_t, f32p, ctypes.c_size_t,
                                                        f32p, ctypes.c_size_t] + strided
    lib.tessera_softmax_strided.argtypes = [ctypes.c_void_p, f32p, ctypes.c_size_t, f32p, ctypes.c_size_t] + strided + [ctypes.c_int]
    lib.tessera_softmax_backward_strided.argtypes = [ctypes.c_void_p, f32p, ctypes.c_size_t, f32p, ctypes.c_size_t,
                                                     f32p, ctypes.c_size_t] + strided + [ctypes.c_int]
    for i, name in enumerate(op_names(lib)):
        params = [ctypes.c_float] * lib.tessera_op_parameter_count(i)
        getattr(lib, "tessera_" + name).argtypes = [ctypes.c_void_p, f32p, f32p, ctypes.c_size_t] + params
        getattr(lib, "tessera_" + name + "_backward").argtypes = [ctypes.c_void_p, f32p, f32p, f32p, f32p, ctypes.c_size_t] + params
    lib.tessera_op_saved.argtypes = [ctypes.c_int]
    lib.tessera_activation_backward_with.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                                     f32p, f32p, f32p, f32p, ctypes.c_size_t]
    for name in ["tessera_softmax_backward", "tessera_log_softmax_backward"]:
        getattr(lib, name).argtypes = [ctypes.c_void_p, f32p, f32p, f32p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_int]
    lib.tessera_pipeline_backward.argtypes = [ctypes.c_void_p, ctypes.c_void_p, f32p, f32p, f32p,
                                              ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
    lib.tessera_activation_run.argtypes = [ctypes.c_void_p, ctypes.c_int, f32p, f32p, ctypes.c_size_t]
    lib.tessera_activation_run_with.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                                f32p, f32p, ctypes.c_size_t]
    for name in ["tessera_softmax", "tessera_log_softmax"]:
        getattr(lib, name).argtypes = [ctypes.c_void_p, f32p, f32p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_int]
    lib.tessera_runtime_create.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.tessera_runtime_destroy.argtypes = [ctypes.c_void_p]
    lib.tessera_pipeline_create.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.tessera_pipeline_destroy.argtypes = [ctypes.c_void_p]
    lib.tessera_pipeline_add_activation.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.tessera_pipeline_add_activation_with.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_float]
    lib.tessera_pipeline_add_affine.argtypes = [ctypes.c_void_p, ctypes.c_float, ctypes.c_float]
    lib.tessera_pipeline_add_clamp.argtypes = [ctypes.c_void_p, ctypes.c_float, ctypes.c_float]
    lib.tessera_pipeline_add_softmax.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.tessera_pipeline_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, f32p, f32p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
    return lib


def op_names(lib):
    """The op table's names in its order (index = the op's tessera_activation value)."""
    return [lib.tessera_op_name(i).decode() for i in range(lib.tessera_op_count())]


def check(lib, status):
    """Raises with Tessera's message for a non-zero status."""
    if status != 0:
        raise RuntimeError(f"tessera status {status}: {lib.tessera_last_error().decode()}")


def ptr(a):
    """A contiguous float32 numpy array as float * (None: NULL, for a saved tensor an op does not read)."""
    if a is None:
        return None
    assert a.dtype.name == "float32" and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(f32p)


def shape(dims):
    """(int64_t *shape, rank) for the softmax and pipeline calls."""
    return (ctypes.c_int64 * len(dims))(*dims), len(dims)
