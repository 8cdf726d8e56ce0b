"""A run's metric logs are read while training writes them; what a reader could not read
must never show as a value, and the run must say its metrics are partial.

``printf 'step,train_loss\\n0,0.5\\n1,0.'`` (a row cut mid-write) gave ``train_loss`` last
0.0 with ``metrics_complete`` true; MLflow metric files, DVCLive TSVs and JSON-lines logs
shared it.  Lines a reader skipped (``abc`` in an MLflow metric file, a malformed TSV row
or JSON line), event-file records with a bad checksum, a cut W&B record log, a
``metrics.csv`` over the size cap and a metrics folder with more files than a reader
walks all left the metrics marked whole.

Decided per format: every line-based metrics writer read here (the csv module, MLflow's
file store, DVCLive, W&B, Detectron2, Neptune, MMEngine) ends each record with a line end,
so a last line without one is being written.  A CSV/TSV/MLflow line cut after a digit
parses as another number (``0.`` of ``0.53``, step ``1`` of ``12``): it is dropped, said,
and the metrics are partial.  A JSON object closes itself, so a last JSON line that
parses as an object is whole (MMEngine writes the object, then the line end): kept, and
the metrics stay complete; one that does not parse is dropped the same way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.frameworks import _io, dvclive, mlflow
from tests.test_rundiff import age, index
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")
FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
CUT = "last line still being written"


def runs(root: Path) -> list[dict[str, Any]]:
    """``artlens runs --json`` after the real indexer read ``root``."""
    age(root)
    db_path = root.parent / "index.db"
    index(root, db_path, hash_files=False)
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.stderr
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def only_run(root: Path) -> dict[str, Any]:
    (run,) = runs(root)
    return run


def said(run: dict[str, Any], words: str) -> bool:
    return any(words in w for w in run["warnings"])


# --- one layout per line-based metrics log ---------------------------------------------


def lightning(root: Path, text: str) -> None:
    run = root / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text(text)


def mlflow_file(root: Path, text: str) -> None:
    run = root / "mlruns" / "1" / "0123456789abcdef0123456789abcdef"
    (run / "metrics").mkdir(parents=True)
    (run.parent / "meta.yaml").write_text("experiment_id: '1'\nname: exp\n")
    (run / "meta.yaml").write_text(
        "run_id: 0123456789abcdef0123456789abcdef\nexperiment_id: '1'\nstatus: 1\n"
    )
    (run / "metrics" / "train_loss").write_text(text)


def dvclive_run(root: Path, text: str) -> None:
    run = root / "exp" / "dvclive"
    (run / "plots" / "metrics").mkdir(parents=True)
    (run / "metrics.json").write_text('{"acc": 0.9}\n')
    (run / "plots" / "metrics" / "train_loss.tsv").write_text(text)


def wandb_run(root: Path, text: str) -> None:
    files = root / "wandb" / "run-20240101_100000-abc123" / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text("lr:\n  value: 0.1\n")
    (files / "wandb-history.jsonl").write_text(text)


def mmengine_run(root: Path, text: str) -> None:
    work = root / "work_dirs" / "cfg"
    (work / "20240101_000000" / "vis_data").mkdir(parents=True)
    (work / "cfg.py").write_text("lr = 0.1\n")
    (work / "20240101_000000" / "vis_data" / "scalars.json").write_text(text)


def detectron2_run(root: Path, text: str) -> None:
    out = root / "output"
    out.mkdir(parents=True)
    (out / "config.yaml").write_text("SOLVER:\n  BASE_LR: 0.1\n")
    (out / "log.txt").write_text("started\n")
    (out / "metrics.json").write_text(text)


def neptune_run(root: Path, text: str) -> None:
    run = root / ".neptune" / "offline" / "run__abc__1__x"
    run.mkdir(parents=True)
    (run / "data-1.log").write_text(text)


def neptune_op(step: int, value: str) -> str:
    point = f'{{"value": {value}, "step": {step}}}'
    op = f'{{"type": "LogFloats", "path": ["train_loss"], "values": [{point}]}}'
    return f'{{"obj": {op}, "version": {step + 1}}}'


# (layout, whole first record(s), the same with a cut second record) for each format;
# in every one the first record says train_loss=0.5 at step 0, the cut one 0.25 at 1
CUT_LOGS = {
    "lightning": (lightning, "step,train_loss\n0,0.5\n", "step,train_loss\n0,0.5\n1,0."),
    "mlflow": (mlflow_file, "1700000000000 0.5 0\n", "1700000000000 0.5 0\n1700000001000 0.2"),
    "dvclive": (dvclive_run, "step\ttrain_loss\n0\t0.5\n", "step\ttrain_loss\n0\t0.5\n1\t0."),
    "wandb": (
        wandb_run,
        '{"_step": 0, "train_loss": 0.5}\n',
        '{"_step": 0, "train_loss": 0.5}\n{"_step": 1, "train_loss": 0.',
    ),
    "mmengine": (
        mmengine_run,
        '{"train_loss": 0.5, "step": 0}\n',
        '{"train_loss": 0.5, "step": 0}\n{"train_loss": 0.25, "ste',
    ),
    "detectron2": (
        detectron2_run,
        '{"iteration": 0, "train_loss": 0.5}\n',
        '{"iteration": 0, "train_loss": 0.5}\n{"iteration": 1, "train_loss": 0.2',
    ),
    "neptune": (
        neptune_run,
        neptune_op(0, "0.5") + "\n",
        neptune_op(0, "0.5") + "\n" + neptune_op(1, "0.25")[:-3],
    ),
}


@pytest.mark.parametrize("kind", sorted(CUT_LOGS))
def test_a_last_line_cut_mid_write_is_not_read_and_the_metrics_are_partial(
    tmp_path: Path, kind: str
) -> None:
    layout, _, cut = CUT_LOGS[kind]
    layout(tmp_path / "root", cut)
    run = only_run(tmp_path / "root")
    loss = run["metrics"]["train_loss"]
    assert (loss["last"], loss["last_step"], loss["n"]) == (0.5, 0, 1), run
    assert run["metrics_complete"] is False, run
    assert said(run, CUT), run["warnings"]


@pytest.mark.parametrize("kind", sorted(CUT_LOGS))
def test_a_log_of_whole_lines_is_read_whole(tmp_path: Path, kind: str) -> None:
    layout, whole, _ = CUT_LOGS[kind]
    layout(tmp_path / "root", whole)
    run = only_run(tmp_path / "root")
    assert run["metrics"]["train_loss"]["last"] == 0.5
    assert run["metrics_complete"] is True, run["warnings"]


@pytest.mark.parametrize("kind", ["wandb", "mmengine", "detectron2", "neptune"])
def test_a_whole_json_object_without_its_line_end_is_kept(tmp_path: Path, kind: str) -> None:
    """MMEngine writes the object and then its line end: between the two, the last line
    is whole (a JSON object closes itself), so it is read and nothing is partial."""
    layout, whole, _ = CUT_LOGS[kind]
    layout(tmp_path / "root", whole.rstrip("\n"))
    run = only_run(tmp_path / "root")
    assert run["metrics"]["train_loss"]["last"] == 0.5
    assert run["metrics_complete"] is True, run["warnings"]


def test_a_csv_row_ended_by_the_cr_of_a_crlf_is_whole(tmp_path: Path) -> None:
    lightning(tmp_path / "root", "step,train_loss\r\n0,0.9\r\n1,0.5\r")
    run = only_run(tmp_path / "root")
    assert run["metrics"]["train_loss"]["last"] == 0.5 and run["metrics_complete"] is True


# --- lines and rows skipped ------------------------------------------------------------

SKIPPED = {
    "mlflow": (mlflow_file, "1700000000000 0.9 0\nabc\n1700000001000 0.5 1\n"),
    "dvclive": (dvclive_run, "step\ttrain_loss\n0\t0.9\n1\tx\n1\t0.5\n"),
    "wandb": (
        wandb_run,
        '{"_step": 0, "train_loss": 0.9}\n{"_st\n{"_step": 1, "train_loss": 0.5}\n',
    ),
    "mmengine": (
        mmengine_run,
        '{"train_loss": 0.9, "step": 0}\n[1]\n{"train_loss": 0.5, "step": 1}\n',
    ),
    "detectron2": (
        detectron2_run,
        '{"iteration": 0, "train_loss": 0.9}\nnull\n{"iteration": 1, "train_loss": 0.5}\n',
    ),
}


@pytest.mark.parametrize("kind", sorted(SKIPPED))
def test_a_line_skipped_as_malformed_makes_the_metrics_partial(tmp_path: Path, kind: str) -> None:
    layout, text = SKIPPED[kind]
    layout(tmp_path / "root", text)
    run = only_run(tmp_path / "root")
    assert run["metrics"]["train_loss"]["last"] == 0.5
    assert run["metrics_complete"] is False, run
    assert said(run, "malformed"), run["warnings"]


def test_a_metrics_csv_over_the_cap_is_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "step,train_loss\n0,0.5\n1,0.25\n"
    monkeypatch.setattr(_io, "LARGE", len("step,train_loss\n0,0.5\n1,0.2"))
    lightning(tmp_path / "root", text)
    run = only_run(tmp_path / "root")
    assert run["metrics"]["train_loss"]["last"] == 0.5
    assert run["metrics_complete"] is False
    assert said(run, "only the start was read"), run["warnings"]


# --- binary logs -----------------------------------------------------------------------


def tfrecord_offsets(data: bytes) -> list[int]:
    import struct

    out, pos = [], 0
    while pos + 12 <= len(data):
        out.append(pos)
        pos += 16 + struct.unpack("<Q", data[pos : pos + 8])[0]
    return out


@pytest.mark.parametrize("beside_csv", [False, True])
def test_an_event_record_skipped_for_its_checksum_makes_the_metrics_partial(
    tmp_path: Path, beside_csv: bool
) -> None:
    """A TensorBoard run, and a Lightning run whose event files sit beside metrics.csv
    (their metrics only the events hold are added; its params come from hparams.yaml)."""
    source = next((FIXTURES / "tensorboard" / "torch_run").iterdir())
    data = bytearray(source.read_bytes())
    offsets = tfrecord_offsets(bytes(data))
    data[offsets[len(offsets) // 2] + 12] ^= 0xFF  # a payload byte: its data CRC fails
    for corrupt in (False, True):
        root = tmp_path / str(corrupt) / "root"
        if beside_csv:
            lightning(root, "step,val_acc\n0,0.5\n")
            run_dir = root / "lightning_logs" / "version_0"
        else:
            run_dir = root / "tb" / "run"
            run_dir.mkdir(parents=True)
        (run_dir / source.name).write_bytes(bytes(data) if corrupt else source.read_bytes())
        run = only_run(root)
        assert said(run, "bad data checksum") is corrupt, run["warnings"]
        assert run["metrics_complete"] is not corrupt
        # a record lost may have held hparams: params from the event files are partial too
        assert run["params_complete"] is (beside_csv or not corrupt)


def test_a_wandb_record_log_cut_mid_record_makes_the_metrics_partial(tmp_path: Path) -> None:
    name = "offline-run-20261127_142812-19x7jcho"
    source = FIXTURES / "wandb" / "wandb" / name
    root = tmp_path / "root"
    target = root / "wandb" / name
    shutil.copytree(source, target, symlinks=True)
    log = target / "run-19x7jcho.wandb"
    assert only_run(root)["metrics_complete"] is True

    data = log.read_bytes()
    log.write_bytes(data[: len(data) * 2 // 3])
    run = only_run(root)  # read again: the log changed
    assert run["metrics_complete"] is False
    assert said(run, "file still being written"), run["warnings"]


# --- folders of metric files walked in part ---------------------------------------------


def test_a_dvclive_plots_folder_past_the_walk_limit_is_said_and_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dvclive, "MAX_PLOTS", 2)
    dvclive_run(tmp_path / "root", "step\ttrain_loss\n0\t0.5\n")
    plots = tmp_path / "root" / "exp" / "dvclive" / "plots" / "metrics"
    for name in ("a", "b"):
        (plots / f"{name}.tsv").write_text(f"step\t{name}\n0\t1.0\n")
    run = only_run(tmp_path / "root")
    assert run["metrics_complete"] is False
    assert said(run, "3 files, read the first 2"), run["warnings"]


def test_an_mlflow_metrics_folder_past_the_walk_limit_is_said_and_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow, "MAX_METRIC_FILES", 1)
    mlflow_file(tmp_path / "root", "1700000000000 0.5 0\n")
    metrics = next((tmp_path / "root" / "mlruns" / "1").glob("*/metrics"))
    (metrics / "nested").mkdir()
    (metrics / "nested" / "acc").write_text("1700000000000 0.9 0\n")
    run = only_run(tmp_path / "root")
    assert run["metrics_complete"] is False
    assert said(run, "2 files, read the first 1"), run["warnings"]


def test_a_run_folder_listed_in_part_makes_params_and_metrics_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the first name of the run folder is looked at (``hparams.yaml``): its
    ``metrics.csv`` went unseen, and the run showed no metrics, as if it had none."""
    lightning(tmp_path / "root", "step,train_loss\n0,0.5\n")
    monkeypatch.setattr(_io, "LIST_KEPT", 1)
    run = only_run(tmp_path / "root")
    assert run["metrics"] == {}
    assert (run["metrics_complete"], run["params_complete"]) == (False, False)
    assert said(run, "read the first 1 of 2 entries"), run["warnings"]


def test_a_trainer_state_cut_mid_write_makes_the_metrics_partial(tmp_path: Path) -> None:
    """The Trainer rewrites ``trainer_state.json`` in place: cut, the newest state is not
    read and an older checkpoint's stands in; its values are not the run's last."""
    out = tmp_path / "root" / "out"
    (out / "checkpoint-1").mkdir(parents=True)
    state = {"global_step": 1, "log_history": [{"step": 1, "loss": 0.9}]}
    (out / "checkpoint-1" / "trainer_state.json").write_text(json.dumps(state))
    newer = {"global_step": 2, "log_history": [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}]}
    (out / "trainer_state.json").write_text(json.dumps(newer)[:-20])
    run = only_run(tmp_path / "root")
    assert run["metrics"]["loss"]["last"] == 0.9
    assert run["metrics_complete"] is False, run
