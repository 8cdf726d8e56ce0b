"""Which imported globals a pickle may name safely, and which run code or touch the system.

Anything on neither list is "unknown": loading it runs code we have not vetted, which is
not the same as proving it harmless.
"""

from __future__ import annotations

_TORCH_STORAGES = {
    f"{kind}Storage"
    for kind in [
        "Float",
        "Double",
        "Half",
        "BFloat16",
        "Long",
        "Int",
        "Short",
        "Char",
        "Byte",
        "Bool",
        "ComplexFloat",
        "ComplexDouble",
        "QUInt8",
        "QInt8",
        "QInt32",
        "QUInt4x2",
        "QUInt2x4",
        "Untyped",
        "Typed",
    ]
}
_TORCH_DTYPES = set(
    [
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
        "complex64",
        "complex128",
        "float",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "double",
        "half",
        "long",
        "int",
        "short",
        "cfloat",
        "cdouble",
        "qint8",
        "quint8",
        "qint32",
        "strided",
        "sparse_coo",
        "sparse_csr",
        "contiguous_format",
        "channels_last",
        "preserve_format",
    ]
)

SAFE_GLOBALS: dict[str, set[str] | None] = {
    # None means every name in the module.
    "collections": {"OrderedDict", "defaultdict", "Counter", "deque"},
    "_collections": {"OrderedDict", "defaultdict", "deque"},
    "builtins": {
        "set",
        "frozenset",
        "slice",
        "complex",
        "bytearray",
        "bytes",
        "list",
        "dict",
        "tuple",
        "int",
        "float",
        "str",
        "bool",
        "object",
        "range",
        "NoneType",
        "Ellipsis",
    },
    "__builtin__": {
        "set",
        "frozenset",
        "slice",
        "complex",
        "bytearray",
        "list",
        "dict",
        "tuple",
        "int",
        "float",
        "str",
        "unicode",
        "long",
        "bool",
        "object",
    },
    "copyreg": {"_reconstructor", "__newobj__", "__newobj_ex__"},
    "copy_reg": {"_reconstructor"},
    "_codecs": {"encode"},
    "datetime": {"datetime", "date", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "uuid": {"UUID"},
    "argparse": {"Namespace"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"},
    "torch": _TORCH_STORAGES | _TORCH_DTYPES | {"Size", "device", "dtype", "layout"},
    "torch.storage": {"UntypedStorage", "TypedStorage"},
    "torch.cuda": _TORCH_STORAGES,
    "torch._utils": {
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
        "_rebuild_sparse_tensor",
        "_rebuild_nested_tensor",
        "_rebuild_device_tensor_from_numpy",
        "_rebuild_meta_tensor_no_storage",
        "_rebuild_wrapper_subclass",
        "_rebuild_qtensor",
        "_rebuild_sparse_csr_tensor",
        "_rebuild_device_tensor_from_cpu_tensor",
    },
    "torch._tensor": {"_rebuild_from_type_v2"},
    "torch.nn.parameter": {"Parameter"},
    "torch.nn.modules.module": {"_IncompatibleKeys"},
    "numpy": {"dtype", "ndarray", "float64", "float32", "int64", "int32", "bool_"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.dtypes": None,
    "numpy.random._pickle": {"__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"},
    "numpy.random.mtrand": {"RandomState"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._pcg64": {"PCG64"},
    "joblib.numpy_pickle": {"NumpyArrayWrapper"},
    "joblib.numpy_pickle_compat": {"NDArrayWrapper", "ZNDArrayWrapper"},
    "lightning.fabric.utilities.data": {"AttributeDict"},
    "pytorch_lightning.utilities.parsing": {"AttributeDict"},
}

# Class-only module trees: constructing a class via __new__ + __setstate__ runs no user code
# of ours, but a lowercase name may be any function, so only CamelCase names pass.
SAFE_CLASS_TREES = ("sklearn.", "torch.nn.modules.", "torch.optim.")

DANGEROUS_MODULES = frozenset(
    [
        "os",
        "posix",
        "nt",
        "subprocess",
        "_posixsubprocess",
        "runpy",
        "socket",
        "_socket",
        "shutil",
        "sys",
        "importlib",
        "pty",
        "webbrowser",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "marshal",
        "ctypes",
        "_ctypes",
        "code",
        "codeop",
        "pdb",
        "bdb",
        "asyncio",
        "multiprocessing",
        "_thread",
        "threading",
        "signal",
        "pydoc",
        "venv",
        "ensurepip",
        "pip",
        "http",
        "httplib",
        "urllib",
        "urllib2",
        "requests",
        "aiohttp",
        "ftplib",
        "smtplib",
        "telnetlib",
        "ssl",
        "types",
        "commands",
        "popen2",
        "platform",
        "tempfile",
        "_io",
        "io",
        "codecs",
        "timeit",
        "profile",
        "cProfile",
        "trace",
        "doctest",
        "pkgutil",
        "zipimport",
        "imp",
    ]
)
DANGEROUS_NAMES: dict[str, set[str]] = {
    "builtins": {
        "eval",
        "exec",
        "compile",
        "getattr",
        "setattr",
        "delattr",
        "__import__",
        "open",
        "breakpoint",
        "input",
        "globals",
        "locals",
        "vars",
        "help",
    },
    "operator": {"attrgetter", "methodcaller", "call"},
    "functools": {"partial", "reduce"},
    "torch": {"load", "hub"},
    "torch.serialization": {"load", "_load"},
    "torch.hub": {"load", "load_state_dict_from_url", "download_url_to_file"},
    "torch.jit": {"load"},
    "torch.storage": {"_load_from_bytes"},
    "torch._inductor.codecache": {"compile_file"},
    "torch.utils.cpp_extension": {"load", "load_inline"},
    "numpy": {"load", "fromfile"},
    "numpy.testing._private.utils": {"runstring"},
    "joblib": {"load"},
}
DANGEROUS_NAMES["__builtin__"] = DANGEROUS_NAMES["builtins"] | {"apply", "execfile", "file"}

# Functions whose argument is itself a pickle: its bytes are scanned as a nested pickle.
NESTED_LOADERS = frozenset(
    {
        "pickle.loads",
        "pickle._loads",
        "_pickle.loads",
        "cPickle.loads",
        "dill.loads",
        "cloudpickle.loads",
        "torch.storage._load_from_bytes",
        "joblib.load",
        "pickle.load",
    }
)


def classify(module: str, name: str) -> str:
    """'safe', 'dangerous' or 'unknown' for the global ``module.name``."""
    root = module.split(".", 1)[0]
    head = name.split(".", 1)[0]  # protocol 4 qualnames: "eval.__call__" is still eval
    if name in DANGEROUS_NAMES.get(module, ()) or head in DANGEROUS_NAMES.get(module, ()):
        return "dangerous"
    if module in DANGEROUS_MODULES or root in DANGEROUS_MODULES:
        return "dangerous"
    allowed = SAFE_GLOBALS.get(module, set())
    if allowed is None or name in allowed:
        return "safe"
    if (
        module.startswith(SAFE_CLASS_TREES)
        and name[:1].isupper()
        and name.isidentifier()
        and "." not in name
    ):
        return "safe"
    return "unknown"
