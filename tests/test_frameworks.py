"""Run detection and run metadata on hand-made, faithful and malformed layouts."""

from __future__ import annotations

import json
import os
import sqlite3
import zipfile
from pathlib import Path

import pytest

from store.errors import ArtlensError
from store.frameworks import (
    DirListing,
    RunInfo,
    RunSpec,
    detect_runs,
    read_metric_series,
    read_run,
)
from store.frameworks.hf import checkpoints


def listing_of(root: Path) -> dict[str, DirListing]:
    """What the scanner hands over: every folder's sub-folders and files (links as files)."""
    out: dict[str, DirListing] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in links]
        out[rel] = DirListing(frozenset(dirnames), frozenset(filenames + links))
    return out


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)


def warnings_of(info: RunInfo) -> list[str]:
    found = info.meta["warnings"]
    assert isinstance(found, list)
    return [str(w) for w in found]


def runs_of(root: Path) -> dict[str, RunSpec]:
    return {spec.path: spec for spec in detect_runs(root, listing_of(root))}


def only(root: Path, framework: str) -> RunSpec:
    found = [s for s in runs_of(root).values() if s.framework == framework]
    assert len(found) == 1, found
    return found[0]


# --- MLflow file store ----------------------------------------------------------------------

RUN_A = "0b6ca591f9e7449b9352c36b6a7e4d44"
RUN_B = "fe5ea7f0e27448af842cb7b5ea9cbf21"


def mlflow_file_store(root: Path) -> None:
    exp = "mlruns/209177983133473214"
    run_meta = (
        "artifact_uri: file:///x/mlruns/209177983133473214/{id}/artifacts\n"
        "end_time: {end}\nentry_point_name: ''\nexperiment_id: '209177983133473214'\n"
        "lifecycle_stage: active\nrun_id: {id}\nrun_name: {name}\nrun_uuid: {id}\n"
        "source_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000000\n"
        "status: {status}\ntags: []\nuser_id: root\n"
    )
    write(
        root,
        {
            "mlruns/0/meta.yaml": "experiment_id: '0'\nname: Default\nlifecycle_stage: active\n",
            f"{exp}/meta.yaml": "experiment_id: '209177983133473214'\nname: tiny exp\n",
            f"{exp}/{RUN_A}/meta.yaml": run_meta.format(
                id=RUN_A, name="brave-owl", status=3, end=1700000060000
            ),
            f"{exp}/{RUN_A}/params/lr": "0.1",
            f"{exp}/{RUN_A}/params/optimizer": "sgd",
            f"{exp}/{RUN_A}/params/model/depth": "3",
            f"{exp}/{RUN_A}/metrics/loss": "1700000001000 1.0 0\n1700000002000 0.5 1\n"
            "1700000003000 0.25 2\n",
            f"{exp}/{RUN_A}/metrics/val/acc": "1700000001000 0.5 0\n1700000003000 0.75 2\n",
            f"{exp}/{RUN_A}/tags/mlflow.runName": "brave-owl",
            f"{exp}/{RUN_A}/tags/mlflow.source.git.commit": "abc123",
            f"{exp}/{RUN_A}/tags/stage": "fixture",
            f"{exp}/{RUN_A}/artifacts/notes.txt": "hello",
            f"{exp}/{RUN_B}/meta.yaml": run_meta.format(
                id=RUN_B, name="calm-cat", status=4, end="null"
            ),
            f"{exp}/{RUN_B}/metrics/loss": "1700000001000 2.0 0\n",
            f"{exp}/{RUN_B}/params/lr": "0.01",
            f"{exp}/models/m-13999dd5712f4744adad60c29e229c51/meta.yaml": (
                f"model_id: m-13999dd5712f4744adad60c29e229c51\nname: model\n"
                f"source_run_id: {RUN_A}\nexperiment_id: '209177983133473214'\n"
            ),
            f"{exp}/models/m-13999dd5712f4744adad60c29e229c51/artifacts/MLmodel": "flavors: {}\n",
            f"{exp}/models/m-13999dd5712f4744adad60c29e229c51/params/lr": "0.1",
            f"mlruns/.trash/5/{RUN_B}/meta.yaml": "run_id: gone\n",
            f"mlruns/.trash/5/{RUN_B}/params/lr": "1",
        },
    )


def test_mlflow_file_store(tmp_path: Path) -> None:
    mlflow_file_store(tmp_path)
    runs = runs_of(tmp_path)
    exp = "mlruns/209177983133473214"
    assert set(runs) == {f"{exp}/{RUN_A}", f"{exp}/{RUN_B}"}  # no .trash, no model folder
    spec = runs[f"{exp}/{RUN_A}"]
    assert (spec.framework, spec.name, spec.experiment, spec.run_key) == (
        "mlflow",
        "brave-owl",
        "tiny exp",
        RUN_A,
    )
    assert spec.extra_paths == (f"{exp}/models/m-13999dd5712f4744adad60c29e229c51",)
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.1, "optimizer": "sgd", "model/depth": 3}
    assert info.metrics["loss"].last == 0.25 and info.metrics["loss"].last_step == 2
    assert info.metrics["val/acc"].best == 0.75 and info.metrics["val/acc"].direction == "max"
    assert info.status == "finished"
    assert info.started == 1700000000.0 and info.ended == 1700000060.0
    assert info.meta["git_commit"] == "abc123" and info.meta["run_id"] == RUN_A
    assert info.meta["warnings"] == []
    failed = read_run(tmp_path, runs[f"{exp}/{RUN_B}"])
    assert failed.status == "failed" and failed.ended is None
    series = read_metric_series(tmp_path, spec)
    assert series["loss"] == [(0, 1.0), (1, 0.5), (2, 0.25)]


def test_mlflow_malformed_files_warn(tmp_path: Path) -> None:
    mlflow_file_store(tmp_path)
    run = tmp_path / "mlruns/209177983133473214" / RUN_A
    (run / "meta.yaml").write_bytes(b"status: [unclosed\n\xff\xfe")
    (run / "metrics/loss").write_text("1 0.5 0\nnot a number here\n2 nan 1\n3\n")
    os.mkfifo(run / "params/fifo")
    os.symlink("fifo", run / "params/to_fifo")
    os.symlink("/etc/passwd", run / "params/escape")
    (run / "metrics" / "acc\udcff").write_text("1 0.9 0\n")
    spec = RunSpec(f"mlruns/209177983133473214/{RUN_A}", "mlflow", "x", None, run_key=RUN_A)
    info = read_run(tmp_path, spec)
    text = " | ".join(str(w) for w in warnings_of(info))
    assert "meta.yaml" in text and "malformed line" in text
    assert "not a regular file" in text and "out of the root" in text
    assert info.status == "unknown"
    assert info.metrics["loss"].n == 2 and info.metrics["loss"].best == 0.5
    assert info.metrics["acc\\xff"].last == 0.9
    assert not {"fifo", "to_fifo", "escape"} & set(info.params)
    json.dumps(info.meta)


# --- MLflow SQLite ----------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256) NOT NULL,
  artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32), creation_time BIGINT,
  last_update_time BIGINT);
CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250), source_type VARCHAR(20),
  source_name VARCHAR(500), entry_point_name VARCHAR(50), user_id VARCHAR(256),
  status VARCHAR(9), start_time BIGINT, end_time BIGINT, source_version VARCHAR(50),
  lifecycle_stage VARCHAR(20), artifact_uri VARCHAR(200), experiment_id INTEGER,
  deleted_time BIGINT);
CREATE TABLE params (key VARCHAR(250), value VARCHAR(8000), run_uuid VARCHAR(32));
CREATE TABLE tags (key VARCHAR(250), value VARCHAR(8000), run_uuid VARCHAR(32));
CREATE TABLE metrics (key VARCHAR(250), value FLOAT, timestamp BIGINT, run_uuid VARCHAR(32),
  step BIGINT DEFAULT 0, is_nan BOOLEAN DEFAULT 0);
"""


def mlflow_db(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlruns/1/aaa1/artifacts").mkdir(parents=True)
    (root / "mlruns/1/aaa1/artifacts/model.pt").write_bytes(b"w")
    (root / "mlartifacts/1/bbb2/artifacts").mkdir(parents=True)
    conn = sqlite3.connect(root / "mlflow.db")
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO experiments VALUES (1, 'sweep', './mlruns/1', 'active', 0, 0)")
    rows = [
        ("aaa1", "first", "FINISHED", f"{root}/mlruns/1/aaa1/artifacts"),
        ("bbb2", "second", "KILLED", "mlflow-artifacts:/1/bbb2/artifacts"),
        ("ccc3", "third", "RUNNING", "s3://bucket/1/ccc3/artifacts"),
    ]
    for run_id, name, status, uri in rows:
        conn.execute(
            "INSERT INTO runs (run_uuid, name, status, start_time, end_time, artifact_uri, "
            "experiment_id, user_id, lifecycle_stage) VALUES (?,?,?,?,?,?,1,'me','active')",
            (run_id, name, status, 1700000000000, 1700000100000, uri),
        )
    conn.executemany(
        "INSERT INTO metrics VALUES (?,?,?,?,?,?)",
        [
            ("loss", 1.0, 1, "aaa1", 0, 0),
            ("loss", 0.3, 2, "aaa1", 1, 0),
            ("loss", 0.0, 3, "aaa1", 2, 1),
        ],
    )
    conn.execute("INSERT INTO params VALUES ('lr', '0.001', 'aaa1')")
    conn.execute("INSERT INTO tags VALUES ('mlflow.source.git.commit', 'deadbeef', 'aaa1')")
    conn.commit()
    conn.close()


def test_mlflow_sqlite(tmp_path: Path) -> None:
    mlflow_db(tmp_path)
    runs = runs_of(tmp_path)
    by_key = {s.run_key: s for s in runs.values() if s.framework == "mlflow"}
    assert by_key["aaa1"].path == "mlruns/1/aaa1"
    assert by_key["bbb2"].path == "mlartifacts/1/bbb2"
    assert by_key["ccc3"].path == "mlflow.db#ccc3"  # no folder under the root
    assert by_key["aaa1"].experiment == "sweep" and by_key["aaa1"].name == "first"
    info = read_run(tmp_path, by_key["aaa1"])
    assert info.params == {"lr": 0.001}
    assert info.status == "finished" and info.meta["git_commit"] == "deadbeef"
    assert info.metrics["loss"].best == 0.3 and info.metrics["loss"].n == 3
    assert read_run(tmp_path, by_key["bbb2"]).status == "killed"
    assert read_run(tmp_path, by_key["ccc3"]).status == "running"
    assert "generic" not in {s.framework for s in runs.values()}


def test_mlflow_sqlite_moved_root_maps_by_run_id(tmp_path: Path) -> None:
    mlflow_db(tmp_path / "old")
    (tmp_path / "old").rename(tmp_path / "new")
    by_key = {s.run_key: s for s in runs_of(tmp_path).values()}
    assert by_key["aaa1"].path == "new/mlruns/1/aaa1"


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + b"\x00" * 50, b"garbage" * 100])
def test_mlflow_db_corrupt_or_foreign(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "mlflow.db").write_bytes(content)
    assert [s for s in runs_of(tmp_path).values() if s.framework == "mlflow"] == []
    info = read_run(tmp_path, RunSpec("mlflow.db#x", "mlflow", "x", None, run_key="x"))
    assert info.meta["warnings"]


def test_mlflow_db_foreign_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "mlflow.db")
    conn.execute("CREATE TABLE runs (id INTEGER)")
    conn.commit()
    conn.close()
    assert runs_of(tmp_path) == {}


# --- W&B ----------------------------------------------------------------------------------------


def wandb_run(root: Path, folder: str = "wandb/run-20240102_030405-abc123") -> None:
    write(
        root,
        {
            f"{folder}/files/config.yaml": (
                "wandb_version: 1\n_wandb:\n  desc: null\n  value:\n    cli_version: 0.17.0\n"
                "lr:\n  desc: null\n  value: 0.01\noptimizer:\n  desc: null\n  value:\n"
                "    name: adam\n    beta: 0.9\n"
            ),
            f"{folder}/files/wandb-summary.json": json.dumps(
                {
                    "loss": 0.25,
                    "best_acc": 0.9,
                    "_step": 3,
                    "_runtime": 10,
                    "_timestamp": 1704164655,
                    "_wandb": {"runtime": 10},
                    "hist": {"_type": "histogram", "bins": [1, 2]},
                }
            ),
            f"{folder}/files/wandb-metadata.json": json.dumps(
                {
                    "host": "gpu1",
                    "python": "3.11.7",
                    "startedAt": "2024-01-02T03:04:05.000000Z",
                    "git": {"commit": "cafe", "remote": "https://example.com/r.git"},
                }
            ),
            f"{folder}/files/wandb-history.jsonl": "\n".join(
                json.dumps({"_step": i, "loss": 1.0 / (i + 1), "eval": {"f1": 0.1 * i}})
                for i in range(4)
            ),
            f"{folder}/files/output.log": "training\n",
        },
    )


def test_wandb_files(tmp_path: Path) -> None:
    wandb_run(tmp_path)
    os.symlink("run-20240102_030405-abc123", tmp_path / "wandb/latest-run")
    spec = only(tmp_path, "wandb")
    assert (spec.path, spec.name, spec.run_key) == (
        "wandb/run-20240102_030405-abc123",
        "abc123",
        "abc123",
    )
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.01, "optimizer.name": "adam", "optimizer.beta": 0.9}
    assert info.metrics["loss"].last == 0.25 and info.metrics["loss"].n == 4
    assert info.metrics["eval.f1"].last == pytest.approx(0.3)
    assert info.metrics["best_acc"].last == 0.9  # summary-only metric
    assert "hist._type" not in info.metrics
    assert info.meta["git_commit"] == "cafe" and info.meta["host"] == "gpu1"
    assert info.started == 1704164645.0 and info.ended == 1704164655.0


WANDB_PL = "wandb_logger/wandb/offline-run-20261207_060344-adu3lghz"


def test_wandb_owns_lightning_wandblogger_checkpoints(tmp_path: Path) -> None:
    """Lightning 2.6.6's WandbLogger + ModelCheckpoint (wandb 0.31 offline) write the
    checkpoints to ``<save_dir>/<project>/<run id>/checkpoints``: the W&B run's."""
    write(
        tmp_path,
        {
            f"{WANDB_PL}/run-adu3lghz.wandb": b"",
            f"{WANDB_PL}/files/output.log": "",
            "wandb_logger/wandb/debug.log": "",
            "wandb_logger/pl-tiny/adu3lghz/checkpoints/epoch=4-step=20.ckpt": b"",
            "wandb_logger/pl-tiny/adu3lghz/checkpoints/last.ckpt": b"",
            "wandb_logger/pl-tiny/adu3lghzz/checkpoints/last.ckpt": b"",  # another id
            "wandb_logger/pl-other/zzzzzzzz/checkpoints/last.ckpt": b"",
        },
    )
    (tmp_path / "wandb_logger/wandb/latest-run").symlink_to("offline-run-20261207_060344-adu3lghz")
    spec = only(tmp_path, "wandb")
    assert spec.extra_paths == ("wandb_logger/pl-tiny/adu3lghz",)


def test_wandb_checkpoint_folder_claimed_only_when_unambiguous(tmp_path: Path) -> None:
    online = "s/wandb/run-20261207_060344-abc123xy"
    files: dict[str, str | bytes] = {
        f"{online}/run-abc123xy.wandb": b"",
        "s/p1/abc123xy/checkpoints/last.ckpt": b"",  # the id in two projects: whose?
        "s/p2/abc123xy/checkpoints/last.ckpt": b"",
        "t/wandb/run-20261207_060344-zz9/run-zz9.wandb": b"",
        "t/proj/zz9/checkpoints/notes.txt": "",  # no checkpoint in it
        "u/wandb/run-20261207_060344-q1/run-q1.wandb": b"",
        "u/proj/q1/checkpoints/last.ckpt": b"",
        "u/proj/q1/lightning_logs/version_0/metrics.csv": "step,loss\n0,1\n",  # another run
    }
    write(tmp_path, files)
    runs = runs_of(tmp_path)
    assert [runs[p].extra_paths for p in sorted(runs) if runs[p].framework == "wandb"] == [
        (),
        (),
        (),
    ]
    assert runs["u/proj/q1/lightning_logs/version_0"].framework == "lightning"
    write(tmp_path, {"s/p2/abc123xy/checkpoints/last.ckpt": b""})
    (tmp_path / "s/p2/abc123xy/checkpoints/last.ckpt").unlink()
    assert runs_of(tmp_path)[online].extra_paths == ("s/p1/abc123xy",)


def test_wandb_truncated_summary_warns(tmp_path: Path) -> None:
    wandb_run(tmp_path, "wandb/offline-run-20240102_030405-zz9")
    summary = tmp_path / "wandb/offline-run-20240102_030405-zz9/files/wandb-summary.json"
    summary.write_text('{"loss": 0.2')
    info = read_run(tmp_path, only(tmp_path, "wandb"))
    assert any("wandb-summary.json" in str(w) for w in warnings_of(info))
    assert info.params["lr"] == 0.01


# --- Lightning ---------------------------------------------------------------------------------

METRICS_CSV = """epoch,step,train_loss,val_loss,val_acc
0,0,1.0,,
0,1,0.8,,
0,1,,0.9,0.5
1,3,0.6,,
1,3,,0.7,0.75
"""


def test_lightning(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "exp/lightning_logs/version_0/hparams.yaml": (
                "lr: 0.1\nbetas: !!python/tuple\n- 0.9\n- 0.99\n"
                "dtype: !!python/name:torch.float32 ''\n"
            ),
            "exp/lightning_logs/version_0/metrics.csv": METRICS_CSV,
            "exp/lightning_logs/version_0/checkpoints/epoch=10-step=110.ckpt": "x",
            "exp/lightning_logs/version_0/checkpoints/epoch=9-step=100.ckpt": "x",
            "exp/lightning_logs/version_0/events.out.tfevents.1.host.1.0": "",
            "exp/lightning_logs/version_1/metrics.csv": "step,loss\n0,1\n",
        },
    )
    runs = runs_of(tmp_path)
    assert {s.framework for s in runs.values()} == {"lightning"}  # TB file is the version's
    spec = runs["exp/lightning_logs/version_0"]
    assert (spec.name, spec.experiment) == ("version_0", "lightning_logs")
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.1, "betas": [0.9, 0.99], "dtype": "<python/name:torch.float32>"}
    assert info.metrics["val_loss"].last == 0.7 and info.metrics["val_loss"].last_step == 3
    assert info.metrics["val_acc"].best == 0.75 and info.metrics["train_loss"].n == 3
    assert "epoch" not in info.metrics
    assert info.meta["checkpoints"] == ["epoch=9-step=100.ckpt", "epoch=10-step=110.ckpt"]


def test_lightning_ragged_csv_warns(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "lightning_logs/version_3/metrics.csv": (
                "step,loss,acc\n0,1.0,0.1\n1,oops,0.2\n2,9.0,0.9,extra\n3,0.5\n\x00\xff,\n"
                "4,0.25,0.4\n"
            ),
            "lightning_logs/version_3/hparams.yaml": "lr: [1, 2\n",
        },
    )
    info = read_run(tmp_path, only(tmp_path, "lightning"))
    text = " ".join(warnings_of(info))
    assert "different number of fields" in text and "non-numeric" in text
    assert "hparams.yaml" in text
    assert info.metrics["loss"].last == 0.25 and info.metrics["acc"].best == 0.4
    # the rows of 4, 2 and 2 cells are left out: a value there may be another column's
    assert "3 row(s) with a different number of fields" in text
    assert info.metrics["loss"].n == 2 and info.metrics["acc"].n == 3


# --- Hugging Face Trainer -------------------------------------------------------------------


def trainer_state(step: int) -> str:
    history = [{"step": s, "epoch": s / 100, "loss": 1.0 / s} for s in range(100, step + 1, 100)]
    history.append({"step": step, "eval_loss": 0.5, "eval_accuracy": 0.8})
    return json.dumps(
        {
            "global_step": step,
            "max_steps": 1000,
            "best_metric": 0.5,
            "best_model_checkpoint": f"out/checkpoint-{step}",
            "log_history": history,
        }
    )


def test_hf_trainer_numeric_checkpoints(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"out/config.json": '{"hidden_size": 8}'}
    for step in (90, 500, 1000):
        files[f"out/checkpoint-{step}/trainer_state.json"] = trainer_state(step)
        files[f"out/checkpoint-{step}/training_args.bin"] = b"\x80\x04pickle"
    files["out/runs/Jan01_00-00-00_host/events.out.tfevents.1.host"] = b""
    files["out/all_results.json"] = '{"train_loss": 0.42, "epoch": 10.0}'
    write(tmp_path, files)
    runs = runs_of(tmp_path)
    assert list(runs) == ["out"]  # runs/ TensorBoard and checkpoints belong to the output dir
    assert checkpoints(tmp_path, "out") == ["checkpoint-90", "checkpoint-500", "checkpoint-1000"]
    info = read_run(tmp_path, runs["out"])
    assert info.meta["checkpoints"] == ["checkpoint-90", "checkpoint-500", "checkpoint-1000"]
    assert info.meta["global_step"] == 1000 and info.status == "finished"
    assert info.metrics["loss"].last == pytest.approx(0.001) and info.metrics["loss"].n == 10
    assert info.metrics["train_loss"].last == 0.42 and info.metrics["train_loss"].last_step == 1000
    assert info.params["model.hidden_size"] == 8


def test_hf_corrupt_newest_state_falls_back(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "o/checkpoint-200/trainer_state.json": trainer_state(200),
            "o/checkpoint-1000/trainer_state.json": '{"global_step": 10',
        },
    )
    info = read_run(tmp_path, only(tmp_path, "hf-trainer"))
    assert info.meta["global_step"] == 200
    assert any("checkpoint-1000" in w for w in warnings_of(info))


# --- Hydra ----------------------------------------------------------------------------------


def hydra_files(folder: str, lr: float, job: str = "train") -> dict[str, str | bytes]:
    return {
        f"{folder}/.hydra/config.yaml": f"optim:\n  lr: {lr}\nmodel:\n  name: mlp\n",
        f"{folder}/.hydra/overrides.yaml": f"- optim.lr={lr}\n",
        f"{folder}/.hydra/hydra.yaml": (
            f"hydra:\n  mode: RUN\n  job:\n    name: {job}\n    id: '1'\n"
        ),
    }


def test_hydra_runs_and_nesting(tmp_path: Path) -> None:
    files = hydra_files("outputs/2024-01-02/10-11-12", 0.1)
    files.update(hydra_files("multirun/2024-01-02/10-11-12/3", 0.2, job="sweep"))
    files["multirun/2024-01-02/10-11-12/multirun.yaml"] = "hydra: {}\n"
    for version in (0, 1):  # two runs inside: the Hydra folder stays a run of its own
        files[f"outputs/2024-01-02/10-11-12/lightning_logs/version_{version}/metrics.csv"] = (
            "step,loss\n0,1\n"
        )
    write(tmp_path, files)
    runs = runs_of(tmp_path)
    outer = runs["outputs/2024-01-02/10-11-12"]
    assert (outer.framework, outer.name, outer.experiment) == (
        "hydra",
        "2024-01-02/10-11-12",
        "train",
    )
    assert runs["multirun/2024-01-02/10-11-12/3"].name == "2024-01-02/10-11-12/3"
    inner = runs["outputs/2024-01-02/10-11-12/lightning_logs/version_0"]
    assert (inner.framework, inner.name, inner.extra_paths) == ("lightning", "version_0", ())
    info = read_run(tmp_path, outer)
    assert info.params == {"optim.lr": 0.1, "model.name": "mlp"}
    assert info.meta["overrides"] == ["optim.lr=0.1"]
    assert info.started is not None


def test_hydra_sweep_job_around_one_lightning_run_is_one_run(tmp_path: Path) -> None:
    """A multirun job folder with Lightning's CSVLogger inside (Hydra 1.3.8, Lightning
    2.6.6: names and contents as they wrote them) is one run: the Lightning run, named
    after the job, owning the job folder, with the job's config and override."""
    job = "multirun/2026-12-07/06-04-02/0"
    files: dict[str, str | bytes] = {
        f"{job}/.hydra/config.yaml": "lr: 0.3\nhidden: 64\nepochs: 6\n",
        f"{job}/.hydra/overrides.yaml": "- lr=0.3\n",
        f"{job}/.hydra/hydra.yaml": "hydra:\n  mode: MULTIRUN\n  job:\n    name: train\n",
        f"{job}/train.log": "",
        f"{job}/lightning_logs/version_0/hparams.yaml": "lr: 0.3\nhidden: 32\n",
        f"{job}/lightning_logs/version_0/metrics.csv": (
            "epoch,step,train_loss,val_loss\n0,1,0.93,\n0,3,0.5,0.4\n"
        ),
        f"{job}/lightning_logs/version_0/checkpoints/epoch=0-step=4.ckpt": b"",
        f"{job}/lightning_logs/version_0/checkpoints/last.ckpt": b"",
        "multirun/2026-12-07/06-04-02/multirun.yaml": "hydra: {}\n",
    }
    write(tmp_path, files)
    runs = runs_of(tmp_path)
    assert list(runs) == [f"{job}/lightning_logs/version_0"]
    spec = runs[f"{job}/lightning_logs/version_0"]
    assert (spec.framework, spec.name, spec.experiment, spec.extra_paths) == (
        "lightning",
        "2026-12-07/06-04-02/0",
        "train",
        (job,),
    )
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.3, "hidden": 32, "epochs": 6}  # the trainer's record wins
    assert any("hidden is 64" in w and "32" in w for w in warnings_of(info))
    assert info.meta["overrides"] == ["lr=0.3"] and info.metrics["val_loss"].last == 0.4
    assert info.meta["checkpoints"] == ["epoch=0-step=4.ckpt", "last.ckpt"]


def test_hydra_job_keeps_an_inner_run_that_has_its_own_name(tmp_path: Path) -> None:
    """A W&B run in a job folder is named by W&B: it takes the folder, not the name."""
    job = "outputs/2026-12-07/06-04-02"
    files = hydra_files(job, 0.1)
    files[f"{job}/wandb/offline-run-20261207_060344-adu3lghz/run-adu3lghz.wandb"] = b""
    write(tmp_path, files)
    spec = only(tmp_path, "wandb")
    assert (spec.name, spec.extra_paths) == ("adu3lghz", (job,))
    assert "hydra" not in {s.framework for s in runs_of(tmp_path).values()}


def test_hydra_folder_that_is_an_hf_output_dir(tmp_path: Path) -> None:
    files = hydra_files("outputs/2024-01-02/10-11-12", 0.3)
    files["outputs/2024-01-02/10-11-12/checkpoint-10/trainer_state.json"] = trainer_state(100)
    write(tmp_path, files)
    spec = only(tmp_path, "hf-trainer")
    assert "hydra" not in {s.framework for s in runs_of(tmp_path).values()}
    info = read_run(tmp_path, spec)
    assert info.params["optim.lr"] == 0.3 and info.meta["overrides"] == ["optim.lr=0.3"]


# --- DVCLive, Comet, Neptune, TensorBoard ------------------------------------------------------


def test_dvclive(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "proj/dvc.yaml": "stages: {}\n",
            "proj/dvclive/metrics.json": '{"train": {"loss": 0.25}, "step": 2}',
            "proj/dvclive/params.yaml": "lr: 0.01\nmodel: {depth: 2}\n",
            "proj/dvclive/plots/metrics/train/loss.tsv": (
                "timestamp\tstep\tloss\n1\t0\t1.0\n2\t1\t0.5\n3\t2\t0.25\n"
            ),
            "proj/dvclive/plots/metrics/val/acc.tsv": (
                "step\tacc\n0\t0.5\n1\tbad\n2\t0.9\n3\t0.99\t7\n"
            ),
            "proj/dvclive/report.md": "# report\n",
        },
    )
    runs = runs_of(tmp_path)
    assert list(runs) == ["proj/dvclive"]
    spec = runs["proj/dvclive"]
    assert spec.framework == "dvclive" and spec.name == "proj"
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.01, "model.depth": 2}
    assert info.metrics["train/loss"].n == 3 and info.metrics["train/loss"].last == 0.25
    assert info.metrics["val/acc"].best == 0.9  # not the row of three cells
    assert any("malformed" in w for w in warnings_of(info))


DVCLIVE_YAML = """\
params:
- dvclive/params.yaml
metrics:
- dvclive/metrics.json
plots:
- dvclive/plots/metrics:
    x: step
"""
"""What DVCLive 3.49 wrote beside ``dvclive/`` (outside a DVC repo)."""


def test_dvclive_owns_its_project_folder(tmp_path: Path) -> None:
    """``exp_a/dvc.yaml`` (DVCLive's own) names ``dvclive/``: ``exp_a`` is the experiment,
    its ``model.pt`` the run's; not so in a repo root, a pipeline or beside another run."""
    for project in ("exp_a", "repo", "pipe", "shared"):
        write(
            tmp_path,
            {
                f"{project}/dvc.yaml": DVCLIVE_YAML,
                f"{project}/model.pt": b"",
                f"{project}/dvclive/metrics.json": '{"val_loss": 0.5, "step": 3}',
                f"{project}/dvclive/params.yaml": "lr: 0.01\n",
            },
        )
    (tmp_path / "repo/.git").mkdir()
    write(tmp_path, {"pipe/dvc.yaml": "stages:\n  train: {cmd: python t.py}\n" + DVCLIVE_YAML})
    write(tmp_path, {"shared/lightning_logs/version_0/metrics.csv": "step,loss\n0,1\n"})
    runs = runs_of(tmp_path)
    assert runs["exp_a/dvclive"].extra_paths == ("exp_a",)
    assert runs["exp_a/dvclive"].name == "exp_a"
    for project in ("repo", "pipe", "shared"):
        assert runs[f"{project}/dvclive"].extra_paths == (), project
    assert runs["shared/lightning_logs/version_0"].framework == "lightning"


def comet_zip(path: Path, *, broken_messages: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    messages = [
        {"type": "parameter_msg", "payload": {"param": {"paramName": "lr", "paramValue": 0.1}}},
        {"type": "log_other_msg", "payload": {"log_other": {"key": "Name", "val": "my-exp"}}},
    ] + [
        {
            "type": "metric_msg",
            "payload": {"metric": {"metricName": "loss", "metricValue": 1.0 / (i + 1), "step": i}},
        }
        for i in range(3)
    ]
    body = "\n".join(json.dumps(m) for m in messages) + ("\n{not json" if broken_messages else "")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "experiment.json",
            json.dumps(
                {
                    "offline_id": path.stem,
                    "project_name": "proj",
                    "workspace": "ws",
                    "start_time": 1700000000000,
                    "stop_time": 1700000050000,
                    "tags": [],
                }
            ),
        )
        archive.writestr("messages.json", body)


def test_comet_offline(tmp_path: Path) -> None:
    key = "0123456789abcdef0123456789abcdef"
    comet_zip(tmp_path / f".cometml-runs/{key}.zip", broken_messages=True)
    (tmp_path / ".cometml-runs/notes.zip").write_bytes(b"PK not really a zip")
    runs = runs_of(tmp_path)
    spec = runs[f".cometml-runs/{key}.zip"]
    assert spec.framework == "comet" and spec.run_key == key
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.1} and info.meta["name"] == "my-exp"
    assert info.meta["project"] == "proj" and info.status == "finished"
    assert info.metrics["loss"].last == pytest.approx(1 / 3) and info.started == 1700000000.0
    assert any("malformed" in w for w in warnings_of(info))
    bad = read_run(tmp_path, runs[".cometml-runs/notes.zip"])
    assert any("unreadable Comet archive" in w for w in warnings_of(bad))


def test_neptune_offline(tmp_path: Path) -> None:
    ops = [
        {"type": "AssignString", "path": ["sys", "name"], "value": "nep-run"},
        {"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1},
        {
            "type": "LogFloats",
            "path": ["train", "loss"],
            "values": [
                {"value": 1.0, "step": 0, "ts": 1700000000.0},
                {"value": 0.5, "step": 1, "ts": 1700000010.0},
            ],
        },
    ]
    lines = [json.dumps({"obj": op, "version": i + 1}) for i, op in enumerate(ops)]
    write(tmp_path, {".neptune/offline/run__8a3f/data-1.log": "\n".join(lines) + "\n{bad"})
    spec = only(tmp_path, "neptune")
    info = read_run(tmp_path, spec)
    assert info.meta["name"] == "nep-run" and info.params == {"parameters.lr": 0.1}
    assert info.metrics["train/loss"].last == 0.5 and info.ended == 1700000010.0
    assert info.meta["warnings"]


def test_tensorboard_inside_runs_is_not_a_run(tmp_path: Path) -> None:
    mlflow_file_store(tmp_path)
    exp = "mlruns/209177983133473214"
    write(
        tmp_path,
        {
            f"{exp}/{RUN_A}/artifacts/tb/events.out.tfevents.1.h": b"",
            "tb_logs/exp1/events.out.tfevents.2.h": b"\x00\x01garbage",
        },
    )
    runs = runs_of(tmp_path)
    assert runs["tb_logs/exp1"].framework == "tensorboard"
    assert f"{exp}/{RUN_A}/artifacts/tb" not in runs
    info = read_run(tmp_path, runs["tb_logs/exp1"])  # garbage events: no raise
    assert info.metrics == {}


# --- generic, hostile names -----------------------------------------------------------------------


def test_generic_first_level_and_config(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "resnet_a/model.pt": b"w",
            "resnet_a/config.yaml": "lr: 0.1\n",
            "resnet_a/metrics.json": '{"val_acc": 0.91}',
            "notes/readme.md": "no artifacts",
            ".cache/model.pt": b"w",
            "exps/b/weights.safetensors": b"w",
        },
    )
    wandb_run(tmp_path, "wb/wandb/run-20240102_030405-abc123")
    runs = runs_of(tmp_path)
    generic = {p for p, s in runs.items() if s.framework == "generic"}
    assert generic == {"resnet_a", "exps"}  # not notes (no artifact), .cache, wb (holds a run)
    info = read_run(tmp_path, runs["resnet_a"])
    assert info.params == {"lr": 0.1} and info.metrics["val_acc"].last == 0.91
    (tmp_path / ".artlens.toml").write_text('[runs]\nglobs = ["exps/*"]\n')
    assert {p for p, s in runs_of(tmp_path).items() if s.framework == "generic"} == {"exps/b"}
    (tmp_path / ".artlens.toml").write_text("[runs]\ndepth = 2\n")
    assert {p for p, s in runs_of(tmp_path).items() if s.framework == "generic"} == {"exps/b"}
    (tmp_path / ".artlens.toml").write_text("[runs\ndepth = \n")  # invalid: an error
    with pytest.raises(ArtlensError, match=r"\.artlens\.toml:1: "):
        runs_of(tmp_path)


def test_hostile_names_are_data(tmp_path: Path) -> None:
    mlflow_file_store(tmp_path)
    run = tmp_path / "mlruns/209177983133473214" / RUN_A
    for name in ("lr[0.1]", "[bold red]x[-]", "\x1b[2Jclear"):
        (run / "params" / name).write_text("\x1b]52;c;AAAA\x07")
    (run / "metrics/[").mkdir()
    (run / "metrics/[/evil]").write_text("1 0.5 0\n")
    weird = os.fsdecode(b"caf\xe9[\x1b]")
    write(tmp_path, {f"lightning_logs/version_{0}/metrics.csv": "step,loss\n0,1\n"})
    (tmp_path / "lightning_logs" / weird).mkdir()
    (tmp_path / "lightning_logs" / weird / "version_7").mkdir()
    (tmp_path / "lightning_logs" / weird / "version_7" / "metrics.csv").write_text("step,a\n0,1\n")
    runs = runs_of(tmp_path)
    info = read_run(tmp_path, runs[f"mlruns/209177983133473214/{RUN_A}"])
    assert info.params["lr[0.1]"] == "\x1b]52;c;AAAA\x07"  # kept as data, the UI escapes it
    assert "\x1b[2Jclear" in info.params and "[bold red]x[-]" in info.params
    assert info.metrics["[/evil]"].last == 0.5
    nested = runs[f"lightning_logs/{weird}/version_7"]
    assert nested.experiment == "caf\\xe9[\x1b]"
    json.dumps(info.params)
    assert read_run(tmp_path, nested).metrics["a"].last == 1.0


def test_unknown_framework_and_missing_folder_never_raise(tmp_path: Path) -> None:
    for framework in (
        "mlflow",
        "wandb",
        "lightning",
        "hf-trainer",
        "hydra",
        "dvclive",
        "tensorboard",
        "comet",
        "neptune",
        "generic",
        "nonsense",
    ):
        info = read_run(tmp_path, RunSpec("missing/dir", framework, "x", None, run_key="k"))
        assert info.status in {"running", "finished", "failed", "killed", "unknown"}
        assert read_metric_series(tmp_path, RunSpec("missing", framework, "x", None)) == {}


def test_root_itself_is_a_run(tmp_path: Path) -> None:
    root = tmp_path / "version_4"
    write(root, {"hparams.yaml": "lr: 1\n", "metrics.csv": "step,loss\n0,1\n"})
    runs = detect_runs(root, listing_of(root))
    assert [(s.path, s.framework, s.name) for s in runs] == [("", "lightning", "version_4")]
    assert read_run(root, runs[0]).params == {"lr": 1}


def test_mlflow_db_locked_by_writer_warns(tmp_path: Path) -> None:
    mlflow_db(tmp_path)
    spec = {s.run_key: s for s in runs_of(tmp_path).values()}["aaa1"]
    writer = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        info = read_run(tmp_path, spec)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert any("mlflow.db" in w for w in warnings_of(info))
    assert read_run(tmp_path, spec).params == {"lr": 0.001}  # fine once the writer is done


def test_mlflow_experiment_with_tags_is_not_a_run(tmp_path: Path) -> None:
    """MLflow keeps experiment tags in <exp>/tags/; the experiment must not own its runs."""
    exp = tmp_path / "mlruns" / "123"
    (exp / "tags").mkdir(parents=True)
    (exp / "tags" / "mlflow.note.content").write_text("notes")
    (exp / "meta.yaml").write_text("experiment_id: '123'\nname: exp\nlifecycle_stage: active\n")
    for run_id in ("aaa", "bbb"):
        run = exp / run_id
        (run / "metrics").mkdir(parents=True)
        (run / "tags").mkdir()
        (run / "meta.yaml").write_text(f"run_id: {run_id}\nrun_name: r-{run_id}\nstatus: 3\n")
        (run / "metrics" / "loss").write_text("1700000000000 0.5 1\n")
    from store.frameworks import DirListing, detect_runs

    listing = {}
    for folder, dirs, files in os.walk(tmp_path):
        rel = os.path.relpath(folder, tmp_path)
        listing["" if rel == "." else rel] = DirListing(frozenset(dirs), frozenset(files))
    specs = detect_runs(tmp_path, listing)
    assert sorted((s.path, s.name, s.experiment) for s in specs) == [
        ("mlruns/123/aaa", "r-aaa", "exp"),
        ("mlruns/123/bbb", "r-bbb", "exp"),
    ]


def test_mlflow_sqlite_logged_model_found_after_the_root_moved(tmp_path: Path) -> None:
    """mlflow.db stores absolute artifact URIs; a copied root must still link its models."""
    src = Path(__file__).parent / "fixtures" / "frameworks" / "mlflow-sqlite"
    if not src.exists():
        pytest.skip("real MLflow fixtures not present")
    import shutil

    moved = tmp_path / "elsewhere" / "mlflow-sqlite"
    shutil.copytree(src, moved, symlinks=True)
    from store.frameworks import DirListing, detect_runs

    listing = {}
    for folder, dirs, files in os.walk(moved):
        rel = os.path.relpath(folder, moved)
        listing["" if rel == "." else rel] = DirListing(frozenset(dirs), frozenset(files))
    specs = detect_runs(moved, listing)
    assert specs, "no runs found in the moved MLflow root"
    models = [p for s in specs for p in s.extra_paths if "/models/m-" in p]
    expected = json.loads((src.parent / "EXPECTED.json").read_text())
    wanted = [r["model_id"] for r in expected.get("mlflow_sqlite", []) if r.get("model_id")]
    assert wanted and all(any(p.endswith("/models/" + m) for p in models) for m in wanted)


def test_reads_follow_a_retargeted_root_and_never_leave_it(tmp_path: Path) -> None:
    """The root's real path is resolved once per root; a root symlink retargeted later is
    resolved again, and a symlinked folder inside the root still cannot lead out of it."""
    from store.frameworks import _io

    first, second, outside = tmp_path / "a", tmp_path / "b", tmp_path / "outside"
    for folder, text in ((first, "one"), (second, "two")):
        (folder / "run").mkdir(parents=True)
        (folder / "run" / "f.txt").write_text(text)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (second / "run" / "away").symlink_to(outside)
    (second / "run" / "inner").symlink_to(second / "run")
    root = tmp_path / "root"
    root.symlink_to(first)
    assert _io.read_text(root, "run/f.txt")[0] == "one"
    root.unlink()
    root.symlink_to(second)
    assert _io.read_text(root, "run/f.txt")[0] == "two"
    assert _io.read_text(root, "run/inner/f.txt")[0] == "two"
    assert _io.regular_file(root, "run/f.txt") == os.path.join(
        os.path.realpath(second), "run/f.txt"
    )
    with pytest.raises(_io.ReadError, match="out of the root"):
        _io.read_text(root, "run/away/secret.txt")
    with pytest.raises(_io.ReadError, match="out of the root"):
        _io.read_text(root, "run/../../outside/secret.txt")


DEEP = "[" * 100_000 + "]" * 100_000
"""Nested past the recursion limit of every Python: json and tomllib recurse once a level."""


def test_files_nested_too_deeply_are_malformed_files_the_index_still_builds(
    tmp_path: Path, isolated_cache: Path
) -> None:
    from click.testing import CliRunner

    from tui.cli import main

    root = tmp_path / "root"
    good = '{"iteration": 1, "total_loss": 0.5}\n'
    write(
        root,
        {
            "det/config.yaml": "SOLVER:\n  BASE_LR: 0.1\n",
            "det/metrics.json": good + DEEP + "\n" + good.replace("1", "2").replace("0.5", "0.4"),
            "det/model_final.pth": b"x",
            "plain/config.json": DEEP,
            "plain/model.safetensors": b"x",
        },
    )
    comet = root / ".cometml-runs" / f"{'a' * 32}.zip"
    comet.parent.mkdir()
    with zipfile.ZipFile(comet, "w") as archive:
        archive.writestr("experiment.json", DEEP)
        archive.writestr("messages.json", '{"x": 1}\n')
    runner = CliRunner()
    db = str(tmp_path / "index.db")
    indexed = runner.invoke(main, ["index", str(root), "--db", db], catch_exceptions=False)
    assert indexed.exit_code == 0, indexed.output
    listed = runner.invoke(main, ["runs", "--json", "--db", db], catch_exceptions=False)
    runs = {r["name"]: r for r in json.loads(listed.stdout)}
    det = runs["det"]
    assert det["params"] == {"SOLVER.BASE_LR": 0.1}
    assert det["metrics"]["total_loss"]["last"] == 0.4 and det["metrics"]["total_loss"]["n"] == 2
    assert det["warnings"] == ["det/metrics.json: 1 malformed line(s) skipped"]
    assert runs["plain"]["params"] == {}
    assert runs["plain"]["warnings"] == ["plain/config.json: invalid JSON (nested too deeply)"]
    (comet_run,) = [r for r in runs.values() if r["framework"] == "comet"]
    assert comet_run["metrics"] == {} and any(
        "experiment.json is not valid JSON" in w for w in comet_run["warnings"]
    )
    # the root's own config nested too deeply: its [runs] rules are unknown, so the scan
    # stops with one line naming the file (never the default rules), the index as it was
    (root / ".artlens.toml").write_text(f"a = {DEEP}\n")
    again = runner.invoke(main, ["index", str(root), "--db", db], catch_exceptions=False)
    assert again.exit_code == 2 and again.output.count("\n") == 1
    assert f"{root / '.artlens.toml'}: nested too deeply" in again.output
    listed = runner.invoke(main, ["runs", "--json", "--db", db], catch_exceptions=False)
    assert {r["name"] for r in json.loads(listed.stdout)} == set(runs)
