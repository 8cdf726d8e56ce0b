"""``artlens check``: exit 0 when every run passes, 1 when one falls short, 2 on bad config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.test_checklist import WANDB_RUN, copy_fixtures, index_tree
from tui.cli import main


@pytest.fixture
def indexed(tmp_path: Path, isolated_cache: Path) -> tuple[Path, Path]:
    return copy_fixtures(tmp_path)


def check(db_path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", "--db", str(db_path), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_then_fails_when_requirements_go(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    code, out, _ = check(db_path)
    assert code == 0, out
    assert "every checklist item" in out
    (root / WANDB_RUN / "files" / "requirements.txt").unlink()
    index_tree(root, db_path)
    code, out, err = check(db_path)
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("2/3\tfinished-run\twandb\t")
    assert lines[0].endswith("missing: requirements.txt|conda-environment.yaml")
    assert "1 of" in err
    code, out, _ = check(db_path, "--json")
    assert code == 1
    rows = json.loads(out)
    short = [r for r in rows if not r["complete"]]
    assert [r["name"] for r in short] == ["finished-run"]
    assert short[0]["missing"] == ["requirements.txt|conda-environment.yaml"]
    assert set(rows[0]) == {
        "id", "name", "path", "path_b64", "framework", "complete", "passed", "total", "missing",
        "unknown",
    }  # fmt: skip
    assert short[0]["unknown"] == []


def test_invalid_config_exits_2_with_one_line(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    (root / ".artlens.toml").write_text('[checklist]\nrequired = ["ok", 7]\n')
    code, out, err = check(db_path)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("artlens: error: ") and ".artlens.toml:2:" in err


def test_user_config_flag(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    _, db_path = indexed
    config = tmp_path / "ci.toml"
    config.write_text('[checklist.framework.hydra]\nrequired = ["model.safetensors"]\n')
    code, out, _ = check(db_path, "--config", str(config))
    assert code == 1
    assert {line.split("\t")[2] for line in out.strip().splitlines()} == {"hydra"}


def test_no_index_is_exit_2(tmp_path: Path, isolated_cache: Path) -> None:
    code, _, err = check(tmp_path / "missing.db")
    assert code == 2
    assert "no index" in err


def test_runs_json_and_csv_flatten_params_and_metrics(indexed: tuple[Path, Path]) -> None:
    _, db_path = indexed
    runner = CliRunner()
    rows = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db_path)]).stdout)
    wandb = next(r for r in rows if r["name"] == "finished-run" and r["framework"] == "wandb")
    assert wandb["run_key"] == "19x7jcho"  # listed by its display name, found by its id
    assert wandb["params"]["optimizer.name"] == "adam"
    assert wandb["metrics"]["eval.f1"]["last"] == pytest.approx(0.75)
    import csv
    import io

    text = runner.invoke(main, ["runs", "--csv", "--db", str(db_path)]).stdout
    table = list(csv.DictReader(io.StringIO(text)))
    row = next(r for r in table if r["name"] == "finished-run" and r["framework"] == "wandb")
    assert row["param.optimizer.name"] == "adam"
    assert float(row["metric.eval.f1.last"]) == pytest.approx(0.75)
    assert float(row["metric.loss.last"]) == pytest.approx(0.2)


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_config_flag_naming_no_file_exits_2(
    indexed: tuple[Path, Path], tmp_path: Path, kind: str
) -> None:
    _, db_path = indexed
    config = tmp_path / "ci.toml"
    if kind == "folder":
        config.mkdir()
    code, out, err = check(db_path, "--config", str(config))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("artlens: error: --config ") and str(config) in err
    assert ("no such file" if kind == "missing" else "not a regular file") in err


def test_config_flag_through_a_symlink_is_used(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    _, db_path = indexed
    config = tmp_path / "ci.toml"
    config.write_text('[checklist.framework.hydra]\nrequired = ["model.safetensors"]\n')
    link = tmp_path / "link.toml"
    link.symlink_to(config)
    code, out, _ = check(db_path, "--config", str(link))
    assert code == 1
    assert {line.split("\t")[2] for line in out.strip().splitlines()} == {"hydra"}


def test_an_item_in_a_folder_that_could_not_be_read_is_unknown_not_missing(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_scan import deny_listing, run_tree

    root = tmp_path / "root"
    run = run_tree(root)
    db_path = tmp_path / "index.db"
    with monkeypatch.context() as denied:
        deny_listing(denied, run / "out")
        index_tree(root, db_path)
    code, out, err = check(db_path)
    assert code == 1  # not known to pass
    (line,) = out.strip().splitlines()
    assert line.startswith("2/4?\trunD\tgeneric\t")
    assert "missing" not in line
    assert line.endswith(
        "\tunknown: requirements.txt|conda.yaml|conda.yml|environment.yml|environment.yaml"
        "|python_env.yaml: folder out could not be read (permission denied);"
        " *.safetensors|*.ckpt|*.pt|*.pth|*.bin|model.pkl|*.onnx|*.gguf:"
        " folder out could not be read (permission denied)"
    )
    assert "unknown items" in err
    code, out, _ = check(db_path, "--json")
    assert code == 1
    (row,) = json.loads(out)
    assert (row["complete"], row["passed"], row["missing"]) == (False, 2, [])
    assert [u["reason"] for u in row["unknown"]] == [
        "folder out could not be read (permission denied)"
    ] * 2
    runs = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    (listed,) = json.loads(runs.stdout)
    assert listed["warnings"] == [
        "folder out could not be read (permission denied): size_bytes and n_artifacts"
        " count what it holds as last seen, or not at all"
    ]
    index_tree(root, db_path)  # readable again
    code, out, _ = check(db_path)
    assert code == 0, out
    runs = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert json.loads(runs.stdout)[0]["warnings"] == []


def test_as_a_user_who_cannot_read_a_folder_every_count_says_so() -> None:
    """The commands as an unprivileged user (root reads everything): index, check, du and
    runs each name the folder the index could not read."""
    import shutil
    import subprocess
    import tempfile

    from tests.conftest import unprivileged_python
    from tests.test_scan import run_tree

    python = unprivileged_python()
    base = Path(tempfile.mkdtemp(prefix="artlens-unread-"))
    try:
        base.chmod(0o777)
        run = run_tree(base / "pc")
        for path in (base / "pc", run, run / "out"):
            path.chmod(0o755)
        (run / "out").chmod(0o000)
        db_path = base / "pc.db"

        def artlens(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*python, "-c", "from tui.cli import main; main()", *args, "--db", str(db_path)],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
                env={"HOME": str(base), "PATH": "/usr/bin:/bin", "ARTLENS_CACHE": str(base)},
                timeout=120,
            )

        assert artlens("index", str(base / "pc"), "--no-hash").returncode == 0
        checked = artlens("check")
        assert checked.returncode == 1
        assert "unknown: requirements.txt" in checked.stdout
        assert "missing" not in checked.stdout
        usage = artlens("du")
        assert "1 folder could not be read: runD/out (permission denied)" in usage.stdout
        listed = json.loads(artlens("runs", "--json").stdout)
        assert "folder out could not be read (permission denied)" in listed[0]["warnings"][0]
        assert listed[0]["size_complete"] is False
        # the table a script reads marks the size that leaves the folder out
        (row,) = artlens("runs").stdout.splitlines()
        assert row.split("\t")[5].endswith("?"), row
    finally:
        (base / "pc" / "runD" / "out").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_check_on_an_index_that_does_not_record_unreadable_folders_warns(
    tmp_path: Path, isolated_cache: Path
) -> None:
    from store.index.db import open_db
    from tests.test_scan import run_tree

    root = tmp_path / "root"
    run_tree(root)
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    older = open_db(db_path)
    older.execute("DROP VIEW unreadable_text")
    older.execute("DROP TABLE unreadable")
    older.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_unreadable'")
    older.close()
    code, out, err = check(db_path)
    assert code == 0, out
    assert "does not record the folders its scans could not read" in err
    index_tree(root, db_path)  # a writer migrates it
    code, _, err = check(db_path)
    assert (code, err) == (0, "")


def test_checklist_globs_with_many_wildcards_never_hang(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """A checklist glob with many ``**/`` is matched in bounded steps, and still right:
    one item met deep in the run, one missing (a subprocess, so a hang fails the test
    instead of stalling)."""
    root = tmp_path / "root"
    deep = root / "run" / "zzz" / Path(*["a"] * 40)
    deep.mkdir(parents=True)
    (deep / "model.bin").write_bytes(b"weights")
    many = "**/" * 16
    (root / ".artlens.toml").write_text(
        f'[checklist]\nrequired = ["{many}zzz", "{many}a/model.bin", "{many}*a*a*a*b"]\n'
    )
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "check", "--json", "--db", str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["passed"], row["total"]) == (1, 3)
    assert row["missing"] == [f"{many}zzz", f"{many}*a*a*a*b"]


def test_a_link_that_leads_nowhere_meets_no_item(indexed: tuple[Path, Path]) -> None:
    """``requirements.txt -> /nonexistent`` was indexed as a link and counted as the item:
    "every checklist item", exit 0.  A link that leads nowhere is missing; one whose target
    cannot be looked at (a loop) is unknown; one to a file meets it."""
    root, db_path = indexed
    needed = root / WANDB_RUN / "files" / "requirements.txt"
    needed.unlink()
    needed.symlink_to(root / "nowhere" / "requirements.txt")
    index_tree(root, db_path)
    code, out, _ = check(db_path, "--json")
    assert code == 1, out
    (short,) = [r for r in json.loads(out) if not r["complete"]]
    assert short["missing"] == ["requirements.txt|conda-environment.yaml"]
    needed.unlink()
    needed.symlink_to(needed)  # a loop: looked at, it says nothing
    index_tree(root, db_path)
    code, out, _ = check(db_path, "--json")
    assert code == 1, out
    (short,) = [r for r in json.loads(out) if not r["complete"]]
    assert short["missing"] == []
    assert [u["item"] for u in short["unknown"]] == ["requirements.txt|conda-environment.yaml"]
    needed.unlink()
    (needed.parent / "reqs.txt").write_text("torch\n")
    needed.symlink_to("reqs.txt")
    index_tree(root, db_path)
    code, out, _ = check(db_path)
    assert code == 0, out


def test_a_misspelt_table_in_the_root_file_is_one_line_not_the_defaults(
    indexed: tuple[Path, Path],
) -> None:
    """``[checklst]`` meant the defaults without a word: a run missing what the file
    requires passed."""
    root, db_path = indexed
    (root / ".artlens.toml").write_text('[checklst]\nrequired = ["model.onnx"]\n')
    code, out, err = check(db_path)
    assert code == 2, out
    assert out == "" and err.count("\n") == 1
    assert ".artlens.toml:1: unknown key 'checklst'" in err
    (root / ".artlens.toml").write_text(
        '[checklist]\nrequired = ["model.onnx"]\n[runs]\ndepth = 1\n'
    )
    code, out, _ = check(db_path)
    assert code == 1 and "missing: model.onnx" in out


def test_params_a_reader_could_not_read_are_unknown_not_missing(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """A nanoGPT ``ckpt.pt`` cut off mid-write: its reader found no params in what it could
    read, and ``@params`` was ``missing`` (the run "has no params"); the params are in the
    part it could not read, so the item is unknown, with why.  Whole again, it is met."""
    root = tmp_path / "root"
    source = Path(__file__).parent / "fixtures" / "frameworks" / "nanogpt"
    shutil.copytree(source, root)
    ckpt = root / "out-shakespeare-char" / "ckpt.pt"
    whole = ckpt.read_bytes()
    ckpt.write_bytes(whole[: len(whole) // 2])
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    code, out, err = check(db_path, "--json")
    assert code == 1, err
    (row,) = json.loads(out)
    # the cut ckpt.pt is corrupt too: it meets no item either
    assert (row["framework"], row["passed"], row["total"]) == ("nanogpt", 0, 2)
    assert row["missing"] == []
    assert row["unknown"][1:] == [
        {"item": "@params", "reason": "its params could not be read whole (its warnings say why)"}
    ]
    assert row["unknown"][0]["reason"].startswith("ckpt.pt is corrupt (")
    code, out, _ = check(db_path)
    assert code == 1
    assert out.startswith("0/2?\tout-shakespeare-char\tnanogpt\t")
    assert "\tmissing:" not in out
    ckpt.write_bytes(whole)
    index_tree(root, db_path)
    code, out, _ = check(db_path)
    assert code == 0, out


def test_an_item_written_with_dot_segments_is_met_by_the_file(indexed: tuple[Path, Path]) -> None:
    """``./requirements.txt`` in a root's checklist: the run holds it at its top, and
    ``check`` said ``missing: ./requirements.txt`` (exit 1); ``..`` is a config error."""
    root, db_path = indexed
    run = root / WANDB_RUN
    (run / "requirements.txt").write_text("torch\n")
    (root / ".artlens.toml").write_text(
        "[checklist.framework.wandb]\n"
        'required = ["./requirements.txt", "files//requirements.txt"]\n'
    )
    index_tree(root, db_path)
    code, out, _ = check(db_path, "--json")
    rows = {r["path"]: r for r in json.loads(out)}
    row = rows[str(run)]
    assert (row["passed"], row["total"], row["missing"]) == (2, 2, []), row
    (run / "requirements.txt").unlink()
    index_tree(root, db_path)
    code, out, _ = check(db_path, "--json")
    assert code == 1
    row = {r["path"]: r for r in json.loads(out)}[str(run)]
    assert row["missing"] == ["./requirements.txt"]  # at the top: files/requirements.txt is not
    (root / ".artlens.toml").write_text(
        '[checklist.framework.wandb]\nrequired = ["../requirements.txt"]\n'
    )
    code, out, err = check(db_path)
    assert (code, out) == (2, "")
    assert err.strip().endswith(
        ".artlens.toml:2: '../requirements.txt' in checklist item '../requirements.txt'"
        " leaves the run's folder"
    )


def test_runs_in_a_folder_that_could_not_be_read_are_not_passed(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root whose ``secret`` folder could not be listed: the run in it was never seen, and
    ``check`` said "all 1 runs have every checklist item", exit 0, though that run lacks
    its environment and model.  Now the folder is named on stderr and the check fails
    (exit 1): it cannot say every run passes.  Read again, the hidden run is checked."""
    from tests.test_scan import deny_listing, run_tree

    root = tmp_path / "root"
    run_tree(root)  # complete
    hidden = root / "secret" / "runE"
    hidden.mkdir(parents=True)
    (hidden / "config.yaml").write_text("lr: 1\n")
    (hidden / "metrics.csv").write_text("step,loss\n0,1\n")
    db_path = tmp_path / "index.db"
    with monkeypatch.context() as denied:
        deny_listing(denied, root / "secret")
        index_tree(root, db_path)
    code, out, err = check(db_path)
    assert code == 1, out
    assert out == "all 1 runs found have every checklist item\n"
    assert err == (
        f"artlens: warning: {root}: 1 place could not be read, and runs in it are not"
        " checked: secret (permission denied)\n"
    )
    code, out, err = check(db_path, "--json")
    assert code == 1
    (row,) = json.loads(out)
    assert (row["name"], row["complete"]) == ("runD", True)
    assert "secret (permission denied)" in err
    index_tree(root, db_path)  # readable again: the run there falls short
    code, out, err = check(db_path)
    assert code == 1
    (line,) = out.strip().splitlines()
    assert line.startswith("2/4\tsecret\tgeneric\t")  # the generic run holding runE
    assert "could not be read" not in err

    other = tmp_path / "other"
    run_tree(other)
    other_db = tmp_path / "other.db"
    with monkeypatch.context() as denied:
        deny_listing(denied, other)  # the root itself
        index_tree(other, other_db)
    code, out, err = check(other_db)
    assert (code, out) == (1, "no runs found\n")
    assert err.endswith(
        "1 place could not be read, and runs in it are not checked: . (permission denied)\n"
    )


def test_a_checkpoint_cut_off_mid_write_does_not_meet_the_item(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """A Lightning run whose only checkpoint was cut off mid-write (the index's verdict:
    corrupt, truncated) passed "checkpoints/*.ckpt": "all 3 runs have every checklist
    item", exit 0, for a run that left no usable model.  The item is now unknown, naming
    the file and why; whole again, the run passes."""
    root = tmp_path / "root"
    source = Path(__file__).parent / "fixtures" / "frameworks" / "lightning"
    shutil.copytree(source, root)
    folder = root / "lightning_logs" / "version_1" / "checkpoints"
    ckpts = sorted(folder.glob("*.ckpt"))
    kept = ckpts[0]
    for other in ckpts[1:]:
        other.unlink()
    whole = kept.read_bytes()
    kept.write_bytes(whole[: len(whole) // 2])
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    code, out, err = check(db_path)
    assert code == 1, out
    assert err == "1 of 3 runs fall short (1 with unknown items, neither met nor missing)\n"
    (line,) = out.strip().splitlines()
    assert line.startswith("2/3?\tversion_1\tlightning\t")
    assert line.endswith(
        f"\tunknown: checkpoints/*.ckpt: checkpoints/{kept.name} is corrupt (truncated:"
        " zip central directory missing (File is not a zip file))"
    )
    code, out, _ = check(db_path, "--json")
    row = {r["name"]: r for r in json.loads(out)}["version_1"]
    assert (row["complete"], row["passed"], row["missing"]) == (False, 2, [])
    assert [u["item"] for u in row["unknown"]] == ["checkpoints/*.ckpt"]
    kept.write_bytes(whole)
    index_tree(root, db_path)
    code, out, _ = check(db_path)
    assert code == 0, out


def _check_row(db_path: Path, name: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = check(db_path, "--json")
    found = json.loads(out)
    rows = found["runs"] if isinstance(found, dict) else found  # the object, or the old list
    return code, next(r for r in rows if r["name"] == name)


MODEL = "*.safetensors|*.ckpt|*.pt|*.pth|*.bin|model.pkl|*.onnx|*.gguf"


def test_items_behind_a_link_out_of_the_root_are_unknown_not_missing(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """``checkpoints -> /scratch/run1/checkpoints``: artlens never follows a link out of
    its root, and the model item was ``missing`` (exit 1 saying the run has no model).  It
    is unknown, naming the link; an item that cannot lie below the link stays missing."""
    from tests.test_scan import run_tree

    root = tmp_path / "root"
    run = run_tree(root)
    (run / "out" / "model.ckpt").unlink()
    scratch = tmp_path / "scratch" / "run1" / "checkpoints"
    scratch.mkdir(parents=True)
    (scratch / "model.ckpt").write_bytes(b"x")
    (run / "checkpoints").symlink_to(scratch)
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    code, row = _check_row(db_path, "runD")
    assert code == 1
    assert (row["passed"], row["total"], row["missing"]) == (3, 4, [])
    assert row["unknown"] == [
        {"item": MODEL, "reason": f"behind a link out of the root: checkpoints -> {scratch}"}
    ]
    code, out, _ = check(db_path)
    assert "\tmissing" not in out and "behind a link out of the root" in out
    # a path that cannot lie below the link is still missing
    (root / ".artlens.toml").write_text(
        '[checklist]\nrequired = ["out/model.ckpt", "checkpoints/*.ckpt", "out/"]\n'
    )
    code, row = _check_row(db_path, "runD")
    assert code == 1
    assert row["missing"] == ["out/model.ckpt"]
    assert [u["item"] for u in row["unknown"]] == ["checkpoints/*.ckpt"]


def test_a_link_to_a_folder_inside_the_root_reads_the_index_of_its_target(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """``checkpoints -> ../shared/ckpts`` inside the root: the model was ``missing``, though
    ``runD/checkpoints/model.ckpt`` opens.  The index's files of the target count as lying
    below the link (and go when they go); a link back to a folder the run lies in is a
    cycle: it adds nothing, and makes nothing unknown."""
    from tests.test_scan import run_tree

    root = tmp_path / "root"
    run = run_tree(root)
    (run / "out" / "model.ckpt").unlink()
    shared = root / "shared" / "ckpts"
    shared.mkdir(parents=True)
    (shared / "model.ckpt").write_bytes(b"x")
    (run / "checkpoints").symlink_to(Path("..") / "shared" / "ckpts")
    (run / "up").symlink_to("..")
    (root / ".artlens.toml").write_text(
        '[checklist]\nrequired = ["requirements.txt", "checkpoints/*.ckpt", "' + MODEL + '"]\n'
    )
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    _, row = _check_row(db_path, "runD")
    assert (row["complete"], row["missing"], row["unknown"]) == (True, [], [])
    (shared / "model.ckpt").unlink()
    index_tree(root, db_path)
    _, row = _check_row(db_path, "runD")
    assert row["missing"] == ["checkpoints/*.ckpt", MODEL]
    assert row["unknown"] == []
    # a link to a folder the index holds no listing of (a `.git`, never walked)
    (root / ".git").mkdir()
    (root / ".git" / "model.ckpt").write_bytes(b"x")
    (run / "checkpoints").unlink()
    (run / "checkpoints").symlink_to(Path("..") / ".git")
    index_tree(root, db_path)
    _, row = _check_row(db_path, "runD")
    assert row["missing"] == []
    assert row["unknown"] == [
        {
            "item": item,
            "reason": "behind link checkpoints: the index holds no listing of the folder it"
            " leads to",
        }
        for item in ("checkpoints/*.ckpt", MODEL)
    ]


def test_a_link_loop_makes_unknown_only_the_items_that_could_lie_there(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """``out/tmp -> tmp`` (a loop) made every name item not met unknown: a run without its
    requirements was ``2/4?`` instead of missing them.  A loop resolves to nothing: only an
    item that names the link, or a path through it, is unknown."""
    from tests.test_scan import run_tree

    root = tmp_path / "root"
    run = run_tree(root)
    (run / "out" / "requirements.txt").unlink()
    (run / "out" / "tmp").symlink_to("tmp")
    (run / "cache_a").symlink_to("cache_b")
    (run / "cache_b").symlink_to("cache_a")
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    code, row = _check_row(db_path, "runD")
    assert code == 1
    assert row["missing"] == [
        "requirements.txt|conda.yaml|conda.yml|environment.yml|environment.yaml|python_env.yaml"
    ]
    assert row["unknown"] == []
    (run / "checkpoints").symlink_to("checkpoints")
    (root / ".artlens.toml").write_text(
        '[checklist]\nrequired = ["requirements.txt", "checkpoints/*.ckpt", "tmp", "cache_*/"]\n'
    )
    index_tree(root, db_path)
    _, row = _check_row(db_path, "runD")
    assert row["missing"] == ["requirements.txt"]
    assert [(u["item"], u["reason"]) for u in row["unknown"]] == [
        ("checkpoints/*.ckpt", "link checkpoints: its target cannot be looked at (Too many"
         " levels of symbolic links)"),
        ("tmp", "link out/tmp: its target cannot be looked at (Too many levels of symbolic"
         " links)"),
        ("cache_*/", "link cache_a: its target cannot be looked at (Too many levels of"
         " symbolic links) (+1 more)"),
    ]  # fmt: skip


def test_a_link_to_a_device_meets_no_item(tmp_path: Path, isolated_cache: Path) -> None:
    """``requirements.txt -> /dev/null`` met the environment item: a device (or a FIFO) is
    no file of the run, whatever its name."""
    from tests.test_scan import run_tree

    root = tmp_path / "root"
    run = run_tree(root)
    (run / "out" / "requirements.txt").unlink()
    (run / "out" / "requirements.txt").symlink_to("/dev/null")
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    code, row = _check_row(db_path, "runD")
    assert code == 1
    assert row["missing"] == [
        "requirements.txt|conda.yaml|conda.yml|environment.yml|environment.yaml|python_env.yaml"
    ]
