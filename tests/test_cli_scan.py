"""``artlens scan`` (verdicts without an index, exit codes for CI) and run integrity checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.integrity import check_paths, problem_for, run_problems
from tests.conftest import unprivileged_env, unprivileged_python
from tui.cli import main

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
PICKLES = FIXTURES / "pickles"
MODELS = FIXTURES / "models"
MARKER = Path("/tmp/artlens_inspect_PWNED")
HOSTILE = sorted(p.name for p in PICKLES.iterdir() if p.suffix != ".md")
ENTRY_KEYS = {"path", "format", "verdict", "reasons", "integrity", "imports", "size_bytes"}

pytestmark = pytest.mark.usefixtures("isolated_cache")


def scan(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", *args])
    return result.exit_code, result.stdout, result.stderr


def scan_json(*args: str) -> tuple[int, dict[str, object]]:
    code, out, _ = scan("--json", *args)
    return code, json.loads(out)


def entries(report: dict[str, object]) -> dict[str, dict[str, object]]:
    files = report["files"]
    assert isinstance(files, list)
    return {Path(str(f["path"])).name: f for f in files}


def test_hostile_corpus_is_dangerous_and_fails_ci() -> None:
    if MARKER.exists():
        MARKER.unlink()
    code, report = scan_json(str(PICKLES))
    assert code == 1
    found = entries(report)
    assert sorted(found) == HOSTILE
    for name, entry in found.items():
        assert set(entry) == ENTRY_KEYS
        assert entry["verdict"] == "dangerous", name
        assert entry["imports"], name
    assert report["counts"] == {
        "dangerous": len(HOSTILE), "corrupt": 0, "unknown": 0, "safe": 0, "n/a": 0, "skipped": 0,
    }  # fmt: skip
    assert not MARKER.exists()


def test_library_models_pass_ci() -> None:
    code, report = scan_json(str(MODELS))
    assert code == 0
    verdicts = {name: e["verdict"] for name, e in entries(report).items()}
    assert len(verdicts) == len(list(MODELS.iterdir()))
    assert verdicts["state_dict.pt"] == "safe"
    assert verdicts["weights.h5"] == "unknown"
    assert "dangerous" not in verdicts.values()


def test_walk_finds_models_by_content_and_reads_linked_files_through_them(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(PICKLES / "os_system_proto0.pkl", outside / "evil.pkl")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    shutil.copy(MODELS / "plain.pkl", tree / "sub" / "weights_no_extension")
    shutil.copy(MODELS / "model.safetensors", tree / "ok.safetensors")
    data = (MODELS / "model.safetensors").read_bytes()
    (tree / "cut.safetensors").write_bytes(data[: len(data) // 2])
    (tree / "notes.txt").write_text("not a model\n")
    shutil.copy(PICKLES / "os_system_proto0.pkl", tree / "readme.txt")  # a pickle by content
    (tree / "linked.pkl").symlink_to(outside / "evil.pkl")
    (tree / "outdir").symlink_to(outside)
    (tree / "loop.pkl").symlink_to("loop.pkl")
    os.mkfifo(tree / "pipe.pkl")
    code, report = scan_json(str(tree))
    assert code == 1
    found = entries(report)
    assert set(found) == {
        "weights_no_extension", "ok.safetensors", "cut.safetensors", "linked.pkl", "readme.txt",
        "loop.pkl", "pipe.pkl", "outdir",
    }  # fmt: skip
    # a linked folder outside the targets is not followed, but what it holds went unread:
    # unknown (it was left out of the list, so a strict gate passed over evil.pkl)
    assert found["outdir"]["verdict"] == "unknown"
    assert "a folder outside what is scanned" in str(found["outdir"]["reasons"])
    # the FIFO is listed (never opened), so the counts add up to what the walk met
    assert found["pipe.pkl"]["verdict"] == "skipped"
    assert found["pipe.pkl"]["reasons"] == ["FIFO: not a regular file, not read"]
    assert sum(report["counts"].values()) == len(found)  # type: ignore[attr-defined]
    assert found["readme.txt"]["verdict"] == "dangerous"
    assert found["loop.pkl"]["verdict"] == "skipped"
    assert found["weights_no_extension"]["verdict"] == "safe"
    assert found["ok.safetensors"]["verdict"] == "safe"
    assert found["cut.safetensors"]["verdict"] == "corrupt"
    assert str(found["cut.safetensors"]["integrity"]).startswith("truncated")
    # A linked file is read through its target and says where it points.
    assert found["linked.pkl"]["verdict"] == "dangerous"
    reasons = found["linked.pkl"]["reasons"]
    assert isinstance(reasons, list) and str(outside / "evil.pkl") in reasons[0]
    # Named directly, the FIFO is reported and never opened (opening it would block), and
    # a linked folder is walked (``models -> /data/models``): its pickle is found
    code, report = scan_json(str(tree / "pipe.pkl"), str(tree / "outdir"))
    assert code == 1
    assert {k: e["verdict"] for k, e in entries(report).items()} == {
        "pipe.pkl": "skipped",
        "evil.pkl": "dangerous",
    }
    # named beside it, the folder a link points to is scanned where it is: the link skipped
    code, report = scan_json(str(tree), str(outside))
    assert entries(report)["outdir"]["verdict"] == "skipped"


def test_fail_on_unknown_fails_unknown_and_corrupt(tmp_path: Path) -> None:
    shutil.copy(MODELS / "weights.h5", tmp_path / "weights.h5")
    code, report = scan_json(str(tmp_path))
    assert code == 0 and report["counts"]["unknown"] == 1  # type: ignore[index]
    code, _ = scan_json("--fail-on", "unknown", str(tmp_path))
    assert code == 1
    (tmp_path / "weights.h5").unlink()
    data = (MODELS / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    assert scan_json(str(tmp_path))[0] == 0
    assert scan_json("--fail-on", "unknown", str(tmp_path))[0] == 1
    (tmp_path / "cut.safetensors").unlink()
    shutil.copy(MODELS / "state_dict.pt", tmp_path / "ok.pt")
    assert scan_json("--fail-on", "unknown", str(tmp_path))[0] == 0


def test_plain_output_is_tab_separated_and_hostile_names_are_escaped(tmp_path: Path) -> None:
    evil = "red\x1b[31m[bold]\x1b]52;c;aGk=\x07.pkl"
    shutil.copy(PICKLES / "posix_system_proto2.pkl", tmp_path / evil)
    shutil.copy(MODELS / "plain.pkl", tmp_path / "plain.pkl")
    code, out, err = scan(str(tmp_path), str(tmp_path / "plain.pkl"))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2  # plain.pkl named twice is inspected once
    assert "\x1b" not in out and "\x07" not in out
    verdict, fmt, path, why = lines[1].split("\t")
    assert (verdict, fmt) == ("dangerous", "pickle")
    assert path.endswith("red\\e[31m[bold]\\e]52;c;aGk=\\x07.pkl")
    assert why == "dangerous: imports posix.system"
    assert err.strip() == "2 model file(s) inspected: 1 dangerous, 1 safe"


def test_terminal_output_is_a_table_without_raw_escapes_from_names(tmp_path: Path) -> None:
    shutil.copy(PICKLES / "posix_system_proto2.pkl", tmp_path / "osc\x1b]52;c;aGk=\x07.pkl")
    primary, secondary = os.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm-256color"}
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "scan", str(tmp_path)],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    out = b"".join(chunks).decode()
    assert proc.returncode == 1, proc.stderr
    assert "verdict" in out and "dangerous" in out
    assert "\x1b]52" not in out and "\x07" not in out
    assert "osc\\e]52;c;aGk=\\x07.pkl" in out


def test_errors_are_one_line_with_status_2(tmp_path: Path) -> None:
    code, out, err = scan(str(tmp_path / "missing"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("artlens: error: no such file or folder")
    assert "Traceback" not in out + err
    code, _, err = scan()
    assert code == 2  # click usage error: PATH is required


def test_unreadable_folder_is_reported_not_raised(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(MODELS / "plain.pkl", tmp_path / "plain.pkl")
    locked.chmod(0)
    try:
        code, report = scan_json(str(tmp_path))
    finally:
        locked.chmod(0o755)
    assert code == 0
    assert entries(report)["locked"]["verdict"] == "unknown"  # it may hold model files


def _scan_as_nobody(base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``artlens scan`` as an unprivileged user (root reads everything, so a permission
    test run as root would pass vacuously); skips where no such user can be had."""
    python = unprivileged_python() if os.geteuid() == 0 else [sys.executable]
    return subprocess.run(
        [*python, "-m", "tui.cli", "scan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=unprivileged_env(base),
        check=False,
    )


def test_what_cannot_be_read_is_unknown_and_fails_a_strict_gate() -> None:
    """A model file that cannot be opened, a file whose content cannot be sniffed and a
    folder that cannot be listed may all hold something dangerous: unknown, in JSON and in
    plain output alike, and ``--fail-on unknown`` fails; a FIFO holds no model: skipped."""
    base = Path(tempfile.mkdtemp(prefix="artlens-scan-"))
    tree = base / "tree"
    try:
        base.chmod(0o755)
        (tree / "runC").mkdir(parents=True)
        (tree / "locked").mkdir()
        shutil.copy(PICKLES / "os_system_proto0.pkl", tree / "runC" / "model.pkl")
        shutil.copy(PICKLES / "os_system_proto0.pkl", tree / "runC" / "weights")
        shutil.copy(PICKLES / "os_system_proto0.pkl", tree / "locked" / "inner.pkl")
        shutil.copy(MODELS / "plain.pkl", tree / "ok.pkl")
        os.mkfifo(tree / "pipe")
        for path in (tree / "runC" / "model.pkl", tree / "runC" / "weights", tree / "locked"):
            path.chmod(0)
        relaxed = _scan_as_nobody(base, "--json", str(tree))
        assert relaxed.returncode == 0, relaxed.stderr
        report = json.loads(relaxed.stdout)
        found = entries(report)
        verdicts = {name: (e["verdict"], e["reasons"]) for name, e in found.items()}
        assert verdicts == {
            "model.pkl": ("unknown", ["cannot open: Permission denied"]),
            "weights": ("unknown", ["cannot open: Permission denied"]),
            "locked": ("unknown", ["unreadable folder: Permission denied"]),
            "ok.pkl": ("safe", []),
            "pipe": ("skipped", ["FIFO: not a regular file, not read"]),
        }
        assert report["counts"] == {
            "dangerous": 0, "corrupt": 0, "unknown": 3, "safe": 1, "n/a": 0, "skipped": 1,
        }  # fmt: skip
        strict = _scan_as_nobody(base, "--fail-on", "unknown", str(tree))
        assert strict.returncode == 1, strict.stderr
        rows = [line.split("\t") for line in strict.stdout.splitlines()]
        plain = {Path(row[2]).name: row[0] for row in rows}
        assert plain == {name: verdict for name, (verdict, _) in verdicts.items()}
    finally:
        for path in (tree / "runC" / "model.pkl", tree / "runC" / "weights", tree / "locked"):
            if path.exists():
                path.chmod(0o755)
        shutil.rmtree(base)


def test_a_container_with_a_partly_read_member_is_unknown_everywhere(tmp_path: Path) -> None:
    """A torch zip whose data.pkl has bytes after its pickle that do not parse is unknown,
    as the same bytes are in a bare .pkl: in ``scan`` (plain and JSON, failing a strict
    gate) and in the index's verdict column, which the hasher fills the same way."""
    import zipfile

    evil = b"\x80\x02cos\nsystem\nU\x02id\x85R."
    root = tmp_path / "root"
    root.mkdir()
    with zipfile.ZipFile(root / "tz.pt", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}." + b"\x00" + evil)
        archive.writestr("archive/version", b"3\n")
    code, out, _ = scan(str(root / "tz.pt"))
    assert code == 0 and out.split("\t")[:2] == ["unknown", "torch-zip"]
    code, report = scan_json("--fail-on", "unknown", str(root / "tz.pt"))
    assert code == 1
    assert entries(report)["tz.pt"]["verdict"] == "unknown"
    hour_ago = time.time() - 3600  # older than the hasher's quiet time: hashed now
    os.utime(root / "tz.pt", (hour_ago, hour_ago))
    db = tmp_path / "i.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    listed = json.loads(runner.invoke(main, ["ls", "--json", "--db", str(db)]).stdout)
    assert [(a["relpath"], a["verdict"]) for a in listed] == [("tz.pt", "unknown")]


# -- run integrity -------------------------------------------------------------------------


def make_broken_runs(root: Path) -> Path:
    """A Lightning run whose last.ckpt points at nothing, and an HF run whose best is gone."""
    ckpts = root / "lightning_logs" / "version_0" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts.parent / "hparams.yaml").write_text("lr: 0.1\n")
    (ckpts.parent / "metrics.csv").write_text("step,loss\n1,0.5\n")
    (ckpts / "epoch=1.ckpt").write_bytes((MODELS / "lightning.ckpt").read_bytes())
    (ckpts / "last.ckpt").symlink_to("epoch=9.ckpt")
    hf = root / "hf-out"
    (hf / "checkpoint-20").mkdir(parents=True)
    state = {"best_model_checkpoint": "hf-out/checkpoint-10", "global_step": 20}
    (hf / "checkpoint-20" / "trainer_state.json").write_text(json.dumps(state))
    return root


def test_run_problems_name_dangling_references(tmp_path: Path) -> None:
    root = make_broken_runs(tmp_path / "root")
    lightning = run_problems(root, "lightning_logs/version_0")
    assert lightning == [
        "checkpoints/last.ckpt: symlink to epoch=9.ckpt points to nothing",
    ]
    assert (
        problem_for(lightning, b"checkpoints/last.ckpt")
        == "symlink to epoch=9.ckpt points to nothing"
    )
    assert problem_for(lightning, b"checkpoints/epoch=1.ckpt") is None
    hf = run_problems(root, "hf-out")
    assert hf == [
        "checkpoint-20/trainer_state.json: best_model_checkpoint hf-out/checkpoint-10"
        " no longer exists"
    ]
    (root / "hf-out" / "checkpoint-10").mkdir()
    assert run_problems(root, "hf-out") == []
    assert run_problems(root, "no/such/run") == []
    assert run_problems(root, "hf-out/checkpoint-20/trainer_state.json") == []  # not a folder


def test_index_records_problems_as_run_warnings(tmp_path: Path) -> None:
    root = make_broken_runs(tmp_path / "root")
    shutil.copy(PICKLES / "os_system_proto0.pkl", root / "lightning_logs" / "version_0" / "x.pkl")
    db = tmp_path / "i.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db)]).stdout)
    warnings = {r["name"]: r["warnings"] for r in runs}
    assert (
        "checkpoints/last.ckpt: symlink to epoch=9.ckpt points to nothing" in warnings["version_0"]
    )
    hf = next(w for name, w in warnings.items() if name != "version_0")
    assert any("best_model_checkpoint" in w for w in hf)
    # Fixing the link clears the warning on the next index pass.
    link = root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    link.unlink()
    link.symlink_to("epoch=1.ckpt")
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db)]).stdout)
    assert not any("last.ckpt" in w for r in runs for w in r["warnings"])


def test_check_paths_dedups_hard_links(tmp_path: Path) -> None:
    shutil.copy(MODELS / "plain.pkl", tmp_path / "a.pkl")
    os.link(tmp_path / "a.pkl", tmp_path / "b.pkl")
    assert [c.path.rsplit("/", 1)[-1] for c in check_paths([tmp_path])] == ["a.pkl"]


def test_empty_or_zeroed_model_files_are_corrupt_not_na(tmp_path: Path) -> None:
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "zeros.safetensors").write_bytes(b"\x00" * 4096)
    (tmp_path / "eight.safetensors").write_bytes(b"\x00" * 8)
    (tmp_path / "empty.bin").write_bytes(b"")  # .bin names data files too: no claim
    (tmp_path / "tokenizer.model").write_bytes(b"")
    code, report = scan_json(str(tmp_path))
    assert code == 0
    verdicts = {name: e["verdict"] for name, e in entries(report).items()}
    assert verdicts == {
        "empty.ckpt": "corrupt",
        "empty.pt": "corrupt",
        "zeros.safetensors": "corrupt",
        "eight.safetensors": "corrupt",
        "empty.bin": "n/a",
        "tokenizer.model": "n/a",
    }
    assert entries(report)["empty.ckpt"]["integrity"] == "empty file"


def test_a_scan_past_its_time_budget_says_unknown_never_safe(tmp_path: Path) -> None:
    """The whole scan has a budget: files reached after it are listed as unknown (not
    inspected), so nothing is left out and nothing unread is called safe."""
    import pickle

    for index in range(3):
        (tmp_path / f"model_{index}.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    out = CliRunner().invoke(main, ["scan", str(tmp_path), "--json", "--max-time", "1e-9"])
    shape = json.loads(out.stdout)
    assert [f["verdict"] for f in shape["files"]] == ["unknown"] * 3
    assert all("time budget" in f["reasons"][-1] for f in shape["files"])
    strict = CliRunner().invoke(main, ["scan", str(tmp_path), "--max-time", "1e-9",
                                       "--fail-on", "unknown"])  # fmt: skip
    assert strict.exit_code == 1
    relaxed = CliRunner().invoke(main, ["scan", str(tmp_path), "--json"])
    assert [f["verdict"] for f in json.loads(relaxed.stdout)["files"]] == ["safe"] * 3


def test_problems_found_when_many_runs_are_read_at_once(tmp_path: Path) -> None:
    """Past BATCH_RUNS runs, which runs hold references is asked in one query: the broken
    ones still get their warning and the others none."""
    from store.runs import BATCH_RUNS

    root = make_broken_runs(tmp_path / "root")
    for i in range(1, BATCH_RUNS + 2):
        run = root / "lightning_logs" / f"version_{i}"
        run.mkdir()
        (run / "hparams.yaml").write_text(f"seed: {i}\n")
    db = tmp_path / "i.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", "--no-hash", str(root), "--db", str(db)]).exit_code == 0
    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db)]).stdout)
    assert len(runs) == BATCH_RUNS + 3
    warnings = {r["name"]: r["warnings"] for r in runs}
    assert (
        "checkpoints/last.ckpt: symlink to epoch=9.ckpt points to nothing" in warnings["version_0"]
    )
    assert any("best_model_checkpoint" in w for w in warnings["hf-out"])
    assert all(not warnings[f"version_{i}"] for i in range(1, BATCH_RUNS + 2))


def _with_member(source: Path, target: Path, suffix: str, data: bytes) -> None:
    """``source`` (a zip) copied to ``target`` with the member ending in ``suffix`` replaced."""
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, data if info.filename.endswith(suffix) else old.read(info))


def test_exports_torchscript_and_torchserve_archives_hold_code(tmp_path: Path) -> None:
    """A torch.export archive (MLflow 3 logs models so), a TorchScript module and a
    TorchServe .mar hold code their loader runs: unknown, never safe or n/a, so they pass
    the default gate and fail a strict one; the same export with os.system in its sample
    inputs is dangerous; the index stores each verdict artlens scan gives."""
    import zipfile

    if MARKER.exists():
        MARKER.unlink()
    benign = FIXTURES / "benign"
    run = tmp_path / "root" / "run" / "artifacts"
    run.mkdir(parents=True)
    shutil.copy(benign / "torch_export.pt2", run / "model.pt2")
    shutil.copy(benign / "torchscript_scripted.pt", run / "scripted.pt")
    with zipfile.ZipFile(run / "handler.mar", "w") as mar:
        mar.writestr("MAR-INF/MANIFEST.json", '{"model": {"handler": "handler.py"}}')
        mar.writestr("handler.py", "from ts.torch_handler.base_handler import BaseHandler\n")
        mar.write(MODELS / "state_dict.pt", "state_dict.pt")
    code, report = scan_json(str(tmp_path / "root"))
    assert code == 0
    found = {name: (e["format"], e["verdict"]) for name, e in entries(report).items()}
    assert found == {
        "model.pt2": ("pt2", "unknown"),
        "scripted.pt": ("torch-zip", "unknown"),
        "handler.mar": ("mar", "unknown"),
    }
    assert scan("--fail-on", "unknown", str(tmp_path / "root"))[0] == 1

    evil_inputs = tmp_path / "inputs.pt"
    with zipfile.ZipFile(evil_inputs, "w") as inputs:
        inputs.write(PICKLES / "posix_system_proto2.pkl", "inputs/data.pkl")
        inputs.writestr("inputs/version", "3\n")
    evil = run / "evil.pt2"
    _with_member(
        benign / "torch_export.pt2", evil, "/sample_inputs/model.pt", evil_inputs.read_bytes()
    )
    evil_inputs.unlink()
    code, report = scan_json(str(tmp_path / "root"))
    assert code == 1
    assert entries(report)["evil.pt2"]["verdict"] == "dangerous"
    found["evil.pt2"] = ("pt2", "dangerous")

    for path in run.iterdir():
        past = time.time() - 60
        os.utime(path, (past, past))  # settled: the indexer hashes it now
    db = tmp_path / "i.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(tmp_path / "root"), "--db", str(db)]).exit_code == 0
    listed = runner.invoke(main, ["ls", "--json", "--db", str(db)])
    indexed = {Path(a["relpath"]).name: a["verdict"] for a in json.loads(listed.output)}
    assert indexed == {name: verdict for name, (_, verdict) in found.items()}
    assert not MARKER.exists()
