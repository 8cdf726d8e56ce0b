"""Where a loader reads a file otherwise than the inspection did: torch's archive names,
zip directories, tar headers, joblib's dtypes and wrappers, compressed streams, Keras
archives.  Each malicious file only names ``os.system`` (nothing is ever loaded); each
benign twin must stay safe."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

import store.inspect as inspect_module
from store.inspect import inspect_file, looks_like_model
from store.integrity import check_paths

_EVIL = b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00touch x\x85R."

_GOOD = b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


# torch names a checkpoint's archive folder after the file: ``torch.save(obj, "data.pt")``
# writes ``data/data.pkl`` and ``data/data/0``, and torch's reader finds ``data.pkl`` in the
# first entry's folder, whatever the case of its name.  That pickle is what loads, so it is
# read, never skipped as tensor bytes.


def _zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "entries",
    [
        [("data/data.pkl", _EVIL), ("data/byteorder", b"little"), ("data/version", b"3\n")],
        [("data/DATA.PKL", _EVIL), ("data/version", b"3\n"), ("data/x/data.pkl", _GOOD)],
    ],
    ids=["folder-named-data", "folder-named-data-upper-case-pickle"],
)
def test_a_checkpoint_whose_folder_is_named_data_is_read(
    tmp_path: Path, entries: list[tuple[str, bytes]]
) -> None:
    path = tmp_path / "data.pt"
    path.write_bytes(_zip_of(entries))
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons
    assert "os.system" in found.imports


def test_a_benign_checkpoint_named_data_stays_safe(tmp_path: Path) -> None:
    path = tmp_path / "data.pt"
    floats = b"\x00" * 8
    pickle = (
        b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02("
        b"(X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05"
        b"X\x03\x00\x00\x00cpuq\x06K\x02tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\t\x89"
        b"ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs."
    )
    path.write_bytes(
        _zip_of([("data/data.pkl", pickle), ("data/data/0", floats), ("data/version", b"3\n")])
    )
    found = inspect_file(path)
    assert found.verdict == "safe", found.reasons
    assert found.summary.get("tensors") == {"w": ["F32", [2]]}


# A zip with two central directories: its end record points at one (what torch's miniz
# reads), and another sits just before the record (what Python's zipfile reads, shifting
# every offset as if data were put in front).  Each reader sees a different data.pkl, so
# the archive is never safe, whatever the one artlens reads holds.


def _local(name: str, data: bytes) -> bytes:
    raw = name.encode()
    header = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
        len(data), len(raw), 0,
    )  # fmt: skip
    return header + raw + data


def _central(name: str, data: bytes, offset: int) -> bytes:
    raw = name.encode()
    header = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, zlib.crc32(data),
        len(data), len(data), len(raw), 0, 0, 0, 0, 0, offset,
    )  # fmt: skip
    return header + raw


def _two_directories(seen_by_miniz: bytes, seen_by_python: bytes) -> bytes:
    first = [("archive/data.pkl", seen_by_miniz), ("archive/version", b"3\n")]
    second = [("archive/data.pkl", seen_by_python), ("archive/version", b"3\n")]
    out = b""
    offsets: list[int] = []
    for index, (name, data) in enumerate(first + second):
        if index == len(first):
            out += bytes(256)  # room, so the shifted offsets stay positive
        offsets.append(len(out))
        out += _local(name, data)
    first_at = len(out)
    out += b"".join(_central(n, d, o) for (n, d), o in zip(first, offsets[:2], strict=True))
    shift = len(out) - first_at  # what Python adds to every offset it reads
    cd = b"".join(_central(n, d, o - shift) for (n, d), o in zip(second, offsets[2:], strict=True))
    out += cd
    return out + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), first_at, 0)


def test_a_zip_with_two_central_directories_is_never_safe(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "model.pt"
    path.write_bytes(_two_directories(_EVIL, _GOOD))
    with zipfile.ZipFile(path) as archive:  # what artlens reads is the benign one
        assert archive.read("archive/data.pkl") == _GOOD
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("central directory" in r for r in found.reasons)


def test_an_ordinary_zip64_archive_is_not_taken_for_a_moved_directory(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _GOOD)
        for index in range(65_536):  # more entries than a plain end record counts
            archive.writestr(f"archive/data/{index}", b"")
    assert b"PK\x06\x06" in path.read_bytes()[-200:]
    assert inspect_file(path).verdict == "safe"


# numpy's ``dtype.__setstate__`` takes ``hasobject`` from the pickled flags, whatever the
# type code: a joblib array whose dtype reads ``f8`` but whose state sets the object flag
# (or a real structured dtype with an object field, pickled as ``V8`` plus fields) is
# followed by a nested pickle that joblib loads, not by raw bytes to skip.


def _joblib(nested: bytes, code: str = "f8", flags: int = 63) -> bytes:
    """A list holding one NumpyArrayWrapper of 16 elements; after it, ``nested`` (what
    joblib unpickles when the dtype has objects) padded so that a reader that instead
    skips 16 * 8 raw bytes lands on the same APPEND."""
    dtype = _g("numpy", "dtype") + _u(code) + b"\x89\x88\x87R"
    dtype += b"(K\x03" + _u("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
    dtype += b"K" + bytes([flags]) + b"tb"
    state = b"}(" + _u("subclass") + _g("numpy", "ndarray") + _u("shape") + b"K\x10\x85"
    state += _u("order") + _u("C") + _u("dtype") + dtype + _u("allow_mmap") + b"\x89u"
    wrapper = _g("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    pad = 16 * 8 - len(nested) - 3
    hidden = nested + b"C" + bytes([pad]) + b"F" * pad + b"0"
    return b"\x80\x02]" + wrapper + hidden + b"a."


def test_an_object_flag_on_a_float_dtype_means_a_nested_pickle(tmp_path: Path) -> None:
    evil = b"\x80\x02" + _g("os", "system") + _u("touch x") + b"\x85R0]."
    path = tmp_path / "model.joblib"
    path.write_bytes(_joblib(evil))
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons
    assert "os.system" in found.imports


def test_a_float_dtype_without_the_flag_is_raw_data(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    raw = b"\x80\x02" + _g("os", "system") + _u("touch x") + b"\x85R0]."  # just bytes here
    path.write_bytes(_joblib(raw, flags=0))
    assert inspect_file(path).verdict == "safe"


def test_a_real_structured_object_array_is_read_as_joblib_writes_it(tmp_path: Path) -> None:
    """``np.dtype([('a', 'f8'), ('b', 'O')])`` pickles as ``V16`` + fields + flags 27;
    joblib.dump follows it with a pickle of the objects (written here as it does)."""
    fields = (
        b"(K\x03" + _u("|") + b"N(" + _u("a") + _u("b") + b"t}(" + _u("a")
        + _g("numpy", "dtype") + _u("f8") + b"\x89\x88\x87R(K\x03" + _u("<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbK\x00\x86" + _u("b")
        + _g("numpy", "dtype") + _u("O8") + b"\x89\x88\x87R(K\x03" + _u("|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tbK\x08\x86uK\x10K\x08K\x1btb"
    )  # fmt: skip
    dtype = _g("numpy", "dtype") + _u("V16") + b"\x89\x88\x87R" + fields
    state = b"}(" + _u("subclass") + _g("numpy", "ndarray") + _u("shape") + b"K\x01\x85"
    state += _u("order") + _u("C") + _u("dtype") + dtype + _u("allow_mmap") + b"\x89u"
    wrapper = _g("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    objects = b"\x80\x02" + _g("builtins", "list") + b"]\x85R."  # a harmless nested pickle
    path = tmp_path / "model.joblib"
    path.write_bytes(b"\x80\x02]" + wrapper + objects + b"a.")
    found = inspect_file(path)
    assert found.verdict == "safe", found.reasons


# joblib <= 0.9 kept each array in a file beside the pickle; joblib.load still honours
# such a wrapper: it joins the file name from the pickle to the pickle's folder (an absolute
# name wins) and ``numpy.load``s it with ``allow_pickle=True``, so whatever pickle sits there
# runs.  Neither spelling of the wrapper is safe: unknown, as that file was not read.


@pytest.mark.parametrize("module", ["joblib.numpy_pickle_compat", "joblib.numpy_pickle"])
@pytest.mark.parametrize("name", ["NDArrayWrapper", "ZNDArrayWrapper"])
def test_a_wrapper_that_loads_another_file_is_not_safe(
    tmp_path: Path, module: str, name: str
) -> None:
    state = b"}(" + _u("filename") + _u("/tmp/anything.npy") + _u("subclass")
    state += b"cnumpy\nndarray\n" + _u("allow_mmap") + b"\x89u"
    wrapper = b"c" + module.encode() + b"\n" + name.encode() + b"\n)\x81" + state + b"b"
    path = tmp_path / "model.joblib"
    path.write_bytes(b"\x80\x02" + wrapper + b".")
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons  # what that file holds is not known
    assert f"{module}.{name}" in found.imports


# torch.load opens any file that is not a zip with ``tarfile`` first (its oldest format:
# members storages, tensors, pickle) and Python's tarfile reads any header whose checksum
# holds, with or without the "ustar" magic.  And pickle.load reads the same file from byte
# 0, where a tar header starts with its first member's name.


_LEGACY = [("storages", b"\x80\x02K\x00.\x80\x02]."), ("tensors", b"\x80\x02K\x00.")]


def _tar(members: list[tuple[str, bytes]]) -> bytearray:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return bytearray(buffer.getvalue())


def _reseal(raw: bytearray, *, v7: bool) -> bytes:
    """Recompute every header's checksum; ``v7``: drop the ustar magic first."""
    pos = 0
    while pos + 512 <= len(raw) and any(raw[pos : pos + 512]):
        if v7:
            raw[pos + 257 : pos + 345] = bytes(88)
        raw[pos + 148 : pos + 156] = b" " * 8
        raw[pos + 148 : pos + 156] = b"%06o\x00 " % sum(raw[pos : pos + 512])
        size = int(raw[pos + 124 : pos + 136].strip(b"\x00 ") or b"0", 8)
        pos += 512 + (size + 511) // 512 * 512
    return bytes(raw)


def test_a_tar_without_the_ustar_magic_is_read(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_reseal(_tar([*_LEGACY, ("pickle", _EVIL)]), v7=True))
    with tarfile.open(path, "r:") as archive:  # what torch reads
        assert archive.extractfile("pickle").read() == _EVIL  # type: ignore[union-attr]
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons


# An .npy or GGUF header can be a tar header as well (the name field is free, the numeric
# fields land in array data or a metadata string): numpy and llama.cpp read the format,
# torch.load the tar (checked with torch 2.13: it ran the ``pickle`` member).


def _as_npy(raw: bytearray) -> bytes:
    header = b"{'descr':'u1','fortran_order':False,'shape':(%d,)}" % (len(raw) - 64)
    raw[:64] = b"\x93NUMPY\x01\x00" + struct.pack("<H", 54) + header.ljust(53) + b"\n"
    return _reseal(raw, v7=False)


def _as_gguf(raw: bytearray) -> bytes:
    key = b"general.name"
    start = 4 + 4 + 8 + 8 + 8 + len(key) + 4 + 8  # the string value runs to the end
    raw[: start - 12] = b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, len(key)) + key
    raw[start - 12 : start] = struct.pack("<IQ", 8, len(raw) - start)
    return _reseal(raw, v7=False)


@pytest.mark.parametrize("dress", [_as_npy, _as_gguf], ids=["npy", "gguf"])
def test_a_format_header_that_is_also_a_tar_header_is_read_as_a_tar(
    tmp_path: Path, dress: object
) -> None:
    assert callable(dress)
    path = tmp_path / "model.pt"
    path.write_bytes(dress(_tar([("FIRST", b"x"), *_LEGACY, ("pickle", _EVIL)])))
    with tarfile.open(path, "r:") as archive:  # what torch reads
        assert archive.extractfile("pickle").read() == _EVIL  # type: ignore[union-attr]
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons
    assert found.format in ("npy", "gguf")
    path.write_bytes(dress(_tar([("FIRST", b"x"), *_LEGACY, ("pickle", _GOOD)])))
    assert inspect_file(path).verdict == "safe", inspect_file(path).reasons


def test_a_v7_tar_that_is_also_a_benign_pickle_is_read_as_a_tar(tmp_path: Path) -> None:
    """The first member's name opens a BINBYTES that swallows the whole tar; "0}." after
    the tar's end makes the file a complete, harmless pickle."""
    raw = _tar([("FIRST", b"x"), *_LEGACY, ("pickle", _EVIL)])
    raw[0:7] = b"\x80\x02B" + struct.pack("<I", len(raw) - 7)
    path = tmp_path / "model.pt"
    path.write_bytes(_reseal(raw, v7=True) + b"0}.")
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons


def test_a_tar_whose_first_name_is_a_pickle_is_read_as_a_pickle_too(tmp_path: Path) -> None:
    raw = _tar([*_LEGACY, ("pickle", _GOOD)])
    name = b"cos\nsystem\n(S'touch x'\ntR."
    raw[:100] = name + bytes(100 - len(name))
    path = tmp_path / "model.pkl"
    path.write_bytes(_reseal(raw, v7=False))
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons


def test_a_plain_legacy_tar_stays_safe(tmp_path: Path) -> None:
    for v7 in (False, True):
        path = tmp_path / f"model{v7}.pt"
        path.write_bytes(_reseal(_tar([*_LEGACY, ("pickle", _GOOD)]), v7=v7))
        found = inspect_file(path)
        assert (found.format, found.verdict) == ("torch-legacy", "safe"), found.reasons


# torch's tar loader (``legacy_load``) reads ``storages`` as a count, then per storage a
# pickle (key, location, storage class), an int64 element count and the raw elements,
# then a pickle of views; ``tensors`` as a count, then per tensor a pickle and raw bytes
# (int32 ndim, 4 bytes, sizes, strides, offset).  Read as one stream of pickles, the raw
# bytes can open a byte string that swallows the pickle torch reads next: checked with
# torch 2.13, ``torch.load(weights_only=False)`` ran it and artlens said safe.

_STORAGE_ARGS = b"\x80\x02(K\x00X\x03\x00\x00\x00cpuctorch\nByteStorage\nt."
_TENSOR_ARGS = b"\x80\x02(K\x01K\x00N\x87."


def _storages(raw_count: bytes, raw: bytes, after: bytes) -> bytes:
    return b"\x80\x02K\x01." + _STORAGE_ARGS + raw_count + raw + after


def test_raw_storage_bytes_cannot_hide_the_next_pickle(tmp_path: Path) -> None:
    # the int64 element count reads as C 06 <6 bytes>: a byte string ending where the raw
    # elements start; they open a BINBYTES over the rest of them and the views pickle
    numel = 0x43 + 6 * 256
    cover = numel - 6 + len(_EVIL)
    raw = b"0B" + struct.pack("<I", cover) + bytes(numel - 6)
    storages = _storages(struct.pack("<q", numel), raw, _EVIL + b"0N.")
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(_tar([("storages", storages), ("tensors", b"\x80\x02K\x00."),
                                  ("pickle", _GOOD)])))  # fmt: skip
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons
    assert "os.system" in found.imports


def test_the_pickles_between_raw_tensor_bytes_are_all_read(tmp_path: Path) -> None:
    # a one-dimensional tensor's raw bytes (ndim 1, 4 bytes, size, stride, offset), then
    # the second tensor's pickle: torch reads it
    raw = struct.pack("<i", 1) + bytes(4) + struct.pack("<qqq", 1, 1, 0)
    tensors = b"\x80\x02K\x02." + _TENSOR_ARGS + raw + _EVIL
    storages = _storages(struct.pack("<q", 1), b"\x00", b"\x80\x02].")
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(_tar([("storages", storages), ("tensors", tensors),
                                  ("pickle", _GOOD)])))  # fmt: skip
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons


def test_a_legacy_tar_with_storages_is_read_as_torch_reads_it(tmp_path: Path) -> None:
    floats = struct.pack("<q", 3) + struct.pack("<3f", 1, 2, 3)
    storages = b"\x80\x02K\x01." + _STORAGE_ARGS.replace(b"Byte", b"Float") + floats
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(_tar([("storages", storages + b"\x80\x02]."),
                                  ("tensors", b"\x80\x02K\x00."), ("pickle", _GOOD)])))  # fmt: skip
    found = inspect_file(path)
    assert (found.format, found.verdict) == ("torch-legacy", "safe"), found.reasons
    # cut short inside the raw elements: torch stops there, and so does the reading
    path.write_bytes(bytes(_tar([("storages", storages[:-4]), *_LEGACY[1:], ("pickle", _GOOD)])))
    assert inspect_file(path).verdict == "corrupt"


def test_a_legacy_tar_member_that_is_a_link_is_never_safe(tmp_path: Path) -> None:
    """torch extracts ``storages`` and opens what it extracted: a symlink is followed to a
    file outside the archive, which artlens did not read as part of this one."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        link = tarfile.TarInfo("storages")
        link.type, link.linkname = tarfile.SYMTYPE, "/somewhere/else.pkl"
        archive.addfile(link)
        for name, data in [*_LEGACY[1:], ("pickle", _GOOD)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "model.pt"
    path.write_bytes(buffer.getvalue())
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("link" in r for r in found.reasons)


# joblib takes any file starting 5d 00 for an .lzma stream (``joblib.compressor``), and
# the dictionary size that follows need not end in 00: ``lzma.compress`` with a 4 KiB
# dictionary writes 5d 00 10 00 00.  Such a file is a compressed pickle, not "no model".


def _alone(data: bytes) -> bytes:
    filters = [{"id": lzma.FILTER_LZMA1, "dict_size": 4096}]
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=filters)


def test_an_lzma_stream_with_a_small_dictionary_is_decompressed(tmp_path: Path) -> None:
    assert _alone(_EVIL)[:3] == b"\x5d\x00\x10"
    path = tmp_path / "model.joblib"
    path.write_bytes(_alone(_EVIL))
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons
    path.write_bytes(_alone(_GOOD))
    found = inspect_file(path)
    assert (found.format, found.verdict) == ("pickle", "safe"), found.reasons


# Keras 3 reads a .keras archive's weights from model.weights.h5 or, as
# ``save_model(..., weights_format="npz")`` writes them, model.weights.npz (with
# ``allow_pickle=True``); either way it first builds the model from config.json, which may
# name Lambda-layer code.  So the archive is never safe, whatever its weights hold.


def _npz_of_floats() -> bytes:
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 4
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("layers/dense/vars/0.npy", npy)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("weights", "name"),
    [("model.weights.npz", "model.keras"), (None, "model.keras")],
    ids=["npz-weights", "config-only"],
)
def test_a_keras_archive_is_unknown_whatever_its_weights(
    tmp_path: Path, weights: str | None, name: str
) -> None:
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}]}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.8.0"}))
        archive.writestr("config.json", json.dumps(config))
        if weights:
            archive.writestr(weights, _npz_of_floats())
    (tmp_path / name).write_bytes(buffer.getvalue())
    found = inspect_file(tmp_path / name)
    assert found.verdict == "unknown", found.reasons
    assert any("Keras" in r for r in found.reasons)


# A folder walk inspects a file with no model name when its first kilobyte reads as a
# pickle.  A protocol 2+ pickle that pushes a 2 kB string before it imports os.system is
# still a pickle where that kilobyte ends (PROTO, then a string cut short); the walk must
# not skip it, and text still is.


def _long_first(protocol: int) -> bytes:
    filler = b"X" + struct.pack("<I", 2000) + b"x" * 2000
    call = b"cos\nsystem\nX\x07\x00\x00\x00touch x\x85R."
    return b"\x80" + bytes([protocol]) + filler + b"0" + call


def test_a_pickle_that_opens_with_a_long_string_is_not_skipped(tmp_path: Path) -> None:
    for protocol in (2, 3, 4, 5):
        assert looks_like_model(_long_first(protocol)[:1024])
    (tmp_path / "notes.txt").write_bytes(_long_first(2))
    (tmp_path / "prose.md").write_text("X marks the spot. " * 200)
    (tmp_path / "blob.bin.txt").write_bytes(b"\x80" + bytes(range(256)) * 8)
    found = {Path(c.path).name: c.verdict for c in check_paths([tmp_path])}
    assert found == {"notes.txt": "dangerous"}


# Protocols 0 and 1 have no PROTO opcode: such a pickle may open with a string (a quoted
# line, a raw-unicode line, a counted string), a long number or a dotted name that runs
# past the first kilobyte, and import os.system after it.  The walk skipped those files.


def _opener(marker: Path) -> bytes:
    """``open(marker, "w")`` at protocol 0: harmless, and proof that the stream loads."""
    return b"cbuiltins\nopen\n(S'" + str(marker).encode() + b"'\nS'w'\ntR"


@pytest.mark.parametrize(
    "first",
    [
        b"S'" + b"x" * 2000 + b"'\n",
        b"V" + b"x" * 2000 + b"\n",
        b"X" + struct.pack("<I", 2000) + b"x" * 2000,
        b"T" + struct.pack("<i", 2000) + b"x" * 2000,
        b"B" + struct.pack("<I", 2000) + b"x" * 2000,
        b"((S'" + b"x" * 2000 + b"'\n",
        b"S'" + b"x" * 1016 + b"'\nU\xff" + b"x" * 255,  # cut in the second opcode
        b"L" + b"7" * 2000 + b"L\n",
    ],
    ids=["string", "unicode", "binunicode", "binstring", "binbytes", "marks", "second", "long"],
)
def test_a_protocol_0_or_1_pickle_opening_with_a_long_argument_is_not_skipped(
    tmp_path: Path, first: bytes
) -> None:
    marker = tmp_path / "loaded"
    data = first + b"0" + _opener(marker) + b"."
    folder = tmp_path / "walked"
    folder.mkdir()
    (folder / "cache.dat").write_bytes(data)
    found = {Path(c.path).name: (c.verdict, c.imports) for c in check_paths([folder])}
    assert found == {"cache.dat": ("dangerous", ("builtins.open",))}
    assert looks_like_model(data[:1024], len(data)) and looks_like_model(data[:1024])
    pickle.loads(data).close()  # what the walk must not skip: it loads, and runs open()
    assert marker.exists()


def test_text_whose_first_line_reads_as_a_long_argument_is_still_skipped(tmp_path: Path) -> None:
    for name, text in [
        ("prose.md", b"X marks the spot. " * 200),  # a 4-byte count longer than the file
        ("lorem.txt", b"Lorem ipsum dolor sit amet " * 100),  # not a number
        ("cat.txt", b"cat dog bird " * 100),  # not a module path
        ("persid.txt", b"Please note " * 100),  # PERSID: no plain loader reads it
        ("quote.txt", b"Some text without quotes " * 100),
    ]:
        (tmp_path / name).write_bytes(text)
        assert not looks_like_model(text[:1024], len(text)), name
    assert list(check_paths([tmp_path])) == []


# gzip, bz2 and xz readers go on through every member of a multi-member stream, and an
# empty member costs time but yields no bytes, so the decompression cap never trips:
# millions of them took 15 s for a 200 MB file.  The file's time budget stops it (unknown).


@pytest.mark.parametrize(
    "compress", [lambda d: gzip.compress(d, mtime=0), bz2.compress], ids=["gzip", "bz2"]
)
def test_empty_members_stop_at_the_time_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: object
) -> None:
    assert callable(compress)
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(compress(b"") * 5000 + compress(_EVIL))
    monkeypatch.setattr(inspect_module, "FILE_TIME_LIMIT", 0.0)
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("members" in r for r in found.reasons)


def test_a_few_members_are_all_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(b"") * 3 + gzip.compress(_EVIL))
    monkeypatch.setattr(inspect_module, "FILE_TIME_LIMIT", 0.0)
    assert inspect_file(path).verdict == "dangerous"


# numpy.random._pickle's constructors call what they are given: __bit_generator_ctor(x)
# calls x() when x is a class, __randomstate_ctor(name, ctor) and __generator_ctor call
# ctor(name).  Through them a class artlens only allows created bare was constructed in
# full, and came out safe; numpy's own pickles of every generator stay safe.


def test_a_numpy_random_ctor_does_not_launder_a_constructor(tmp_path: Path) -> None:
    args = _g("transformers.training_args", "TrainingArguments")
    for ctor, call in (
        ("__randomstate_ctor", _u("out") + args + b"\x86R"),
        ("__generator_ctor", _u("out") + args + b"\x86R"),
        ("__bit_generator_ctor", args + b"\x85R"),
    ):
        path = tmp_path / f"{ctor}.pkl"
        path.write_bytes(b"\x80\x02" + _g("numpy.random._pickle", ctor) + call + b".")
        found = inspect_file(path)
        assert found.verdict == "unknown", (ctor, found.reasons)
    path.write_bytes(
        b"\x80\x02" + _g("numpy.random._pickle", "__bit_generator_ctor") + _g("os", "system")
        + b"\x85R."
    )  # fmt: skip
    assert inspect_file(path).verdict == "dangerous"


def test_numpy_generators_pickled_by_numpy_are_safe(tmp_path: Path) -> None:
    import pickle

    import numpy as np

    made = {
        "default_rng": np.random.default_rng(0),
        "RandomState": np.random.RandomState(0),
        "Generator(MT19937)": np.random.Generator(np.random.MT19937(1)),
        "PCG64DXSM": np.random.PCG64DXSM(2),
        "Philox": np.random.Philox(3),
        "SFC64": np.random.SFC64(4),
        "SeedSequence": np.random.SeedSequence(5),
    }
    for name, generator in made.items():
        for protocol in (2, 4):
            path = tmp_path / f"{name}-{protocol}.pkl"
            path.write_bytes(pickle.dumps({"rng": generator}, protocol=protocol))
            found = inspect_file(path)
            assert found.verdict == "safe", (name, protocol, found.reasons)


# numpy.load refuses an .npy header over its limit unless allow_pickle=True, which lifts
# the limit: an object array behind a 2 MB header loads (and unpickles) then.  Over what
# is read here, the file is unknown, not corrupt.


def test_an_npy_header_over_the_read_limit_is_unknown(tmp_path: Path) -> None:
    fields = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header = (fields + " " * (2 << 20) + "\n").encode("latin-1")
    npy = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + _EVIL
    (tmp_path / "array.npy").write_bytes(npy)
    found = inspect_file(tmp_path / "array.npy")
    assert found.verdict == "unknown", found.reasons
    assert any("npy header" in r for r in found.reasons)
