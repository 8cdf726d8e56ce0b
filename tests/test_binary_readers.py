"""The binary metric readers against real library outputs (tests/fixtures/frameworks).

Ground truth is EXPECTED.json, written by tests/fixtures/make_frameworks.py from the
libraries' own APIs or the values logged, never by these readers.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.frameworks.tfevents import (
    crc32c,
    iter_fields,
    read_scalars,
    read_scalars_dir,
    tensor_scalar,
)
from store.frameworks.wandb_records import read_wandb_file

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "EXPECTED.json").read_text())
WANDB_RUNS = EXPECTED["wandb"]
LONG_RUN = next(run for run in WANDB_RUNS if run["name"] == "long-run")
LONG_SIZE = (FIXTURES / LONG_RUN["wandb_file"]).stat().st_size
TB_RUNS = EXPECTED["tensorboard"]
HF = EXPECTED["hf_trainer"][0]
SLOW_OK = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def event_file(folder: Path) -> Path:
    (found,) = [p for p in folder.iterdir() if "tfevents" in p.name]
    return found


def fragments(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, type) of each W&B log fragment, walked independently of the reader."""
    out = []
    pos = 7
    while pos < len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        out.append((pos, length, kind))
        pos += 7 + length
    return out


def tfrecords(data: bytes) -> list[tuple[int, int]]:
    """(offset, payload length) of each TFRecord."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        out.append((pos, length))
        pos += 16 + length
    return out


def points(scalars: dict[str, list[tuple[int, float, float]]]) -> int:
    return sum(len(series) for series in scalars.values())


# --- TensorBoard ---------------------------------------------------------------------------


def test_crc32c_matches_the_standard_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("run", TB_RUNS, ids=[run["path"] for run in TB_RUNS])
def test_tensorboard_last_scalars_equal_expected(run: dict[str, Any]) -> None:
    scalars = read_scalars_dir(FIXTURES / run["path"])
    assert scalars.warnings == []
    assert set(scalars) == set(run["scalars"])  # histograms and text are not scalars
    for tag, want in run["scalars"].items():
        step, wall_time, value = scalars[tag][-1]
        assert (step, value) == (want["step"], want["value"])
        assert wall_time > 1e9
        assert [p[0] for p in scalars[tag]] == sorted(p[0] for p in scalars[tag])


def test_torch_new_style_scalars_come_through_the_tensor_path() -> None:
    """train/acc was written with new_style=True and lr with double precision: no simple_value."""
    data = event_file(FIXTURES / "tensorboard" / "torch_run").read_bytes()
    value_fields: dict[str, set[int]] = {}
    for offset, length in tfrecords(data):
        for number, _, summary in iter_fields(data[offset + 12 :][:length]):
            if number != 5 or not isinstance(summary, bytes):
                continue
            for _, _, value in iter_fields(summary):
                assert isinstance(value, bytes)
                fields = {n: v for n, _, v in iter_fields(value)}
                tag = fields[1]
                assert isinstance(tag, bytes)
                value_fields.setdefault(tag.decode(), set()).update(fields)
    assert 2 not in value_fields["train/acc"] and 8 in value_fields["train/acc"]
    assert 2 in value_fields["train/loss"]
    scalars = read_scalars(event_file(FIXTURES / "tensorboard" / "torch_run"))
    run = next(r for r in TB_RUNS if r["path"].endswith("torch_run"))
    assert scalars["lr"][-1][2] == run["scalars"]["lr"]["value"]  # double, not float32
    assert scalars["lr"][-1][2] != f32(run["scalars"]["lr"]["value"])


def test_tensor_scalar_reads_tensor_content_and_rejects_vectors() -> None:
    double_content = bytes([0x08, 0x02, 0x22, 0x08]) + struct.pack("<d", 2.5)
    assert tensor_scalar(double_content) == 2.5
    two_floats = bytes([0x08, 0x01, 0x2A, 0x08]) + struct.pack("<ff", 1.0, 2.0)
    assert tensor_scalar(two_floats) is None
    strings = bytes([0x08, 0x07, 0x42, 0x01, 0x61])
    assert tensor_scalar(strings) is None


def test_hf_trainer_event_file_matches_log_history() -> None:
    (run_dir,) = (FIXTURES / HF["path"] / "runs").iterdir()
    scalars = read_scalars_dir(run_dir)
    assert scalars.warnings == []
    checked = 0
    for name, want in HF["metrics"].items():
        tag = f"eval/{name[5:]}" if name.startswith("eval_") else f"train/{name}"
        step, _, value = scalars[tag][-1]
        assert step == want["step"]
        assert value == pytest.approx(f32(want["value"]), rel=1e-6)
        checked += 1
    assert checked >= 5


def test_lightning_tensorboard_logger_matches_callback_metrics() -> None:
    run = next(r for r in EXPECTED["lightning"] if r["logger"] == "TensorBoardLogger")
    scalars = read_scalars_dir(FIXTURES / run["path"])
    for name, value in run["metrics"].items():
        assert scalars[name][-1][2] == pytest.approx(f32(value), rel=1e-6)


@SLOW_OK
@given(cut=st.integers(min_value=0, max_value=60_000))
def test_truncated_event_file_gives_a_prefix(tmp_path: Path, cut: int) -> None:
    source = event_file(FIXTURES / "tensorboard" / "tbx_run")
    full = read_scalars(source)
    whole = source.read_bytes()
    target = tmp_path / "events.out.tfevents.cut"
    target.write_bytes(whole[:cut])
    got = read_scalars(target)
    for tag, series in got.items():
        assert series == full[tag][: len(series)]
    boundaries = {offset for offset, _ in tfrecords(whole)} | {len(whole)}
    if cut < len(whole):
        assert bool(got.warnings) == (cut not in boundaries)  # a cut inside a record is reported


def test_bad_data_crc_skips_one_record(tmp_path: Path) -> None:
    source = event_file(FIXTURES / "tensorboard" / "torch_run")
    data = bytearray(source.read_bytes())
    full = read_scalars(source)
    records = tfrecords(bytes(data))
    # the record holding the last train/loss point: flip a byte of its payload
    offset, length = next(
        (off, n) for off, n in reversed(records) if b"train/loss" in data[off + 12 : off + 12 + n]
    )
    data[offset + 12 + length - 1] ^= 0xFF
    target = tmp_path / "events.out.tfevents.bad"
    target.write_bytes(bytes(data))
    got = read_scalars(target)
    assert any("checksum" in w for w in got.warnings)
    assert got["train/loss"] == full["train/loss"][:-1]
    assert got["train/acc"] == full["train/acc"]


def test_bad_length_crc_stops_cleanly(tmp_path: Path) -> None:
    source = event_file(FIXTURES / "tensorboard" / "torch_run")
    data = bytearray(source.read_bytes())
    offset, _ = tfrecords(bytes(data))[5]
    data[offset + 8] ^= 0x01
    target = tmp_path / "events.out.tfevents.badlen"
    target.write_bytes(bytes(data))
    got = read_scalars(target)
    assert any("length checksum" in w for w in got.warnings)
    assert points(got) < points(read_scalars(source))


def test_max_bytes_caps_the_read(tmp_path: Path) -> None:
    source = event_file(FIXTURES / "tensorboard" / "torch_run")
    capped = read_scalars(source, max_bytes=2000)
    assert any("first 2000" in w for w in capped.warnings)
    assert points(capped) < points(read_scalars(source))


@pytest.mark.parametrize("reader", [read_scalars, read_wandb_file])
def test_unreadable_paths_warn_without_raising(tmp_path: Path, reader: Any) -> None:
    fifo = tmp_path / "events.out.tfevents.fifo"
    os.mkfifo(fifo)  # opening it would block forever
    link = tmp_path / "link"
    link.symlink_to(event_file(FIXTURES / "tensorboard" / "torch_run"))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(bytes(range(256)) * 64)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for path in (fifo, link, tmp_path, tmp_path / "missing", garbage, empty):
        result = reader(path)
        assert result.warnings or path == empty, path
        assert len(result.history if hasattr(result, "history") else result) == 0


def test_read_scalars_dir_merges_files_in_step_order(tmp_path: Path) -> None:
    source = event_file(FIXTURES / "tensorboard" / "tbx_run")
    data = source.read_bytes()
    records = tfrecords(data)
    half = records[len(records) // 2][0]
    # a run split over two files (as after a resume), later file first by step
    (tmp_path / "events.out.tfevents.2.host").write_bytes(data[:half])
    (tmp_path / "events.out.tfevents.1.host").write_bytes(data[half:])
    merged = read_scalars_dir(tmp_path)
    assert merged.warnings == []
    assert merged == read_scalars(source)


# --- W&B -----------------------------------------------------------------------------------


def without_private(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if not k.startswith("_")}


@pytest.mark.parametrize("run", WANDB_RUNS, ids=[run["name"] for run in WANDB_RUNS])
def test_wandb_records_equal_expected(run: dict[str, Any]) -> None:
    records = read_wandb_file(FIXTURES / run["wandb_file"])
    assert records.warnings == []
    assert without_private(records.config) == without_private(run["config"])
    assert without_private(records.summary) == run["summary"]
    assert len(records.history) == run["history_rows"]
    last = {k: v for k, v in records.history[-1].items() if k not in ("_timestamp", "_runtime")}
    assert last == run["history_last"]
    meta = records.meta
    assert (meta["run_id"], meta["name"], meta["project"]) == (
        run["run_id"],
        run["name"],
        run["project"],
    )
    assert meta["exit_code"] == run["exit_code"]
    assert meta["complete"] is True
    assert isinstance(meta["start_time"], float) and meta["start_time"] > 1e9


def test_wandb_long_record_spans_blocks() -> None:
    data = (FIXTURES / LONG_RUN["wandb_file"]).read_bytes()
    kinds = {kind for _, _, kind in fragments(data)}
    assert kinds == {1, 2, 3, 4}  # FULL, FIRST, MIDDLE, LAST all occur
    records = read_wandb_file(FIXTURES / LONG_RUN["wandb_file"])
    assert records.config["notes"] == LONG_RUN["config"]["notes"]


def test_wandb_history_is_thinned_but_keeps_the_last_row() -> None:
    records = read_wandb_file(FIXTURES / LONG_RUN["wandb_file"], max_history=50)
    steps = [int(str(row["_step"])) for row in records.history]
    assert len(steps) <= 51
    assert steps == sorted(steps)
    assert steps[-1] == LONG_RUN["history_last"]["_step"]
    assert records.meta["history_rows"] == LONG_RUN["history_rows"]
    assert any("thinned" in w for w in records.warnings)


@SLOW_OK
@given(cut=st.integers(min_value=0, max_value=LONG_SIZE + 10))
def test_truncated_wandb_file_gives_a_prefix(tmp_path: Path, cut: int) -> None:
    source = FIXTURES / LONG_RUN["wandb_file"]
    full = read_wandb_file(source)
    target = tmp_path / "run-cut.wandb"
    target.write_bytes(source.read_bytes()[:cut])
    got = read_wandb_file(target)
    assert got.history == full.history[: len(got.history)]
    if got.meta.get("exit_code") is None:
        assert got.meta["complete"] is False


def test_wandb_bad_crc_drops_one_history_row(tmp_path: Path) -> None:
    source = FIXTURES / WANDB_RUNS[0]["wandb_file"]
    data = bytearray(source.read_bytes())
    full = read_wandb_file(source)
    history_fragments = [
        (pos, length)
        for pos, length, kind in fragments(bytes(data))
        if kind == 1
        and any(n == 2 for n, _, _ in iter_fields(bytes(data[pos + 7 : pos + 7 + length])))
    ]
    pos, length = history_fragments[1]
    data[pos + 7 + length // 2] ^= 0x20
    target = tmp_path / "run-bad.wandb"
    target.write_bytes(bytes(data))
    got = read_wandb_file(target)
    assert any("bad checksum" in w for w in got.warnings)
    assert len(got.history) == len(full.history) - 1
    assert got.history == full.history[:1] + full.history[2:]


def test_wandb_bad_header_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "run-x.wandb"
    shutil.copyfile(FIXTURES / WANDB_RUNS[0]["wandb_file"], target)
    with target.open("r+b") as handle:
        handle.write(b":XYZ")
    got = read_wandb_file(target)
    assert any("bad header" in w for w in got.warnings)
    assert got.history == [] and got.config == {}


def test_event_files_are_read_through_the_root_and_never_out_of_it(tmp_path: Path) -> None:
    from store.frameworks import _common, _io
    from store.frameworks.model import Loaded

    source = event_file(FIXTURES / "tensorboard" / "torch_run")
    top, outside = tmp_path / "top", tmp_path / "outside"
    (top / "run").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(source, top / "run" / source.name)
    shutil.copy(source, outside / source.name)
    (top / "away").symlink_to(outside)
    inside = read_scalars_dir("run", root=_io.as_root(top))
    assert inside.series == read_scalars(source).series and inside.series
    out = Loaded()
    _common.read_tensorboard(top, "away", out)
    assert not out.series
    assert any("out of the root" in w for w in out.warnings)
