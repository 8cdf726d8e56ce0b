"""Which imported globals a pickle may name safely, and which run code or touch the system.

``safe`` is a proof: the exact ``(module, qualified name)`` is on ``SAFE_GLOBALS``, a list of
callables that cannot run code or touch the system whatever arguments they get.  There are
no module wildcards and no name-shape rules: libraries re-export standard-library classes
(``GzipFile``, ``Thread``, ``Listener``) under innocent paths, and dotted names walk
attributes (``numpy.dtypes`` + ``__builtins__.get`` is ``exec``).  ``dangerous`` covers the
known gadget families.  Anything else is ``unknown``: loading it runs code nobody vetted.

A few safe callables call one of their arguments (``functools.partial``, torch's
``_rebuild_from_type_v2``): ``CALLS_ARGUMENT`` says which, and the pickle walker vets what
they wrap.
"""

from __future__ import annotations

import _compat_pickle


def _words(text: str) -> list[str]:
    """The words of ``text`` (long name lists read better as one string)."""
    return text.split()


_STORAGE_KINDS = _words(
    "Float Double Half BFloat16 Long Int Short Char Byte Bool ComplexFloat ComplexDouble "
    "QUInt8 QInt8 QInt32 QUInt4x2 QUInt2x4 Untyped Typed"
)
_TORCH_STORAGES = {f"{kind}Storage" for kind in _STORAGE_KINDS}
_TORCH_TENSOR_CLASSES = {
    f"{kind}Tensor" for kind in _words("Float Double Half BFloat16 Long Int Short Char Byte Bool")
}
"""The legacy dense tensor types (``torch.FloatTensor``, ``torch.cuda.HalfTensor``): a
legacy tar names each tensor's type in its ``tensors`` member, and old pickles name them
as values.  Calling one only builds a tensor (``torch._tensor_classes``, which torch's
``weights_only`` loader allows); the sparse ones (``torch.sparse.FloatTensor``) take
indices torch checks only after loading, so they stay unknown."""
_TORCH_DTYPES = set(
    _words(
        "float32 float64 float16 bfloat16 int64 int32 int16 int8 uint8 uint16 uint32 uint64 "
        "bool complex32 complex64 complex128 float float8_e4m3fn float8_e5m2 float8_e4m3fnuz "
        "float8_e5m2fnuz double half long int short cfloat cdouble chalf qint8 quint8 qint32 "
        "quint4x2 strided sparse_coo sparse_csr sparse_csc sparse_bsr sparse_bsc "
        "contiguous_format channels_last channels_last_3d preserve_format "
        # quantisation schemes (``torch.qscheme`` values, not callable)
        "per_tensor_affine per_channel_affine per_tensor_symmetric per_channel_symmetric "
        "per_channel_affine_float_qparams"
    )
)
_NUMPY_DTYPE_CLASSES = {
    f"{kind}DType"
    for kind in _words(
        "Bool Int8 Int16 Int32 Int64 UInt8 UInt16 UInt32 UInt64 Float16 Float32 Float64 "
        "LongDouble Complex64 Complex128 CLongDouble Str Bytes Void Object DateTime64 "
        "TimeDelta64 Byte UByte Short UShort Int UInt Long ULong LongLong ULongLong"
    )
}
_NUMPY_SCALARS = set(
    _words(
        "bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 "
        "longdouble complex64 complex128 clongdouble str_ bytes_ void datetime64 timedelta64 "
        "intc uintc int_ uint longlong ulonglong half single double"
    )
)
_NN = "torch.nn.modules."
_TORCH_MODULES = {
    "linear": "Linear Identity Bilinear LazyLinear NonDynamicallyQuantizableLinear",
    "conv": "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d",
    "batchnorm": "BatchNorm1d BatchNorm2d BatchNorm3d SyncBatchNorm",
    "normalization": "LayerNorm GroupNorm LocalResponseNorm RMSNorm",
    "instancenorm": "InstanceNorm1d InstanceNorm2d InstanceNorm3d",
    "sparse": "Embedding EmbeddingBag",
    "dropout": "Dropout Dropout1d Dropout2d Dropout3d AlphaDropout",
    "activation": (
        "ReLU ReLU6 GELU SiLU Mish Tanh Sigmoid Softmax LogSoftmax LeakyReLU ELU SELU "
        "PReLU Softplus Hardswish Hardsigmoid Hardtanh MultiheadAttention GLU"
    ),
    "container": "Sequential ModuleList ModuleDict ParameterList ParameterDict",
    "pooling": (
        "MaxPool1d MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d "
        "AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d"
    ),
    "flatten": "Flatten Unflatten",
    "rnn": "RNN LSTM GRU RNNCell LSTMCell GRUCell",
    "transformer": (
        "Transformer TransformerEncoder TransformerDecoder TransformerEncoderLayer "
        "TransformerDecoderLayer"
    ),
    "loss": "CrossEntropyLoss MSELoss L1Loss NLLLoss BCELoss BCEWithLogitsLoss SmoothL1Loss",
    "padding": "ZeroPad2d ConstantPad1d ConstantPad2d ReflectionPad2d ReplicationPad2d",
    "upsampling": "Upsample UpsamplingNearest2d UpsamplingBilinear2d",
    "pixelshuffle": "PixelShuffle PixelUnshuffle",
    "module": "_IncompatibleKeys",
}
_TORCH_OPTIM = {
    "adamw": "AdamW",
    "adam": "Adam",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
    "lbfgs": "LBFGS",
    "lr_scheduler": (
        "StepLR MultiStepLR ExponentialLR CosineAnnealingLR CosineAnnealingWarmRestarts "
        "LambdaLR OneCycleLR LinearLR ConstantLR ReduceLROnPlateau SequentialLR"
    ),
}
_SKLEARN = {
    "linear_model._logistic": "LogisticRegression LogisticRegressionCV",
    "linear_model._base": "LinearRegression",
    "linear_model._ridge": "Ridge RidgeClassifier RidgeCV",
    "linear_model._coordinate_descent": "Lasso ElasticNet",
    "linear_model._stochastic_gradient": "SGDClassifier SGDRegressor",
    "pipeline": "Pipeline FeatureUnion",
    "compose._column_transformer": "ColumnTransformer",
    "preprocessing._data": "StandardScaler MinMaxScaler RobustScaler MaxAbsScaler Normalizer",
    "preprocessing._label": "LabelEncoder LabelBinarizer",
    "preprocessing._encoders": "OneHotEncoder OrdinalEncoder",
    "preprocessing._polynomial": "PolynomialFeatures",
    "impute._base": "SimpleImputer",
    "decomposition._pca": "PCA",
    "decomposition._truncated_svd": "TruncatedSVD",
    "feature_extraction.text": "TfidfVectorizer CountVectorizer TfidfTransformer",
    "tree._classes": "DecisionTreeClassifier DecisionTreeRegressor",
    "tree._tree": "Tree",
    "ensemble._forest": (
        "RandomForestClassifier RandomForestRegressor ExtraTreesClassifier ExtraTreesRegressor"
    ),
    "ensemble._gb": "GradientBoostingClassifier GradientBoostingRegressor",
    "svm._classes": "SVC SVR LinearSVC LinearSVR",
    "neighbors._classification": "KNeighborsClassifier",
    "neighbors._regression": "KNeighborsRegressor",
    "naive_bayes": "GaussianNB MultinomialNB",
    "cluster._kmeans": "KMeans MiniBatchKMeans",
    "utils._bunch": "Bunch",
    "dummy": "DummyClassifier DummyRegressor",
    # what a fitted gradient boosting model keeps: losses and links are plain data
    "_loss.loss": (
        "HalfBinomialLoss HalfMultinomialLoss HalfSquaredError AbsoluteError PinballLoss "
        "HuberLoss ExponentialLoss"
    ),
    "_loss._loss": (
        "CyHalfBinomialLoss CyHalfMultinomialLoss CyHalfSquaredError CyAbsoluteError "
        "CyPinballLoss CyHuberLoss CyExponentialLoss"
    ),
    "_loss.link": "Interval IdentityLink LogitLink LogLink MultinomialLogit",
}
_PANDAS = {
    "pandas.core.frame": "DataFrame",
    "pandas.core.series": "Series",
    "pandas.core.internals.managers": "BlockManager SingleBlockManager",
    "pandas.core.internals.blocks": "Block NumpyBlock",
    "pandas._libs.internals": "_unpickle_block BlockPlacement",
    "pandas.core.indexes.base": "_new_Index Index",
    "pandas.core.indexes.range": "RangeIndex",
    "pandas.core.indexes.multi": "MultiIndex",
    "pandas.core.indexes.datetimes": "_new_DatetimeIndex DatetimeIndex",
    "pandas.core.arrays.datetimes": "DatetimeArray",
    "pandas.core.arrays.categorical": "Categorical",
    "pandas.core.dtypes.dtypes": "CategoricalDtype DatetimeTZDtype",
    "pandas._libs.tslibs.timestamps": "_unpickle_timestamp Timestamp",
    "pandas._libs.tslibs.timedeltas": "Timedelta",
    "pandas.core.flags": "Flags",
    "pandas.core.arrays.string_": "StringDtype StringArray",
    "pandas.core.arrays.timedeltas": "TimedeltaArray",
    "pandas.core.indexes.category": "CategoricalIndex",
    "pandas.core.indexes.timedeltas": "TimedeltaIndex",
    # pandas 3 pickles its public classes under their public paths; each is the very object
    # listed above (checked with ``is`` against pandas 3.1)
    "pandas": (
        "DataFrame Series Categorical CategoricalDtype Index RangeIndex MultiIndex "
        "CategoricalIndex DatetimeIndex TimedeltaIndex StringDtype DatetimeTZDtype Timestamp "
        "Timedelta"
    ),
    "pandas.arrays": "StringArray DatetimeArray TimedeltaArray",
    # Cython's unpickler for these arrays: ``NDArrayBacked.__new__(cls)`` then plain state
    "pandas._libs.arrays": "__pyx_unpickle_NDArrayBacked",
}
_TRANSFORMERS = {
    "transformers.training_args": "TrainingArguments OptimizerNames ParallelMode",
    "transformers.training_args_seq2seq": "Seq2SeqTrainingArguments",
    "transformers.trainer_utils": (
        "IntervalStrategy SchedulerType HubStrategy SaveStrategy EvaluationStrategy FSDPOption"
    ),
    "transformers.debug_utils": "DebugOption",
    "transformers.trainer_pt_utils": "AcceleratorConfig",
    "accelerate.utils.dataclasses": "DistributedType",
    "accelerate.state": "PartialState",
}


def _names(module: str, names: str) -> dict[str, set[str]]:
    return {module: set(names.split())}


SAFE_GLOBALS: dict[str, set[str]] = {
    "collections": {"OrderedDict", "defaultdict", "Counter", "deque"},
    "_collections": {"OrderedDict", "defaultdict", "deque"},
    "builtins": set(
        _words(
            "set frozenset slice complex bytearray bytes list dict tuple int float str bool "
            "object range NoneType Ellipsis"
        )
    ),
    "copyreg": {"_reconstructor", "__newobj__", "__newobj_ex__"},
    "_codecs": {"encode"},
    "datetime": {"datetime", "date", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "uuid": {"UUID"},
    "argparse": {"Namespace"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"},
    "torch": _TORCH_STORAGES
    | _TORCH_DTYPES
    | _TORCH_TENSOR_CLASSES
    | {"Size", "device", "dtype", "layout", "Tensor"},
    "torch.storage": {"UntypedStorage", "TypedStorage"},
    "torch.serialization": {"_get_layout"},
    "torch.cuda": _TORCH_STORAGES | _TORCH_TENSOR_CLASSES,
    "torch._utils": set(
        _words(
            "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
            "_rebuild_parameter_with_state _rebuild_sparse_tensor _rebuild_nested_tensor "
            "_rebuild_device_tensor_from_numpy _rebuild_meta_tensor_no_storage "
            "_rebuild_wrapper_subclass _rebuild_qtensor _rebuild_sparse_csr_tensor "
            "_rebuild_device_tensor_from_cpu_tensor"
        )
    ),
    "torch._tensor": {"_rebuild_from_type_v2"},
    # TorchScript's pickles (data.pkl, code/*.debug_pkl) tag lists and containers with
    # these; each returns its argument (build_tensor_from_id: an int or None) and does
    # nothing else (torch/jit/_pickle.py, in 2.13 as in older releases)
    "torch.jit._pickle": set(
        _words(
            "build_intlist build_tensorlist build_doublelist build_boollist "
            "build_tensor_from_id restore_type_tag"
        )
    ),
    "torch.nn.parameter": {"Parameter", "UninitializedParameter", "Buffer"},
    "torch.optim": {"AdamW", "Adam", "SGD"},
    "functools": {"partial"},
    "numpy": {"dtype", "ndarray"} | _NUMPY_SCALARS,
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.dtypes": _NUMPY_DTYPE_CLASSES,
    "numpy.random._pickle": {"__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"},
    "numpy.random.mtrand": {"RandomState"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._pcg64": {"PCG64", "PCG64DXSM"},
    "numpy.random._philox": {"Philox"},
    "numpy.random._sfc64": {"SFC64"},
    "numpy.random.bit_generator": {"SeedSequence", "__pyx_unpickle_SeedSequence"},
    "numpy.random._generator": {"Generator"},
    "joblib.numpy_pickle": {"NumpyArrayWrapper"},
    # not joblib.numpy_pickle_compat's NDArrayWrapper/ZNDArrayWrapper (joblib <= 0.9): its
    # state names a file (any path) that joblib.load reads with numpy.load(allow_pickle=True)
    "lightning.fabric.utilities.data": {"AttributeDict"},
    "pytorch_lightning.utilities.parsing": {"AttributeDict"},
    "lightning.pytorch.utilities.parsing": {"AttributeDict"},
    "lightning_fabric.utilities.data": {"AttributeDict"},
    "omegaconf.dictconfig": {"DictConfig"},
    "omegaconf.listconfig": {"ListConfig"},
    "omegaconf.base": {"ContainerMetadata", "Metadata"},
    "omegaconf.nodes": {"AnyNode", "ValueNode", "StringNode", "IntegerNode", "FloatNode"},
    "typing": {"Any"},
}
for _module, _group in _TORCH_MODULES.items():
    SAFE_GLOBALS.update(_names(_NN + _module, _group))
for _module, _group in _TORCH_OPTIM.items():
    SAFE_GLOBALS.update(_names("torch.optim." + _module, _group))
for _module, _group in _SKLEARN.items():
    SAFE_GLOBALS.update(_names("sklearn." + _module, _group))
for _table in (_PANDAS, _TRANSFORMERS):
    for _module, _group in _table.items():
        SAFE_GLOBALS.update(_names(_module, _group))

CALLS_ARGUMENT: dict[str, tuple[int, ...]] = {
    "functools.partial": (0,),
    "functools.reduce": (0,),
    "torch._tensor._rebuild_from_type_v2": (0, 1),
    "copyreg._reconstructor": (0, 1),
    "copyreg.__newobj__": (0,),
    "copyreg.__newobj_ex__": (0,),
    "pandas.core.indexes.base._new_Index": (0,),
    "torch._utils._rebuild_wrapper_subclass": (0,),
    "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked": (0,),
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": (0,),
}
"""Safe callables that call (or construct) the arguments at these positions: each must be
a safe global itself, else the call is as dangerous as what it wraps."""

NUMPY_BIT_CTOR = "numpy.random._pickle.__bit_generator_ctor"
NUMPY_RANDOM_CTORS = frozenset(
    {
        NUMPY_BIT_CTOR,
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
    }
)
"""numpy's pickled random generators.  ``__bit_generator_ctor(x)`` calls ``x()`` when x is a
class (else looks a name up); the other two call their second argument (by default
``__bit_generator_ctor``) with their first, unless the first is a BitGenerator already."""

BARE_POSITIONS = frozenset(
    {
        ("copyreg._reconstructor", 0),
        ("copyreg.__newobj__", 0),
        ("copyreg.__newobj_ex__", 0),
        ("pandas.core.indexes.base._new_Index", 0),
        ("torch._utils._rebuild_wrapper_subclass", 0),
        ("pandas._libs.arrays.__pyx_unpickle_NDArrayBacked", 0),
        ("numpy.random.bit_generator.__pyx_unpickle_SeedSequence", 0),
    }
)
"""Positions whose class is only created bare (``cls.__new__``), never ``__init__``-ed."""

NEW_ONLY = frozenset(
    [f"{_NN}{module}.{name}" for module, names in _TORCH_MODULES.items() for name in names.split()]
    + [
        "transformers.training_args.TrainingArguments",
        "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
        "transformers.trainer_pt_utils.AcceleratorConfig",
        "accelerate.state.PartialState",
        "omegaconf.dictconfig.DictConfig",
        "omegaconf.listconfig.ListConfig",
    ]
)
"""Classes that are safe to create bare (``cls.__new__`` then state, as pickles of them do)
but whose constructor does real work (allocates, reads configs): calling them is unknown."""

DANGEROUS_MODULES = frozenset(
    _words(
        # processes, code, imports
        "os posix nt _winapi subprocess _posixsubprocess pty tty pipes sys runpy importlib imp "
        "zipimport pkgutil code codeop pdb bdb cProfile profile pstats timeit trace doctest "
        "unittest test idlelib lib2to3 turtle turtledemo tkinter _tkinter pydoc pydoc_data "
        "venv ensurepip pip setuptools distutils pkg_resources _distutils_hack site sysconfig "
        "platform _osx_support _aix_support _sitebuiltins compileall py_compile modulefinder "
        "zipapp antigravity this atexit signal faulthandler gc inspect types marshal "
        "ctypes _ctypes cffi _thread threading multiprocessing _multiprocessing concurrent "
        "asyncio _asyncio sched readline rlcompleter getpass pwd grp resource fcntl termios "
        "_pyrepl asyncore asynchat smtpd mailbox syslog msvcrt winreg _winreg winsound "
        "_frozen_importlib _frozen_importlib_external _imp _signal _posixshmem "
        # files and the network
        "io _io codecs _codecs fileinput linecache glob fnmatch shutil tempfile tarfile "
        "zipfile gzip bz2 lzma zlib shelve dbm sqlite3 _sqlite3 mmap filecmp posixpath "
        "ntpath genericpath logging socket _socket socketserver ssl _ssl select selectors "
        "http httplib urllib urllib2 urllib3 requests httpx aiohttp ftplib smtplib poplib "
        "imaplib nntplib telnetlib xmlrpc webbrowser mailcap wsgiref cgi cgitb xml "
        # serialisers that load more code
        "pickle _pickle cPickle pickletools dill cloudpickle yaml ruamel jsonpickle "
        "shelve "
        # third-party tools that run commands or code
        "IPython ipykernel jupyter_client nbconvert nbformat paramiko fabric invoke sh "
        "plumbum pexpect psutil docker git numba Cython sympy jinja2 mako "
        "torch.hub torch.jit torch._jit_internal torch.package torch.fx torch._dynamo "
        "torch._inductor torch.distributed torch.multiprocessing torch.serialization "
        "torch.utils.cpp_extension torch.utils.model_zoo torch.utils.collect_env "
        "torch.utils.bottleneck torch.utils.benchmark torch.testing torch._export torch.export "
        "torch.compiler torch.onnx torch.cuda.memory torch.ops torch._ops torch.library "
        "numpy.f2py numpy.distutils numpy.ctypeslib numpy.testing numpy.lib.npyio "
        "numpy.lib.format numpy.lib._npyio_impl numpy.lib._datasource "
        "pandas.io pandas.core.computation "
        "joblib.externals joblib.parallel joblib._parallel_backends joblib.numpy_pickle_utils "
        "transformers.dynamic_module_utils transformers.utils.hub huggingface_hub "
        "keras.src.saving tensorflow.python.keras.saving"
    )
)
"""Modules (and everything under them) whose members run commands or code, load more
pickles, or read, write or send data."""

DANGEROUS_NAMES: dict[str, set[str]] = {
    "builtins": set(
        _words(
            "eval exec compile getattr setattr delattr __import__ open breakpoint input globals "
            "locals vars help exit quit __build_class__ __loader__ __spec__ memoryview "
            "apply execfile file reload"
        )
    ),
    "operator": {"attrgetter", "methodcaller", "call", "itemgetter"},
    "_operator": {"attrgetter", "methodcaller", "call", "itemgetter"},
    "functools": {"partialmethod", "singledispatch", "cached_property", "wraps", "update_wrapper"},
    "torch": {"load", "save", "hub", "from_file", "compile", "jit", "package", "ops", "_C"},
    "torch.storage": {"_load_from_bytes"},
    "numpy": set(
        _words(
            "load loads save savez savez_compressed savetxt loadtxt genfromtxt fromfile tofile "
            "memmap fromregex DataSource"
        )
    ),
    "numpy.core.multiarray": {"fromfile", "ndarray.tofile"},
    "pandas": set(
        _words(
            "read_pickle read_csv read_json read_excel read_parquet read_sql read_table read_html "
            "read_xml read_hdf read_feather read_orc read_sas read_spss read_stata read_fwf "
            "read_clipboard eval to_pickle"
        )
    ),
    "joblib": {"load", "dump", "Parallel", "Memory"},
    "copyreg": {"add_extension", "remove_extension", "pickle", "constructor"},
    "uuid": {
        "_get_command_stdout",
        "_popen",
        "_ifconfig_getnode",
        "_ip_getnode",
        "getnode",
        "uuid1",
        "_unix_getnode",
        "_arp_getnode",
        "_lanscan_getnode",
        "_netstat_getnode",
    },
    "_functools": {"reduce"},
    "enum": {"EnumMeta", "EnumType"},
}
"""Names that are dangerous in modules that are otherwise allowed or unknown."""

SINK_NAMES = frozenset(
    _words(
        "system popen popen2 popen3 popen4 spawn spawnl spawnv spawnve spawnvp execl execv "
        "execve execvp execvpe exec eval execfile run_path run_module import_module load_module "
        "__import__ check_output check_call getoutput getstatusoutput Popen loads load "
        "read_pickle load_model from_pretrained load_state_dict_from_url download_url_to_file "
        "urlopen urlretrieve write_text write_bytes unlink rmtree remove rmdir rename replace "
        "symlink_to hardlink_to chmod touch mkdir startfile kill fork forkpty "
        "create_subprocess_exec "
        "create_subprocess_shell run_python_script assert_run_python_script write_file get_file "
        "open exec_module getattr setattr delattr compile breakpoint "
        "__getattribute__ __getattr__ __subclasses__ __globals__ "
        "__builtins__ __dict__ __code__ __reduce__ __reduce_ex__ __setstate__ __class__ __bases__ "
        "__base__ __mro__ __init_subclass__ __call__ __func__ __self__ __wrapped__ __closure__"
    )
)
"""Final names that, in any module or at the end of any dotted path, reach a known sink or
walk attributes towards one."""

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
        "numpy.loads",
        "pandas.read_pickle",
    }
)
"""Functions whose argument is itself a pickle: its bytes are scanned as a nested pickle."""

_RANK = {"safe": 0, "unknown": 1, "dangerous": 2}


def _in_module_tree(module: str, roots: frozenset[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in roots for i in range(1, len(parts) + 1))


def classify_exact(module: str, name: str) -> str:
    """The verdict for ``module.name`` exactly as spelled (no compatibility mapping)."""
    if name in SAFE_GLOBALS.get(module, ()):
        return "safe"
    parts = name.split(".")
    if _in_module_tree(module, DANGEROUS_MODULES):
        return "dangerous"
    if any(part in SINK_NAMES for part in parts):
        return "dangerous"
    if parts[0] in DANGEROUS_NAMES.get(module, ()) or name in DANGEROUS_NAMES.get(module, ()):
        return "dangerous"
    if len(parts) > 1 and any(p.startswith("__") and p.endswith("__") for p in parts):
        return "dangerous"  # a dotted name walking dunders reaches anything
    if not module or not name or "" in parts:
        return "dangerous"  # malformed names that some loader resolves oddly
    return "unknown"


def compat_name(module: str, name: str) -> tuple[str, str]:
    """Where Python 3's unpickler looks ``module.name`` up in a protocol 0-2 pickle."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    if module in _compat_pickle.IMPORT_MAPPING:
        return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


def classify(module: str, name: str) -> str:
    """'safe', 'dangerous' or 'unknown' for the global ``module.name``.

    A Python 2 spelling (``__builtin__.eval``) is judged where Python 3 finds it; a name
    that is dangerous under either spelling is dangerous.
    """
    mapped = compat_name(module, name)
    verdict = classify_exact(*mapped)
    if mapped != (module, name):
        original = classify_exact(module, name)
        if original == "dangerous":
            verdict = "dangerous"
    return verdict


def worst(*verdicts: str) -> str:
    """The most severe of ``verdicts`` (safe < unknown < dangerous)."""
    return max(verdicts, key=lambda v: _RANK.get(v, 1))
