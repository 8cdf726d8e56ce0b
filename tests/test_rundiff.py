"""Run diffs and file versions from a real index of two Lightning-style runs."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from store.diff import RunDiff, diff_files
from store.index import query
from store.index.db import open_db
from store.lock import WriterLock
from store.rundiff import changed_metrics, diff_run_rows, run_diff_json, run_side, versions
from store.scan import Indexer

HPARAMS_A = "lr: 0.001\nbatch_size: 32\noptimizer:\n  name: adam\n  betas: [0.9, 0.999]\n"
HPARAMS_B = "lr: 0.002\nbatch_size: 32\noptimizer:\n  name: adam\n  betas: [0.9, 0.999]\n"
CONFIG_A = "model:\n  depth: 4\n  width: 64\nseed: 1\n"
CONFIG_B = "seed: 1\nmodel:\n  width: 64\n  depth: 4\n"  # reordered, same values
REQUIREMENTS = "torch==2.3.0\nnumpy==1.26.4\n"


def safetensors_bytes(tensors: dict[str, list[float]]) -> bytes:
    """A float32 safetensors file written by hand (header length, JSON, data)."""
    header: dict[str, object] = {}
    data = b""
    for name, values in tensors.items():
        payload = struct.pack(f"<{len(values)}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": [len(values)],
            "data_offsets": [len(data), len(data) + len(payload)],
        }
        data += payload
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def metrics_csv(val_loss_last: float) -> str:
    return (
        f"epoch,step,train_loss,val_loss\n0,10,0.9,\n0,10,,0.8\n1,20,0.5,\n1,20,,{val_loss_last}\n"
    )


@dataclass
class Pair:
    root: Path
    db_path: Path
    a: Path
    b: Path


def write_run(folder: Path, hparams: str, config: str, val_loss: float, w: list[float]) -> None:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "hparams.yaml").write_text(hparams)
    (folder / "config.yaml").write_text(config)
    (folder / "metrics.csv").write_text(metrics_csv(val_loss))
    (folder / "requirements.txt").write_text(REQUIREMENTS)
    (folder / "train.log").write_text("".join(f"step {i} ok\n" for i in range(200)))
    (folder / "checkpoints" / "last.safetensors").write_bytes(
        safetensors_bytes({"layer.weight": w, "layer.bias": [0.5, 0.25]})
    )


def age(root: Path, seconds: float = 600.0) -> None:
    """Make every file old enough to be hashed (fresh files stay 'pending')."""
    then = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*filenames, *dirnames]:
            os.utime(os.path.join(dirpath, name), (then, then), follow_symlinks=False)


def index(root: Path, db_path: Path, *, hash_files: bool = True) -> None:
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root)
            indexer.scan()
            if hash_files:
                indexer.hash_pending()
        finally:
            db.conn.close()


def make_pair(base: Path, *, hash_files: bool = True) -> Pair:
    """Two runs differing in one param (lr), one metric (val_loss) and one tensor."""
    root = base / "root"
    logs = root / "lightning_logs"
    a, b = logs / "version_0", logs / "version_1"
    write_run(a, HPARAMS_A, CONFIG_A, 0.4, [1.0, 2.0, 3.0, 4.0])
    write_run(b, HPARAMS_B, CONFIG_B, 0.35, [1.0, 2.0, 3.0, 4.5])
    age(root)
    db_path = base / "index.db"
    index(root, db_path, hash_files=hash_files)
    return Pair(root, db_path, a, b)


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return make_pair(tmp_path)


def runs_by_name(db_path: Path) -> dict[str, query.RunRow]:
    db = open_db(db_path, readonly=True)
    try:
        return {r.name: r for r in query.list_runs(db)}
    finally:
        db.conn.close()


def test_run_diff_names_exactly_what_changed(pair: Pair) -> None:
    runs = runs_by_name(pair.db_path)
    warnings: list[str] = []
    db = open_db(pair.db_path, readonly=True)
    try:
        result = diff_run_rows(db, runs["version_0"], runs["version_1"], warnings)
    finally:
        db.conn.close()
    assert [(c.path, c.old, c.new) for c in result.params] == [("lr", 0.001, 0.002)]
    assert changed_metrics(result) == ["val_loss"]
    val = next(m for m in result.metrics if m.name == "val_loss")
    assert val.delta == pytest.approx(-0.05) and val.better == "new"
    assert result.env == []
    art = result.artifacts
    assert sorted(c.path for c in art.changed) == [
        "checkpoints/last.safetensors",
        "hparams.yaml",
        "metrics.csv",
    ]
    assert (art.added, art.removed, art.moved, art.unverified) == ([], [], [], [])
    # The reordered config has equal values: unchanged, with a note saying why.
    assert "config.yaml" in art.unchanged
    assert any("config.yaml" in w and "key order" in w for w in warnings)
    assert not result.equal
    # The checkpoint diff names the one tensor that moved.
    tensors = diff_files(
        pair.a / "checkpoints/last.safetensors", pair.b / "checkpoints/last.safetensors"
    )
    assert tensors.kind == "tensors" and tensors.result is not None
    moved = [t.name for t in tensors.result.tensors if t.status != "unchanged"]  # type: ignore[union-attr]
    assert moved == ["layer.weight"]
    shape = run_diff_json(runs["version_0"], runs["version_1"], result, warnings)
    assert shape["kind"] == "runs" and shape["params"][0]["key"] == "lr"


def test_run_against_itself_is_equal(pair: Pair) -> None:
    runs = runs_by_name(pair.db_path)
    db = open_db(pair.db_path, readonly=True)
    try:
        result = diff_run_rows(db, runs["version_0"], runs["version_0"])
        side = run_side(db, runs["version_0"])
    finally:
        db.conn.close()
    assert result.equal
    assert side.env == {"torch": "2.3.0", "numpy": "1.26.4"}


def test_reordered_yaml_file_diff_is_equal(pair: Pair) -> None:
    result = diff_files(pair.a / "config.yaml", pair.b / "config.yaml")
    assert result.kind == "structured" and result.equal


def test_pending_hashes_are_never_equal_by_size(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, hash_files=False)
    runs = runs_by_name(pair.db_path)
    warnings: list[str] = []
    db = open_db(pair.db_path, readonly=True)
    try:
        # two runs' train.log: the same size, separate files (a run against itself holds
        # one file on both sides: unchanged, see below)
        result = diff_run_rows(db, runs["version_0"], runs["version_1"], warnings)
    finally:
        db.conn.close()
    assert not result.equal
    assert "train.log" in result.artifacts.unverified
    assert "train.log" not in result.artifacts.unchanged
    assert any("not hashed yet" in w for w in warnings)


def test_env_packages_from_requirements_and_conda(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    (pair.b / "requirements.txt").write_text("torch==2.4.0\nrich>=13\n")
    (pair.b / "environment.yml").write_text(
        "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy==2.0.0\n"
    )
    age(pair.root)
    index(pair.root, pair.db_path)
    runs = runs_by_name(pair.db_path)
    db = open_db(pair.db_path, readonly=True)
    try:
        result = diff_run_rows(db, runs["version_0"], runs["version_1"])
    finally:
        db.conn.close()
    env = {p.name: (p.kind, p.old, p.new) for p in result.env}
    assert env["torch"] == ("changed", "2.3.0", "2.4.0")
    assert env["rich"] == ("added", None, ">=13")
    assert env["python"] == ("added", None, "3.11")
    assert "numpy" in env  # requirements.txt (1.26.4) wins over environment.yml in b


def test_env_files_past_those_read_make_the_packages_unknown(tmp_path: Path) -> None:
    """A run with more environment files than a diff reads (the 20 shallowest): the
    packages of the rest went unread without a word, so a package pinned only there could
    differ while the diff said nothing of it."""
    pair = make_pair(tmp_path)
    for run, pin in ((pair.a, "1.0"), (pair.b, "2.0")):
        for i in range(21):
            deep = run / "deps" / f"d{i:02}" / "more"
            deep.mkdir(parents=True)
            (deep / "requirements.txt").write_text(f"extra{i}=={pin if i == 0 else '1.0'}\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    runs = runs_by_name(pair.db_path)
    db = open_db(pair.db_path, readonly=True)
    warnings: list[str] = []
    try:
        result = diff_run_rows(db, runs["version_0"], runs["version_1"], warnings)
    finally:
        db.conn.close()
    assert "extra0" not in {p.name for p in result.env}  # not read on either side
    assert any("env" in line for line in result.unknown), result.unknown
    assert any("22 environment files; the 20 shallowest read, 2 not" in w for w in warnings)
    assert not result.equal


def test_versions_across_runs_and_history(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    ckpt = pair.b / "checkpoints" / "last.safetensors"
    db = open_db(pair.db_path, readonly=True)
    try:
        found = versions(db, "checkpoints/last.safetensors")
    finally:
        db.conn.close()
    assert sorted(v.run_name for v in found) == ["version_0", "version_1"]
    old_hash = next(v.hash for v in found if v.run_name == "version_1")
    assert all(v.current and v.hash for v in found)
    assert found[0].metric is not None and found[0].metric[0] == "val_loss"
    # Overwrite in place: the earlier hash stays listed as history.
    ckpt.write_bytes(safetensors_bytes({"layer.weight": [9.0, 9.0, 9.0, 9.0]}))
    age(pair.root, 300)
    index(pair.root, pair.db_path)
    db = open_db(pair.db_path, readonly=True)
    try:
        found = versions(db, "checkpoints/last.safetensors")
        only_b = versions(db, b"checkpoints/last.safetensors", experiment="nope")
    finally:
        db.conn.close()
    assert only_b == []
    history = [v for v in found if not v.current]
    assert [v.hash for v in history] == [old_hash]
    current_b = next(v for v in found if v.current and v.run_name == "version_1")
    assert current_b.hash != old_hash
    assert found == sorted(found, key=lambda v: (v.mtime, v.run_id, v.current))
    db = open_db(pair.db_path, readonly=True)
    try:
        assert versions(db, "") == []
    finally:
        db.conn.close()


def diff_by_name(db_path: Path, a: str, b: str) -> tuple[RunDiff, list[str]]:
    runs = runs_by_name(db_path)
    warnings: list[str] = []
    db = open_db(db_path, readonly=True)
    try:
        return diff_run_rows(db, runs[a], runs[b], warnings), warnings
    finally:
        db.conn.close()


def test_every_changed_config_is_diffed_by_value(tmp_path: Path) -> None:
    """Configs the reader never took params from are still compared key by key."""
    pair = make_pair(tmp_path)
    (pair.a / "config.yaml").write_text(CONFIG_A)
    (pair.b / "config.yaml").write_text("model:\n  depth: 6\n  width: 64\nseed: 1\nnew: x\n")
    (pair.a / "train.args").write_text("--lr 0.1 --amp\n--epochs=10\n")
    (pair.b / "train.args").write_text("--lr 0.2 --epochs=10\n")
    (pair.a / "yolo.cfg").write_text("[net]\nbatch=64\n[conv]\nsize=3\n[conv]\nsize=3\n")
    (pair.b / "yolo.cfg").write_text("[net]\nbatch=64\n[conv]\nsize=3\n[conv]\nsize=1\n")
    (pair.a / "bad.json").write_text('{"a": 1}')
    (pair.b / "bad.json").write_text('{"a": ')
    age(pair.root)
    index(pair.root, pair.db_path)
    result, warnings = diff_by_name(pair.db_path, "version_0", "version_1")
    configs = {c.path: c for c in result.configs}
    assert set(configs) == {"hparams.yaml", "config.yaml", "train.args", "yolo.cfg", "bad.json"}
    assert [(c.path, c.kind, c.old, c.new) for c in configs["config.yaml"].changes] == [
        ("model.depth", "changed", 4, 6),
        ("new", "added", None, "x"),
    ]
    assert [(c.path, c.kind, c.old, c.new) for c in configs["train.args"].changes] == [
        ("lr", "changed", 0.1, 0.2),
        ("amp", "removed", True, None),
    ]
    assert [(c.path, c.old, c.new) for c in configs["yolo.cfg"].changes] == [("conv#2.size", 3, 1)]
    assert configs["bad.json"].error is not None and "invalid json" in configs["bad.json"].error
    assert configs["hparams.yaml"].changes[0].path == "lr"
    data = run_diff_json(*runs_pair(pair.db_path), result, warnings)
    shown = {c["path"]: c for c in data["configs"]}
    assert shown["train.args"]["changes"][0] == {
        "key": "lr",
        "change": "changed",
        "old": 0.1,
        "new": 0.2,
    }


def test_a_config_whose_change_is_past_the_walk_is_not_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config holding more values than the walk compares (its bound lowered here) is
    listed with an error, never counted unchanged with 'same values'."""
    from store.diff import structured

    monkeypatch.setattr(structured, "MAX_VISITS", 100)
    pair = make_pair(tmp_path)
    row = "[" + ",".join(["0.5"] * 300) + "]"
    for folder, last in ((pair.a, 1), (pair.b, 2)):
        (folder / "extra.yaml").write_text(f"x: {row}\nlast: {last}\n")
        (folder / "more.yaml").write_text(f"epochs: {10 if folder == pair.a else 10.0}\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    result, warnings = diff_by_name(pair.db_path, "version_0", "version_1")
    configs = {c.path: c for c in result.configs}
    assert configs["extra.yaml"].error is not None
    assert "not compared whole" in configs["extra.yaml"].error
    assert [(c.path, c.kind) for c in configs["more.yaml"].changes] == [("epochs", "type_changed")]
    assert not any(w.startswith(("extra.yaml", "more.yaml")) for w in warnings)
    assert {"extra.yaml", "more.yaml"} <= {c.path for c in result.artifacts.changed}
    assert not result.equal


def runs_pair(db_path: Path) -> tuple[query.RunRow, query.RunRow]:
    runs = runs_by_name(db_path)
    return runs["version_0"], runs["version_1"]


REAL_LIGHTNING = Path(__file__).parent / "fixtures" / "frameworks" / "lightning" / "lightning_logs"


@pytest.mark.skipif(not REAL_LIGHTNING.exists(), reason="real fixtures not generated")
def test_real_lightning_runs_copied_under_custom_folders(tmp_path: Path) -> None:
    """The held-out case: a real run copied twice under custom names, lr and the last
    val_loss edited in the copy: the diff names exactly those (and the config file)."""
    import shutil

    root = tmp_path / "root"
    a, b = root / "my-experiment" / "baseline", root / "my-experiment" / "lr-0.2"
    shutil.copytree(REAL_LIGHTNING / "version_0", a)
    shutil.copytree(REAL_LIGHTNING / "version_0", b)
    hparams = (b / "hparams.yaml").read_text()
    (b / "hparams.yaml").write_text(hparams.replace("lr: 0.1\n", "lr: 0.2\n"))
    csv_text = (b / "metrics.csv").read_text()
    assert csv_text.count("0.05919954180717468") == 1
    (b / "metrics.csv").write_text(csv_text.replace("0.05919954180717468", "0.0612"))
    age(root)
    index(root, tmp_path / "index.db")
    runs = runs_by_name(tmp_path / "index.db")
    assert {(r.framework, r.experiment) for r in runs.values()} == {("lightning", "my-experiment")}
    result, _ = diff_by_name(tmp_path / "index.db", "baseline", "lr-0.2")
    assert [(c.path, c.kind, c.old, c.new) for c in result.params] == [("lr", "changed", 0.1, 0.2)]
    assert changed_metrics(result) == ["val_loss"]
    val = next(m for m in result.metrics if m.name == "val_loss")
    assert val.old == pytest.approx(0.05919954180717468) and val.new == 0.0612
    assert [c.path for c in result.configs] == ["hparams.yaml"]
    assert sorted(c.path for c in result.artifacts.changed) == ["hparams.yaml", "metrics.csv"]


REAL_HF = Path(__file__).parent / "fixtures" / "frameworks" / "hf-trainer" / "out"


def set_learning_rate(path: Path, old: float, new: float) -> None:
    """Rewrite a pickled TrainingArguments with another learning rate (one BINFLOAT)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                assert data.count(struct.pack(">d", old)) == 1
                data = data.replace(struct.pack(">d", old), struct.pack(">d", new))
            archive.writestr(info, data)


@pytest.mark.skipif(not REAL_HF.exists(), reason="real fixtures not generated")
def test_real_hf_output_dirs_under_other_names_show_the_edited_lr(tmp_path: Path) -> None:
    """The held-out case for the Trainer: an output dir copied under other names, one run
    with another learning rate (in its pickled TrainingArguments, read without loading)."""
    import shutil

    root = tmp_path / "root"
    a, b = root / "bert-sst2" / "lr1e-3", root / "bert-sst2" / "lr2e-3"
    shutil.copytree(REAL_HF, a)
    shutil.copytree(REAL_HF, b)
    set_learning_rate(b / "training_args.bin", 0.001, 0.002)
    age(root)
    index(root, tmp_path / "index.db")
    runs = runs_by_name(tmp_path / "index.db")
    assert {(r.name, r.framework, r.experiment) for r in runs.values()} == {
        ("lr1e-3", "hf-trainer", "bert-sst2"),
        ("lr2e-3", "hf-trainer", "bert-sst2"),
    }
    assert runs["lr1e-3"].params["args.learning_rate"] == 0.001
    result, _ = diff_by_name(tmp_path / "index.db", "lr1e-3", "lr2e-3")
    assert [(c.path, c.old, c.new) for c in result.params] == [("args.learning_rate", 0.001, 0.002)]
    assert changed_metrics(result) == []
    assert [c.path for c in result.artifacts.changed] == ["training_args.bin"]


REAL_MMENGINE = Path(__file__).parent / "fixtures" / "frameworks" / "mmengine" / "work_dirs"


@pytest.mark.skipif(not REAL_MMENGINE.exists(), reason="real fixtures not generated")
def test_python_configs_are_diffed_by_value_never_run(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "root"
    a, b = root / "work_dirs" / "tiny_sgd", root / "work_dirs" / "tiny_sgd_lr02"
    shutil.copytree(REAL_MMENGINE / "tiny_sgd", a)
    shutil.copytree(REAL_MMENGINE / "tiny_sgd", b)
    (b / "tiny_sgd.py").rename(b / "tiny_sgd_lr02.py")  # the runner names it after the config
    for config in (b / "tiny_sgd_lr02.py", *b.glob("*/vis_data/config.py")):
        text = config.read_text()
        assert text.count("lr=0.01") == 1
        config.write_text(text.replace("lr=0.01", "lr=0.02"))
    age(root)
    index(root, tmp_path / "index.db")
    result, _ = diff_by_name(tmp_path / "index.db", "tiny_sgd", "tiny_sgd_lr02")
    assert [(c.path, c.old, c.new) for c in result.params] == [
        ("optim_wrapper.optimizer.lr", 0.01, 0.02)
    ]
    configs = {c.path: c for c in result.configs}
    (vis_config,) = [p for p in configs if p.endswith("vis_data/config.py")]
    assert [(c.path, c.old, c.new) for c in configs[vis_config].changes] == [
        ("optim_wrapper.optimizer.lr", 0.01, 0.02)
    ]


# --- an index behind the disk ------------------------------------------------------------


def test_params_and_metrics_are_read_again_when_their_files_changed(pair: Pair) -> None:
    """b's hparams and metrics edited back to a's after indexing: no param or metric
    differs as the files are now, and the diff lists the files it found stale."""
    (pair.b / "hparams.yaml").write_text(HPARAMS_A)
    (pair.b / "metrics.csv").write_text(metrics_csv(0.4))
    result, warnings = diff_by_name(pair.db_path, "version_0", "version_1")
    assert result.params == [] and result.configs == []
    assert changed_metrics(result) == []
    assert sorted((s.side, s.path, s.change, s.hashed) for s in result.stale) == [
        ("b", "hparams.yaml", "modified", True),
        ("b", "metrics.csv", "modified", True),
    ]
    assert [c.path for c in result.artifacts.changed] == ["checkpoints/last.safetensors"]
    assert warnings[0].startswith("the index is stale for version_1 (#")
    assert "version_1: params and metrics read again from its files" in warnings


def test_a_folder_swapped_for_a_symlink_is_not_followed(pair: Pair, tmp_path: Path) -> None:
    """The scan never follows a symlink: a run folder replaced by one holds no files now."""
    elsewhere = tmp_path / "elsewhere"
    (pair.b / "checkpoints").rename(elsewhere)
    (pair.b / "checkpoints").symlink_to(elsewhere)
    result, _ = diff_by_name(pair.db_path, "version_0", "version_1")
    assert sorted((s.path, s.change) for s in result.stale) == [
        ("checkpoints", "new"),
        ("checkpoints/last.safetensors", "vanished"),
    ]
    assert [c.path for c in result.artifacts.removed] == ["checkpoints/last.safetensors"]
    assert not result.equal


def test_a_tampered_run_path_is_never_listed_outside_the_root(pair: Pair, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    conn = sqlite3.connect(pair.db_path)
    conn.execute("UPDATE runs SET path = ? WHERE name = 'version_1'", [b"../outside"])
    conn.commit()
    conn.close()
    result, _ = diff_by_name(pair.db_path, "version_0", "version_1")
    assert result.stale == []
    assert not any("secret" in c.path for c in result.artifacts.added)


def test_mlflow_params_read_again_when_the_database_changed(tmp_path: Path) -> None:
    """An MLflow run of the SQLite backend takes its params from mlflow.db, outside its
    folder: a param logged since indexing is compared, and the database named stale."""
    from tests.test_frameworks import mlflow_db

    root = tmp_path / "root"
    mlflow_db(root)
    age(root)
    db_path = tmp_path / "index.db"
    index(root, db_path)
    before, _ = diff_by_name(db_path, "first", "second")
    assert [(c.path, c.kind) for c in before.params] == [("lr", "removed")]
    conn = sqlite3.connect(root / "mlflow.db")
    conn.execute("INSERT INTO params VALUES ('lr', '0.001', 'bbb2')")
    conn.commit()
    conn.close()
    result, warnings = diff_by_name(db_path, "first", "second")
    assert result.params == []
    assert sorted((s.side, s.path, s.change) for s in result.stale) == [
        ("a", "mlflow.db", "modified"),
        ("b", "mlflow.db", "modified"),
    ]
    assert warnings[0].startswith("the index is stale for first (#")


MLFLOW_EXP = "mlruns/825911118266908910"
MLMODEL = (
    "artifact_path: {uri}\nflavors:\n  pytorch:\n    pytorch_version: {torch}\nmodel_id: {mid}\n"
)
CONDA = "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip:\n  - torch==2.13.0\n"


def write_mlflow3_run(
    root: Path,
    run_id: str,
    name: str,
    lr: str,
    models: list[tuple[str, object, dict[str, bytes]]],
) -> None:
    """An MLflow 3 file-store run as MLflow 3.17 writes it: its logged models live in
    ``<exp>/models/m-<id>/`` (``artifacts/`` plus a meta.yaml naming them), outside the run
    folder, which holds ``outputs/m-<id>/meta.yaml``.  ``models``: (id, name, artifacts)."""
    exp = root / MLFLOW_EXP
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "meta.yaml").write_text(f"experiment_id: '{exp.name}'\nname: demo\n")
    run = exp / run_id
    for folder in ("params", "metrics", "tags", "artifacts"):
        (run / folder).mkdir(parents=True)
    (run / "meta.yaml").write_text(
        f"run_id: {run_id}\nrun_name: {name}\nexperiment_id: '{exp.name}'\nstatus: 3\n"
    )
    (run / "params" / "lr").write_text(lr)
    (run / "metrics" / "train_loss").write_text("1796623127000 0.5 0\n")
    (run / "tags" / "mlflow.runName").write_text(name)
    for created, (model_id, model_name, files) in enumerate(models):
        model = exp / "models" / model_id
        (model / "params").mkdir(parents=True)
        (model / "params" / "lr").write_text(lr)
        meta = f"model_id: {model_id}\nsource_run_id: {run_id}\ncreation_timestamp: {created}\n"
        if model_name is not None:
            meta += f"name: {json.dumps(model_name)}\n"
        (model / "meta.yaml").write_text(meta)
        for rel, data in files.items():
            (model / "artifacts" / rel).parent.mkdir(parents=True, exist_ok=True)
            (model / "artifacts" / rel).write_bytes(data)
        (run / "outputs" / model_id).mkdir(parents=True)
        (run / "outputs" / model_id / "meta.yaml").write_text(
            f"destination_id: {model_id}\nsource_type: RUN_OUTPUT\n"
        )


def model_files(model_id: str, torch: str, weights: str, data: bytes) -> dict[str, bytes]:
    uri = f"file:///x/{MLFLOW_EXP}/models/{model_id}/artifacts"
    return {
        "MLmodel": MLMODEL.format(uri=uri, torch=torch, mid=model_id).encode(),
        "conda.yaml": CONDA.encode(),
        "requirements.txt": b"torch==2.13.0\n",
        f"data/{weights}": data,
    }


def mlflow3_pair(base: Path) -> Path:
    """Two runs of one experiment, each with a logged model named ``model``: the first
    saved ``data/model.pth``, the second ``data/model.pt2``; the rest the same."""
    root = base / "root"
    first, second = "m-19bf1b233c964c13973e55b7089fb717", "m-fc39934525cc45d182b31710e81e3a5f"
    write_mlflow3_run(
        root, "1c31eb911b394cc5968ca62752220d0d", "lr-high", "0.1",
        [(first, "model", model_files(first, "2.12.0", "model.pth", b"\x80\x02weights-a"))],
    )  # fmt: skip
    write_mlflow3_run(
        root, "67f447cb6134424ab0d5b5aa4839688d", "lr-low", "0.01",
        [(second, "model", model_files(second, "2.13.0", "model.pt2", b"PK\x03\x04weights-b"))],
    )  # fmt: skip
    age(root)
    index(root, base / "index.db")
    return base / "index.db"


def artifact_paths(result: RunDiff) -> dict[str, list[str]]:
    found = result.artifacts
    return {
        "added": [c.path for c in found.added],
        "removed": [c.path for c in found.removed],
        "changed": [c.path for c in found.changed],
        "moved": [m.old_path for m in found.moved],
    }


def test_mlflow3_logged_models_pair_by_their_logged_name(tmp_path: Path) -> None:
    """Two runs' logged models (folders with random ids outside the run folders) are
    compared file by file under ``models/<name>/<path inside artifacts>``: the MLmodel
    changed, the weights renamed, the rest unchanged, every path on one base."""
    db_path = mlflow3_pair(tmp_path)
    result, warnings = diff_by_name(db_path, "lr-high", "lr-low")
    found = artifact_paths(result)
    assert found["moved"] == []
    assert found["added"] == [
        "models/model/data/model.pt2",
        "outputs/m-fc39934525cc45d182b31710e81e3a5f/meta.yaml",
    ]
    assert found["removed"] == [
        "models/model/data/model.pth",
        "outputs/m-19bf1b233c964c13973e55b7089fb717/meta.yaml",
    ]
    assert found["changed"] == [
        "meta.yaml",
        "models/model/MLmodel",
        "models/model/meta.yaml",
        "models/model/params/lr",
        "params/lr",
        "tags/mlflow.runName",
    ]
    assert sorted(result.artifacts.unchanged) == [
        "metrics/train_loss",
        "models/model/conda.yaml",
        "models/model/requirements.txt",
    ]
    # The model's meta.yaml is compared by value, read from each model's own folder.
    config = next(c for c in result.configs if c.path == "models/model/meta.yaml")
    assert config.error is None
    assert {c.path for c in config.changes} == {"model_id", "source_run_id"}
    assert result.sources[0]["models/model/MLmodel"] == (
        f"{MLFLOW_EXP}/models/m-19bf1b233c964c13973e55b7089fb717/artifacts/MLmodel"
    )
    assert not any("mlruns" in line for line in warnings), warnings


def test_mlflow3_models_with_one_name_are_kept_apart_and_said(tmp_path: Path) -> None:
    """Two logged models of one run with the same name are numbered in the order they were
    created (``model``, ``model~2``), with a note; a model whose meta.yaml names it with a
    path is named by its folder instead, and says so."""
    root = tmp_path / "root"
    first, second, third = "m-0001", "m-0002", "m-0003"
    for run_id, run_name in (("aaa1", "one"), ("bbb2", "two")):
        write_mlflow3_run(
            root, run_id, run_name, "0.1",
            [
                (f"{first}{run_id}", "model", {"MLmodel": b"first\n"}),
                (f"{second}{run_id}", "model", {"MLmodel": b"second\n"}),
                (f"{third}{run_id}", "../../evil", {"MLmodel": b"third\n"}),
            ],
        )  # fmt: skip
    age(root)
    index(root, tmp_path / "index.db")
    result, warnings = diff_by_name(tmp_path / "index.db", "one", "two")
    unchanged = set(result.artifacts.unchanged)
    assert {"models/model/MLmodel", "models/model~2/MLmodel"} <= unchanged
    moved = [(m.old_path, m.new_path) for m in result.artifacts.moved]
    assert ("models/m-0003aaa1/MLmodel", "models/m-0003bbb2/MLmodel") in moved, moved
    assert not any("evil" in path for pair in moved for path in pair)
    assert any("more than one logged model named 'model'" in w for w in warnings), warnings
    assert any("no usable name; compared as models/m-0003aaa1" in w for w in warnings), warnings


def test_mlflow3_logged_model_checkpoints_are_compared_from_their_folders(
    tmp_path: Path,
) -> None:
    """A changed checkpoint of two logged models gets its tensor summary, read from each
    model's own folder (not from a path under the run folder)."""
    root = tmp_path / "root"
    for run_id, name, bias in (("aaa1", "one", 0.5), ("bbb2", "two", 0.75)):
        weights = safetensors_bytes({"w": [1.0, 2.0], "b": [bias]})
        write_mlflow3_run(
            root, run_id, name, "0.1",
            [(f"m-00{run_id}", "net", {"data/model.safetensors": weights})],
        )  # fmt: skip
    age(root)
    index(root, tmp_path / "index.db")
    result, _ = diff_by_name(tmp_path / "index.db", "one", "two")
    change = next(
        c for c in result.artifacts.changed if c.path == "models/net/data/model.safetensors"
    )
    assert change.tensors is not None and change.tensors.skipped is None
    assert (change.tensors.changed, change.tensors.total, change.tensors.largest) == (1, 2, "b")


def test_what_a_side_could_not_read_is_unknown_not_removed(tmp_path: Path) -> None:
    """B's hparams.yaml does not parse, its metrics.csv is ragged and its requirements file
    is cut: A's params, metrics and packages were listed as 'removed' beside a warning.
    Now what only A holds there is left out and said once, and the runs are not equal; a
    part both sides read whole is compared as ever."""
    pair = make_pair(tmp_path)
    (pair.b / "hparams.yaml").write_text("lr: [0.001\n")
    (pair.b / "metrics.csv").write_text("epoch,step,val_loss\n0,10,0.5,extra\n")
    (pair.b / "environment.yml").write_text("dependencies: [python=3.11\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    result, warnings = diff_by_name(pair.db_path, "version_0", "version_1")
    assert not [c for c in result.params if c.kind == "removed"], result.params
    assert not [m for m in result.metrics if m.new is None and m.old is not None]
    assert not [p for p in result.env if p.kind == "removed"], result.env
    assert any(u.startswith("params of B could not all be read; ") for u in result.unknown)
    assert any(u.startswith("metrics of B could not all be read") for u in result.unknown)
    assert any(u.startswith("env of B could not all be read") for u in result.unknown)
    assert set(result.unknown) <= set(warnings) and not result.equal
    same, _ = diff_by_name(pair.db_path, "version_0", "version_0")
    assert same.unknown == [] and same.equal


def test_a_file_without_a_hash_that_is_one_file_on_both_sides_is_unchanged(
    tmp_path: Path,
) -> None:
    """Unhashed files compare by size and are never called unchanged, unless both sides
    are the one file: a run against itself said 'runs differ' (its note twice), and a
    checkpoint hard-linked into two runs was 'unverified'; a same-size copy still is."""
    pair = make_pair(tmp_path, hash_files=False)
    (pair.a / "shared.bin").write_bytes(b"w" * 64)
    os.link(pair.a / "shared.bin", pair.b / "shared.bin")
    (pair.a / "copy.bin").write_bytes(b"c" * 64)
    (pair.b / "copy.bin").write_bytes(b"d" * 64)
    age(pair.root)
    index(pair.root, pair.db_path, hash_files=False)
    itself, warnings = diff_by_name(pair.db_path, "version_0", "version_0")
    assert itself.equal and itself.artifacts.unverified == []
    assert len(warnings) == len(set(warnings)), warnings
    result, _ = diff_by_name(pair.db_path, "version_0", "version_1")
    assert "shared.bin" in result.artifacts.unchanged
    assert "copy.bin" in result.artifacts.unverified and not result.equal
