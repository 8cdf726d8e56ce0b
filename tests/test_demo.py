"""The demo tree is faithful to the tools' layouts, valid where it should be, broken where meant."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pickletools
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from store.demo import DANGEROUS_COMMAND, DemoError, DemoInfo, simulate_training, write_demo
from store.frameworks.tfevents import read_scalars

NOW = 1_780_000_000.0
"""A fixed clock, as screenshots use."""

SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoInfo:
    return write_demo(tmp_path_factory.mktemp("demo") / "tree", now=NOW, seed=0)


def _walk(root: Path) -> Iterator[bytes]:
    """Every entry under ``root`` as bytes, without following symlinks."""
    for folder, dirs, files in os.walk(os.fsencode(root)):
        dirs.sort()
        for name in sorted(dirs + files):
            yield os.path.join(folder, name)


def _regular_files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())


def _crc32c_bitwise(data: bytes) -> int:
    """CRC32C computed bit by bit, independently of the table the demo uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _tfrecords(path: Path) -> list[bytes]:
    data = path.read_bytes()
    records, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        assert header_crc == _masked(header), f"length CRC in {path.name}"
        assert payload_crc == _masked(payload), f"data CRC in {path.name}"
        records.append(payload)
        offset += 16 + length
    return records


def _safetensors_consistent(path: Path) -> bool:
    data = path.read_bytes()
    header_len: int = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_len])
    spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
    expected: int = 0
    for start, end in spans:
        if start != expected:
            return False
        expected = end
    for name, entry in header.items():
        if name != "__metadata__":
            count = 1
            for dim in entry["shape"]:
                count *= dim
            assert entry["data_offsets"][1] - entry["data_offsets"][0] == 4 * count, name
    return len(data) == 8 + header_len + expected


def _globals(pickled: bytes) -> set[tuple[str, str]]:
    found = set()
    for opcode, arg, _pos in pickletools.genops(pickled):
        if opcode.name == "GLOBAL":
            module, name = str(arg).split(" ", 1)
            found.add((module, name))
    return found


def test_mlflow_file_store_layout(demo: DemoInfo) -> None:
    mlruns = demo.dest / "mlruns"
    assert yaml.safe_load((mlruns / "0/meta.yaml").read_text())["name"] == "Default"
    named = [p.parent for p in mlruns.glob("*/meta.yaml") if p.parent.name != "0"]
    assert len(named) == 1
    experiment = named[0]
    runs = [p.parent for p in experiment.glob("*/meta.yaml")]
    assert len(runs) == 3
    statuses = set()
    for run in runs:
        meta = yaml.safe_load((run / "meta.yaml").read_text())
        assert meta["run_id"] == run.name and meta["experiment_id"] == experiment.name
        statuses.add(meta["status"])
        assert (run / "tags/mlflow.runName").read_text() == meta["run_name"]
        assert re.fullmatch(r"[0-9a-f]{40}", (run / "tags/mlflow.source.git.commit").read_text())
        for line in (run / "metrics/val_loss").read_text().splitlines():
            timestamp, value, step = line.split(" ")
            assert int(timestamp) <= NOW * 1000 and float(value) > 0 and int(step) >= 0
        assert (run / "params/lr").read_text()
    assert statuses == {3, 4}  # FINISHED and FAILED, as the file store's integers
    assert any((run / "artifacts/model/MLmodel").is_file() for run in runs)
    [model] = list((experiment / "models").iterdir())
    assert model.name.startswith("m-")
    model_meta = yaml.safe_load((model / "meta.yaml").read_text())
    assert (experiment / model_meta["source_run_id"]).is_dir()
    assert yaml.safe_load((model / "artifacts/MLmodel").read_text())["model_id"] == model.name
    assert zipfile.is_zipfile(model / "artifacts/data/model.pth")


def test_wandb_run_folders(demo: DemoInfo) -> None:
    wandb = demo.dest / "wandb"
    online = sorted(wandb.glob("run-*"))
    offline = sorted(wandb.glob("offline-run-*"))
    assert len(online) == 3 and len(offline) == 1
    for run in online + offline:
        assert re.fullmatch(r"(offline-)?run-\d{8}_\d{6}-[a-z0-9]{8}", run.name)
        run_id = run.name.rsplit("-", 1)[1]
        assert (run / f"run-{run_id}.wandb").read_bytes().startswith(b":W&B")
        config = yaml.safe_load((run / "files/config.yaml").read_text())
        assert config["wandb_version"] == 1
        assert config["lr"]["desc"] is None and config["lr"]["value"] > 0
        assert "cli_version" in config["_wandb"]["value"]
        metadata = json.loads((run / "files/wandb-metadata.json").read_text())
        assert re.fullmatch(r"[0-9a-f]{40}", metadata["git"]["commit"])
        assert metadata["host"] and metadata["startedAt"]
        assert (run / "files/output.log").is_file() and (run / "logs/debug.log").is_file()
    latest = wandb / "latest-run"
    assert latest.is_symlink() and latest.resolve() == offline[0].resolve()
    assert not (offline[0] / "files/requirements.txt").exists()
    assert demo.hazards["missing_requirements"] == offline[0]
    summaries = [run / "files/wandb-summary.json" for run in online + offline]
    broken = []
    for path in summaries:
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError:
            broken.append(path)
    assert broken == [demo.hazards["truncated_json"]]


def test_lightning_versions(demo: DemoInfo) -> None:
    logs = demo.dest / "lightning_logs"
    assert sorted(p.name for p in logs.iterdir()) == ["version_0", "version_1", "version_2"]
    for version in logs.iterdir():
        hparams = (version / "hparams.yaml").read_text()
        assert "betas: !!python/tuple" in hparams
        with open(version / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["epoch", "step", "train_loss", "val_acc", "val_loss"]
        assert any(row["val_loss"] == "" for row in rows) and any(row["val_loss"] for row in rows)
        saved = [p.name for p in (version / "checkpoints").iterdir()]
        assert len([n for n in saved if re.fullmatch(r"epoch=\d+-step=\d+\.ckpt", n)]) == 2
        assert "last.ckpt" in saved
    dangling = logs / "version_1/checkpoints/last.ckpt"
    assert dangling.is_symlink() and not dangling.exists()
    assert demo.hazards["dangling_symlink"] == dangling
    assert len(list(logs.glob("*/events.out.tfevents.*"))) == 1


def test_lightning_keeps_the_best_checkpoints_by_val_loss(demo: DemoInfo) -> None:
    version = demo.dest / "lightning_logs/version_0"
    with open(version / "metrics.csv", newline="") as handle:
        val = {
            int(r["epoch"]): float(r["val_loss"]) for r in csv.DictReader(handle) if r["val_loss"]
        }
    best = sorted(val, key=val.__getitem__)[:2]
    kept = sorted(
        int(m.group(1))
        for p in (version / "checkpoints").iterdir()
        if (m := re.fullmatch(r"epoch=(\d+)-step=\d+\.ckpt", p.name))
    )
    assert kept == sorted(best)


def test_hf_trainer_output(demo: DemoInfo) -> None:
    out = demo.dest / "hf/bert-tiny-sst2"
    for step in (500, 1000, 1500):
        ckpt = out / f"checkpoint-{step}"
        names = {p.name for p in ckpt.iterdir()}
        assert {"config.json", "model.safetensors", "trainer_state.json"} <= names
        assert {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"} <= names
        state = json.loads((ckpt / "trainer_state.json").read_text())
        assert state["global_step"] == step
        assert any("eval_loss" in entry for entry in state["log_history"])
        assert (demo.dest / state["best_model_checkpoint"]).is_dir()
    final = json.loads((out / "trainer_state.json").read_text())
    evals = [e for e in final["log_history"] if "eval_accuracy" in e]
    best = max(evals, key=lambda e: e["eval_accuracy"])
    assert final["best_metric"] == best["eval_accuracy"]
    assert final["best_model_checkpoint"].endswith(f"checkpoint-{best['step']}")
    for name in ("all_results.json", "eval_results.json", "train_results.json", "config.json"):
        json.loads((out / name).read_text())
    [events] = list(out.glob("runs/*/events.out.tfevents.*.0"))
    assert re.fullmatch(r"[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_.+", events.parent.name)


def test_hydra_dvclive_tensorboard_and_plain(demo: DemoInfo) -> None:
    runs = sorted(demo.dest.glob("outputs/*/*"))
    assert len(runs) == 2
    assert all(
        re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}", f"{p.parent.name}/{p.name}")
        for p in runs
    )
    jobs = sorted(demo.dest.glob("multirun/*/*/[0-9]"))
    assert [p.name for p in jobs] == ["0", "1"]
    for run in runs + jobs:
        for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
            assert yaml.safe_load((run / ".hydra" / name).read_text()) is not None
        assert (run / "main.log").is_file()
    hydra = yaml.safe_load((jobs[1] / ".hydra/hydra.yaml").read_text())["hydra"]
    assert hydra["mode"] == "MULTIRUN" and hydra["job"]["num"] == 1
    dvclive = demo.dest / "exp-dvc/dvclive"
    assert json.loads((dvclive / "metrics.json").read_text())["step"] >= 0
    with open(dvclive / "plots/metrics/train/loss.tsv", newline="") as handle:
        assert next(csv.reader(handle, delimiter="\t")) == ["timestamp", "step", "loss"]
    assert len(list((demo.dest / "tb_runs/resnet-baseline").glob("events.out.tfevents.*"))) == 1
    plain = demo.dest / "experiments/quick-test"
    png = (plain / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    assert (plain / "data/train.parquet").read_bytes()[:4] == b"PAR1"
    assert json.loads((plain / "metrics.json").read_text())["accuracy"] > 0
    assert _globals((plain / "model.pkl").read_bytes()) == set()


def test_every_event_file_is_valid_tfrecord(demo: DemoInfo) -> None:
    files = _regular_files(demo.dest, "**/events.out.tfevents.*")
    assert len(files) == 3
    for path in files:
        records = _tfrecords(path)
        assert b"brain.Event:2" in records[0]
        assert len(records) > 10
        # A scalar value is field 2 of Summary.Value: tag 0x15 then a little-endian float.
        assert all(b"\x15" in record for record in records[1:])


def test_event_files_read_back_through_the_project_reader(demo: DemoInfo) -> None:
    """The demo writes CRCs with the reader's helper; an independent check is above."""
    hf_events = _regular_files(demo.dest, "hf/bert-tiny-sst2/runs/*/events.out.tfevents.*")
    scalars = read_scalars(hf_events[0])
    assert scalars.warnings == []
    evals = json.loads((demo.dest / "hf/bert-tiny-sst2/trainer_state.json").read_text())
    expected = [
        (e["step"], e["eval_accuracy"]) for e in evals["log_history"] if "eval_accuracy" in e
    ]
    got = [(step, round(value, 4)) for step, _wall, value in scalars["eval/accuracy"]]
    assert got == expected


def test_safetensors_headers_match_their_data(demo: DemoInfo) -> None:
    files = _regular_files(demo.dest, "**/*.safetensors")
    assert len(files) == 5
    inconsistent = [path for path in files if not _safetensors_consistent(path)]
    assert inconsistent == [demo.hazards["truncated_safetensors"]]


def test_torch_zip_checkpoints_open_and_reference_their_storages(demo: DemoInfo) -> None:
    patterns = ("**/*.ckpt", "**/*.pt", "**/*.pth", "**/*.bin")
    files = sorted({p for pattern in patterns for p in _regular_files(demo.dest, pattern)})
    assert len(files) >= 20
    for path in files:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            assert {"archive/data.pkl", "archive/version", "archive/byteorder"} <= names
            pickled = archive.read("archive/data.pkl")
            storages = [n for n in names if n.startswith("archive/data/")]
            persistent = [
                op for op, _a, _p in pickletools.genops(pickled) if op.name == "BINPERSID"
            ]
            assert len(persistent) == len(storages), path
            for info in archive.infolist():
                if info.filename.startswith("archive/data/"):
                    assert (
                        info.header_offset + 30 + len(info.filename) + len(info.extra)
                    ) % 64 == 0
        found = _globals(pickled)
        if path.name == "training_args.bin":
            assert found == {("transformers.training_args", "TrainingArguments")}
        else:
            assert found <= SAFE_GLOBALS, (path, found - SAFE_GLOBALS)


def test_planted_hazards(demo: DemoInfo) -> None:
    dangerous = demo.hazards["dangerous_pickle"].read_bytes()
    assert ("posix", "system") in _globals(dangerous)
    assert DANGEROUS_COMMAND.encode() in dangerous
    outside = demo.hazards["outside_symlink"]
    assert outside.is_symlink() and os.readlink(outside).startswith("/")
    names = {os.path.basename(p) for p in _walk(demo.dest)}
    assert b"caf\xe9.txt" in names
    assert b"notes[bold]\x1b[31m.txt" in names
    assert os.fsencode(demo.hazards["non_utf8_name"].name) == b"caf\xe9.txt"


def test_size_count_and_mtimes(demo: DemoInfo) -> None:
    entries = list(_walk(demo.dest))
    files = [p for p in entries if os.path.isfile(p) and not os.path.islink(p)]
    assert 150 <= len(files) <= 600
    assert sum(os.lstat(p).st_size for p in files) < 3_000_000
    mtimes = [os.lstat(p).st_mtime for p in entries]
    assert all(NOW - 10 * 86400 <= m <= NOW for m in mtimes)
    assert demo.live_run.parent == demo.dest / "lightning_logs" and not demo.live_run.exists()
    frameworks = {run.framework for run in demo.runs}
    expected = {"mlflow", "wandb", "lightning", "hf-trainer", "hydra", "tensorboard", "generic"}
    assert expected <= frameworks
    assert all(run.path.is_dir() for run in demo.runs)


def _fingerprint(root: Path) -> list[tuple[bytes, str, int, float, str]]:
    rows = []
    for path in _walk(root):
        info = os.lstat(path)
        if os.path.islink(path):
            rows.append((path, "link", 0, info.st_mtime, os.fsdecode(os.readlink(path))))
        elif os.path.isdir(path):
            rows.append((path, "dir", 0, info.st_mtime, ""))
        else:
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            rows.append((path, "file", info.st_size, info.st_mtime, digest))
    return rows


def test_same_seed_and_now_give_identical_trees(tmp_path: Path) -> None:
    dest = tmp_path / "demo"
    write_demo(dest, now=NOW, seed=3)
    first = _fingerprint(dest)
    shutil.rmtree(dest)
    write_demo(dest, now=NOW, seed=3)
    assert _fingerprint(dest) == first
    shutil.rmtree(dest)
    write_demo(dest, now=NOW, seed=4)
    assert _fingerprint(dest) != first


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DemoError, match="not empty"):
        write_demo(tmp_path, now=NOW)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(DemoError, match="could not write the demo"):
        write_demo(tmp_path / "keep.txt" / "demo", now=NOW)
    with pytest.raises(DemoError, match="not a folder"):
        write_demo(tmp_path / "keep.txt", now=NOW)


def test_writing_the_demo_never_unpickles_or_runs_anything(tmp_path: Path) -> None:
    """An audit hook sees every pickle class lookup and process start in a fresh interpreter."""
    script = f"""
import sys
from pathlib import Path
seen = []
watch = ("pickle.find_class", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn")
sys.addaudithook(lambda event, args: seen.append(event) if event in watch else None)
from store.demo import write_demo
write_demo(Path({str(tmp_path / "demo")!r}), now={NOW})
print("EVENTS", sorted(set(seen)))
import collections, pickle
pickle.loads(pickle.dumps(collections.OrderedDict()))  # a harmless control: the hook does fire
print("CONTROL", sorted(set(seen)))
"""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "EVENTS []" in result.stdout
    assert "CONTROL ['pickle.find_class']" in result.stdout
    assert "would have run a command" not in result.stdout + result.stderr


def _run_in_thread(run_dir: Path, **kwargs: object) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            simulate_training(run_dir, **kwargs)  # type: ignore[arg-type]
        except BaseException as error:  # the test reports it
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_simulated_run_writes_rotates_and_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "lightning_logs/version_3"
    simulate_training(run_dir, duration=0.3, interval=0.005, seed=1)
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert len(train) == 60 and len(rows) == 66
    assert sum(train[-10:]) < sum(train[:10])
    saved = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert saved == [
        "epoch=3-step=40.ckpt",
        "epoch=4-step=50.ckpt",
        "epoch=5-step=60.ckpt",
        "last.ckpt",
    ]
    for name in saved:
        assert zipfile.is_zipfile(run_dir / "checkpoints" / name)
    log = (run_dir / "train.log").read_text()
    assert log.rstrip().endswith("`Trainer.fit` stopped: `max_epochs=6` reached.")
    assert "max_epochs: 6" in (run_dir / "hparams.yaml").read_text()


def test_simulated_run_stops_promptly_when_asked(tmp_path: Path) -> None:
    run_dir = tmp_path / "live"
    stop = threading.Event()
    thread, errors = _run_in_thread(run_dir, duration=600.0, interval=0.01, stop=stop)
    assert _wait_for(lambda: any((run_dir / "checkpoints").glob("epoch=*.ckpt")))
    stop.set()
    thread.join(timeout=2.0)
    assert not thread.is_alive() and errors == []
    assert "signaled to stop" in (run_dir / "train.log").read_text()
    assert not (run_dir / "checkpoints/last.ckpt").exists()
    assert not list(run_dir.rglob(".*.tmp"))


def _removed(folder: Path) -> bool:
    """Try to delete ``folder``; a writer may add files meanwhile, so the caller retries."""
    shutil.rmtree(folder, ignore_errors=True)
    return not folder.exists()


def test_simulated_run_ends_quietly_when_its_folder_is_deleted(tmp_path: Path) -> None:
    run_dir = tmp_path / "live"
    thread, errors = _run_in_thread(run_dir, duration=600.0, interval=0.005)
    assert _wait_for(lambda: (run_dir / "metrics.csv").exists())
    assert _wait_for(lambda: _removed(run_dir))
    thread.join(timeout=2.0)
    assert not thread.is_alive() and errors == []
