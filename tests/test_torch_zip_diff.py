"""Torch zip checkpoints diffed tensor by tensor, on real checkpoints and hand-built zips.

The real ones were written by torch 2.13 and Lightning 2.6 (tests/fixtures); the hand-built
ones (a STORED zip and a protocol-2 pickle spelled opcode by opcode) cover layouts those
did not write: non-contiguous tensors, bf16, UntypedStorage with a dtype, and refusals.
"""

from __future__ import annotations

import json
import shutil
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from store.diff import DiffError, diff_files
from store.diff.tensors import TensorDiff
from store.diff.torch_zip import diff_torch_zips, read_torch_zip
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str
from tui.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
LIGHTNING = FIXTURES / "frameworks" / "lightning" / "lightning_logs"
EVIL = FIXTURES / "pickles" / "torch_zip_evil.pt"
LEGACY = FIXTURES / "models" / "legacy.pt"


def patch_stored_entry(path: Path, entry: str, offset: int, payload: bytes) -> None:
    """Overwrite bytes of a STORED zip entry in place and fix its CRC in both headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    data[start + offset : start + offset + len(payload)] = payload
    crc = zlib.crc32(bytes(data[start : start + info.file_size]))
    struct.pack_into("<I", data, info.header_offset + 14, crc)
    central = data.find(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6])
    while central >= 0:
        cname_len = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + cname_len]) == entry.encode():
            struct.pack_into("<I", data, central + 16, crc)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # still a valid zip: torch would load it


def tensors_of(result: TensorDiff) -> dict[str, str]:
    return {t.name: t.status for t in result.tensors}


def test_real_pair_with_one_weight_changed_reports_exactly_that_tensor(tmp_path: Path) -> None:
    """A real Lightning last.ckpt and a copy where one weight moved: that tensor, nothing else."""
    old, new = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    shutil.copyfile(LIGHTNING / "version_0" / "checkpoints" / "last.ckpt", old)
    shutil.copyfile(old, new)
    weight = read_torch_zip(old).tensors["state_dict.layer.weight"]
    before = np.frombuffer(old.read_bytes()[weight.offset : weight.offset + 8], "<f4")
    patch_stored_entry(new, "archive/data/0", 4, struct.pack("<f", float(before[1]) + 0.25))
    pairs = zip(old.read_bytes(), new.read_bytes(), strict=True)
    differing = [i for i, (x, y) in enumerate(pairs) if x != y]
    assert len(differing) <= 12  # the weight's 4 bytes and the entry's CRC in two headers

    result = diff_files(old, new)
    assert result.kind == "tensors" and not result.equal and result.error is None
    diff = result.result
    assert isinstance(diff, TensorDiff) and diff.format == "torch-zip"
    (changed,) = diff.changed()
    assert changed.name == "state_dict.layer.weight" and changed.status == "values_changed"
    assert changed.changed_elements == 1
    assert changed.max_abs_diff == pytest.approx(0.25, rel=1e-5)
    assert diff.metadata == []
    assert len(diff.tensors) == 7 and diff.counts() == {"unchanged": 6, "values_changed": 1}


def test_real_checkpoints_of_the_same_epoch_are_equal() -> None:
    checkpoints = LIGHTNING / "version_0" / "checkpoints"
    old, new = checkpoints / "epoch3-val0.0592.ckpt", checkpoints / "last.ckpt"
    result = diff_torch_zips(old, new)
    assert result.equal and result.metadata == [] and result.changed() == []


def test_real_runs_with_another_lr_show_weights_and_values() -> None:
    result = diff_torch_zips(
        LIGHTNING / "version_0" / "checkpoints" / "last.ckpt",
        LIGHTNING / "version_1" / "checkpoints" / "last.ckpt",
    )
    statuses = tensors_of(result)
    assert statuses["state_dict.layer.weight"] == "values_changed"
    assert statuses["state_dict.layer.bias"] == "values_changed"
    values = {c.path: (c.old, c.new) for c in result.metadata}
    assert values["hyper_parameters.lr"] == (0.1, 0.05)
    assert values["optimizer_states.0.param_groups.0.lr"] == (0.1, 0.05)
    largest = result.largest()
    assert largest is not None and largest.rel_l2 is not None and largest.rel_l2 > 0


def test_real_lightning_checkpoint_names_optimizer_state() -> None:
    checkpoint = read_torch_zip(FIXTURES / "models" / "lightning.ckpt")
    assert "optimizer_states.0.state.0.exp_avg" in checkpoint.tensors
    assert checkpoint.tensors["state_dict.model.0.weight"].shape == (8, 4)
    assert checkpoint.values["hyper_parameters.name"] == "tiny"


def test_dangerous_checkpoint_is_refused_and_falls_back_to_the_model_diff(tmp_path: Path) -> None:
    safe = FIXTURES / "models" / "state_dict.pt"
    with pytest.raises(DiffError, match="refused: the scan calls it dangerous"):
        diff_torch_zips(EVIL, safe)
    result = diff_files(EVIL, safe)
    assert result.kind == "model" and not result.equal
    assert any("refused" in note and "posix.system" in note for note in result.notes)


def test_legacy_torch_file_says_tensors_are_not_compared(tmp_path: Path) -> None:
    copy = tmp_path / "legacy.pt"
    shutil.copyfile(LEGACY, copy)
    result = diff_files(LEGACY, copy)
    assert result.kind == "model" and result.equal
    assert result.result is not None
    assert any("legacy" in note for note in result.result.notes)  # type: ignore[union-attr]


# --- hand-built torch zips ----------------------------------------------------------------


def _ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _tensor(
    key: str,
    numel: int,
    shape: tuple[int, ...],
    stride: tuple[int, ...],
    *,
    offset: int = 0,
    storage: str = "FloatStorage",
    v3_dtype: str | None = None,
) -> bytes:
    rebuild = "_rebuild_tensor_v3" if v3_dtype else "_rebuild_tensor_v2"
    pid = b"(" + _str("storage") + f"ctorch\n{storage}\n".encode() + _str(key) + _str("cpu")
    pid += _int(numel) + b"tQ"
    args = b"(" + pid + _int(offset) + _ints(shape) + _ints(stride) + b"\x89"
    args += b"ccollections\nOrderedDict\n)R"
    if v3_dtype:
        args += f"ctorch\n{v3_dtype}\n".encode() + b"ccollections\nOrderedDict\n)R"
    return f"ctorch._utils\n{rebuild}\n".encode() + args + b"tR"


def write_torch_zip(
    path: Path,
    tensors: dict[str, bytes],
    storages: dict[str, bytes],
    *,
    compress: bool = False,
    duplicate: str | None = None,
) -> None:
    body = b"".join(_str(name) + pickled for name, pickled in tensors.items())
    pickle = b"\x80\x02}(" + _str("epoch") + _int(1) + _str("state_dict") + b"}(" + body + b"uu."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("archive/data.pkl", pickle)
            archive.writestr("archive/byteorder", "little")
            for key, data in storages.items():
                kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                archive.writestr(f"archive/data/{key}", data, compress_type=kind)
            if duplicate is not None:
                archive.writestr(duplicate, b"\0" * 8)


def test_non_contiguous_bf16_and_untyped_storage(tmp_path: Path) -> None:
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    moved = matrix.copy()
    moved[1, 2] = 9.0
    bf16 = (np.array([1.0, 2.0, 3.0], dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    bf16_moved = bf16.copy()
    bf16_moved[0] = np.array([1.5], dtype=np.float32).view(np.uint32)[0] >> 16
    halves = np.array([1, 2, 3, 4], dtype="<f2")

    def tensors() -> dict[str, bytes]:
        return {
            # the transpose of a (2, 3) storage: shape (3, 2), strides (1, 3)
            "t": _tensor("0", 6, (3, 2), (1, 3)),
            "b": _tensor("1", 3, (3,), (1,), storage="BFloat16Storage"),
            "u": _tensor(
                "2", 8, (2,), (1,), offset=2, storage="UntypedStorage", v3_dtype="float16"
            ),
        }

    write_torch_zip(
        tmp_path / "a.pt",
        tensors(),
        {"0": matrix.tobytes(), "1": bf16.tobytes(), "2": halves.tobytes()},
    )
    write_torch_zip(
        tmp_path / "b.pt",
        tensors(),
        {"0": moved.tobytes(), "1": bf16_moved.tobytes(), "2": halves.tobytes()},
    )
    ref = {
        k.removeprefix("state_dict."): v
        for k, v in read_torch_zip(tmp_path / "a.pt").tensors.items()
    }
    assert ref["t"].strides == (1, 3) and ref["u"].dtype == "F16" and ref["b"].dtype == "BF16"
    result = diff_torch_zips(tmp_path / "a.pt", tmp_path / "b.pt")
    changes = {t.name.removeprefix("state_dict."): t for t in result.tensors}
    assert changes["t"].status == "values_changed" and changes["t"].changed_elements == 1
    assert changes["t"].max_abs_diff == 4.0  # 5.0 -> 9.0
    assert changes["b"].max_abs_diff == 0.5 and changes["b"].changed_elements == 1
    assert changes["u"].status == "unchanged"
    assert [c.path for c in result.metadata] == []


def test_values_a_checkpoint_diff_could_skip_are_compared(tmp_path: Path) -> None:
    """A long string differing past its first 500 characters, one of more than 20,000
    values, an empty list against no key: each is a change, never 'equal'."""
    tensor = {"w": _tensor("0", 4, (4,), (1,))}
    storage = {"0": np.ones(4, dtype=np.float32).tobytes()}

    def write(path: Path, text: str, count: int, last_id: int, empty: bool) -> None:
        ids = b"(" + b"".join(_int(i) for i in range(count)) + _int(last_id) + b"l"
        values = _str("text") + _str(text) + (_str("milestones") + b"]" if empty else b"")
        values += _str("ids") + ids
        body = b"".join(_str(name) + pickled for name, pickled in tensor.items())
        pickle = b"\x80\x02}(" + values + _str("state_dict") + b"}(" + body + b"uu."
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("archive/data.pkl", pickle)
            archive.writestr("archive/byteorder", "little")
            archive.writestr("archive/data/0", storage["0"])

    text = "model:\n" + "  # a dumped config\n" * 40 + "  lr: 0.1\n"
    write(tmp_path / "a.pt", text, 10, 1, True)
    write(tmp_path / "b.pt", text.replace("lr: 0.1", "lr: 0.9"), 10, 1, False)
    result = diff_torch_zips(tmp_path / "a.pt", tmp_path / "b.pt")
    assert {c.path for c in result.metadata} == {"text", "milestones"} and not result.equal
    write(tmp_path / "c.pt", text, 20_000, 1, True)
    write(tmp_path / "d.pt", text, 20_000, 2, True)
    cut = diff_torch_zips(tmp_path / "c.pt", tmp_path / "d.pt")
    assert not cut.equal and any("not compared" in note for note in cut.notes)
    assert diff_torch_zips(tmp_path / "c.pt", tmp_path / "c.pt").equal


def test_values_whose_names_collide_are_each_compared(tmp_path: Path) -> None:
    """A key ``"a.b"`` beside ``a -> b``, an int key 0 beside ``"0"``: one dotted name
    each, and the later value was dropped, so checkpoints whose ``a -> b`` (or ``"0"``)
    differ were "equal" (exit 0)."""
    storage = np.ones(4, dtype=np.float32).tobytes()

    def write(path: Path, nested: int, text_zero: int) -> None:
        values = _str("a.b") + _int(1) + _str("a") + b"}(" + _str("b") + _int(nested) + b"u"
        values += _str("k") + b"}(" + _int(0) + _int(1) + _str("0") + _int(text_zero) + b"u"
        body = _str("w") + _tensor("0", 4, (4,), (1,))
        pickle = b"\x80\x02}(" + values + _str("state_dict") + b"}(" + body + b"uu."
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("archive/data.pkl", pickle)
            archive.writestr("archive/byteorder", "little")
            archive.writestr("archive/data/0", storage)

    write(tmp_path / "a.pt", 2, 5)
    write(tmp_path / "b.pt", 3, 6)
    result = diff_torch_zips(tmp_path / "a.pt", tmp_path / "b.pt")
    assert not result.equal
    assert [(c.path, c.old, c.new) for c in result.metadata] == [
        ("a.b (#2)", 2, 3),
        ("k.0 (#2)", 5, 6),
    ]
    assert diff_torch_zips(tmp_path / "a.pt", tmp_path / "a.pt").equal
    code = CliRunner().invoke(main, ["diff", str(tmp_path / "a.pt"), str(tmp_path / "b.pt")])
    assert code.exit_code == 1, code.output


def test_unmappable_checkpoints_are_refused_with_one_line(tmp_path: Path) -> None:
    data = {"0": np.ones(4, dtype=np.float32).tobytes()}
    cases = {
        "compressed": ({"w": _tensor("0", 4, (4,), (1,))}, data, {"compress": True}),
        "duplicate": ({"w": _tensor("0", 4, (4,), (1,))}, data, {"duplicate": "archive/data/0"}),
        "missing": ({"w": _tensor("7", 4, (4,), (1,))}, data, {}),
        "past its storage": ({"w": _tensor("0", 4, (8,), (1,))}, data, {}),
        "not mapped": ({"w": _tensor("0", 4, (4,), (1,), storage="QInt8Storage")}, data, {}),
    }
    for expected, (tensors, storages, options) in cases.items():
        path = tmp_path / f"{expected.replace(' ', '_')}.pt"
        write_torch_zip(path, tensors, storages, **options)  # type: ignore[arg-type]
        with pytest.raises(DiffError) as caught:
            read_torch_zip(path)
        message = str(caught.value)
        assert "\n" not in message
        if expected == "duplicate":
            # Loaders disagree on which of two same-named entries they read: the scanner
            # calls that dangerous, so the diff refuses before mapping anything.
            assert "refused" in message and "dangerous" in message and "2 entries" in message
        else:
            assert "cannot be mapped" in message and expected in message


def test_cli_json_lists_the_changed_tensor(tmp_path: Path) -> None:
    write_torch_zip(tmp_path / "a.ckpt", {"w": _tensor("0", 2, (2,), (1,))}, {"0": b"\0" * 8})
    write_torch_zip(
        tmp_path / "b.ckpt", {"w": _tensor("0", 2, (2,), (1,))}, {"0": struct.pack("<2f", 0, 2)}
    )
    result = CliRunner().invoke(
        main, ["diff", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"), "--json"]
    )
    assert result.exit_code == 1, result.output
    shape = json.loads(result.stdout)
    assert shape["engine"] == "tensors" and shape["result"]["format"] == "torch-zip"
    (tensor,) = shape["result"]["tensors"]
    assert tensor["name"] == "state_dict.w" and tensor["status"] == "values_changed"
    assert tensor["max_abs_diff"] == 2.0 and tensor["rel_l2"] == "inf"  # all-zero old tensor
    text = CliRunner().invoke(main, ["diff", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt")])
    assert "values_changed state_dict.w" in text.stdout and "max |Δ| 2" in text.stdout


def test_layouts_compare_by_value_and_huge_views_are_bounded(tmp_path: Path) -> None:
    """A transpose equals its contiguous copy; a broadcast view is never materialised."""
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    one = np.array([7.0], dtype=np.float32).tobytes()
    wide = 10**8  # 400 MB if gathered: compared through its 4-byte storage instead
    write_torch_zip(
        tmp_path / "a.pt",
        {"t": _tensor("0", 6, (3, 2), (1, 3)), "e": _tensor("1", 1, (wide,), (0,))},
        {"0": matrix.tobytes(), "1": one},
    )
    write_torch_zip(
        tmp_path / "b.pt",
        {"t": _tensor("0", 6, (3, 2), (2, 1)), "e": _tensor("1", 1, (wide,), (0,))},
        {"0": np.ascontiguousarray(matrix.T).tobytes(), "1": one},
    )
    write_torch_zip(
        tmp_path / "c.pt",
        {"t": _tensor("0", 6, (3, 2), (2, 1)), "e": _tensor("1", 1, (wide,), (0,))},
        {"0": np.ascontiguousarray(matrix.T).tobytes(), "1": struct.pack("<f", 8.0)},
    )
    same = diff_torch_zips(tmp_path / "a.pt", tmp_path / "b.pt")
    assert same.equal and tensors_of(same) == {
        "state_dict.e": "unchanged",
        "state_dict.t": "unchanged",
    }
    moved = diff_torch_zips(tmp_path / "a.pt", tmp_path / "c.pt")
    (unknown,) = moved.changed()
    assert unknown.name == "state_dict.e" and unknown.status == "unknown"
    assert unknown.note is not None and "values not compared" in unknown.note


def test_mutated_checkpoints_map_or_refuse_with_one_line(tmp_path: Path) -> None:
    """Flipped bytes anywhere in a real checkpoint: a mapping or a DiffError, nothing else."""
    import random

    source = (FIXTURES / "models" / "lightning.ckpt").read_bytes()
    rng = random.Random(14)
    path = tmp_path / "m.ckpt"
    outcomes = {"mapped": 0, "refused": 0}
    for _ in range(60):
        data = bytearray(source)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            read_torch_zip(path)
            diff_torch_zips(FIXTURES / "models" / "lightning.ckpt", path)
            outcomes["mapped"] += 1
        except DiffError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["mapped"] and outcomes["refused"]
