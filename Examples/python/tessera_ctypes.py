"""The C ABI's ctypes signatures (now tessera/_capi.py), for the scripts that import them by this name."""
from tessera._capi import check, default_path, f32p, load, op_names, ptr, shape  # noqa: F401
