"""``artlens diff``: exit codes like diff(1), the --json shape, runs and files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_rundiff import CONFIG_A, CONFIG_B, Pair, age, index, make_pair
from tui.cli import main

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return make_pair(tmp_path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


def test_runs_differ_json_shape(pair: Pair) -> None:
    code, out, err = run("version_0", "version_1", "--json", "--db", str(pair.db_path))
    assert code == 1, err
    data = json.loads(out)
    assert set(data) == {
        "kind",
        "equal",
        "verdict",
        "a",
        "b",
        "params",
        "configs",
        "metrics",
        "env",
        "unknown",
        "artifacts",
        "stale",
        "warnings",
    }
    assert data["kind"] == "runs" and data["equal"] is False
    assert data["unknown"] == []  # every part of both runs was read whole
    assert data["stale"] == []  # indexed after the last write: nothing compared from disk
    assert data["a"]["name"] == "version_0" and data["b"]["name"] == "version_1"
    assert data["params"] == [{"key": "lr", "change": "changed", "old": 0.001, "new": 0.002}]
    assert data["configs"] == [
        {
            "path": "hparams.yaml",
            "format": "yaml",
            "changes": [{"key": "lr", "change": "changed", "old": 0.001, "new": 0.002}],
            "more": 0,
            "notes": [],
            "error": None,
            "warnings": [],
        }
    ]
    changed_metrics = [m["name"] for m in data["metrics"] if m["delta"]]
    assert changed_metrics == ["val_loss"]
    assert set(data["metrics"][0]) == {
        "name", "old", "new", "delta", "percent", "direction", "better", "ambiguous", "only",
        "series",
    }  # fmt: skip
    artifacts = data["artifacts"]
    assert set(artifacts) == {
        "added", "removed", "changed", "moved", "unchanged", "unverified", "unknown",
    }  # fmt: skip
    assert [c["path"] for c in artifacts["changed"]] == [
        "checkpoints/last.safetensors",
        "hparams.yaml",
        "metrics.csv",
    ]
    assert artifacts["unchanged"] == 3 and artifacts["unverified"] == []


def test_run_against_itself_exits_zero(pair: Pair) -> None:
    code, out, err = run("version_0", "version_0", "--db", str(pair.db_path))
    assert code == 0, err
    assert "runs are equal" in out


def test_plain_run_diff_is_tab_separated(pair: Pair) -> None:
    code, out, _ = run("1", "2", "--db", str(pair.db_path))
    assert code == 1
    assert "~ param\tlr\t0.001\t0.002\tchanged" in out
    assert "metrics: 1 of 2 changed" in out


def test_file_diffs_and_exit_codes(pair: Pair, tmp_path: Path) -> None:
    a, b = pair.a / "config.yaml", pair.b / "config.yaml"
    assert (a.read_text(), b.read_text()) == (CONFIG_A, CONFIG_B)
    code, out, _ = run(str(a), str(b))
    assert code == 0  # reordered but equal YAML
    assert "equal after parsing" in out
    code, out, _ = run(str(pair.a / "hparams.yaml"), str(pair.b / "hparams.yaml"), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["kind"] == "files" and data["engine"] == "structured"
    assert data["result"]["changes"][0]["path"] == "lr"
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("".join(f"{i}\n" for i in range(30)))
    new.write_text("".join(f"{i}\n" for i in range(30)).replace("15\n", "fifteen\n"))
    code, out, _ = run(str(old), str(new), "--context", "1")
    assert code == 1
    assert out.splitlines()[2:] == ["@@ -15,3 +15,3 @@", " 14", "-15", "+fifteen", " 16"]


def test_errors_exit_two_with_one_line(pair: Pair, tmp_path: Path) -> None:
    code, _, err = run("nope", "version_1", "--db", str(pair.db_path))
    assert code == 2 and err.count("\n") == 1 and "no run matches" in err
    code, _, err = run(str(pair.a / "hparams.yaml"), "version_1", "--db", str(pair.db_path))
    assert code == 2 and "give two files or two runs" in err
    code, _, err = run("version_0", "version_1", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and "Traceback" not in err
    unreadable = tmp_path / "a.bin"
    unreadable.write_bytes(b"\x00\x01")
    fifo = tmp_path / "fifo"
    import os

    os.mkfifo(fifo)
    code, _, err = run(str(unreadable), str(fifo))
    assert code == 2 and "Traceback" not in err


# --- an index behind the disk ------------------------------------------------------------

MODEL = bytes(range(256)) * 4


def generic_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two equal generic runs, ``base`` and ``edited``, indexed and hashed by the CLI."""
    root = tmp_path / "rd"
    for name in ("base", "edited"):
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text("lr: 0.1\n")
        (root / name / "model.bin").write_bytes(MODEL)
    age(root)
    db = tmp_path / "rd.db"
    done = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    assert done.exit_code == 0, done.output
    return root, db


def test_stale_index_is_compared_from_disk_and_says_so(tmp_path: Path) -> None:
    """A config, a model and a new file written after indexing: never 'runs are equal'."""
    root, db = generic_runs(tmp_path)
    (root / "edited" / "config.yaml").write_text("lr: 0.5\n")
    (root / "edited" / "model.bin").write_bytes(MODEL[::-1])  # same size, other bytes
    (root / "edited" / "new.txt").write_text("x\n")
    code, out, err = run("base", "edited", "--db", str(db))
    assert code == 1, err
    lines = out.splitlines()
    assert lines[2] == "runs differ"
    assert lines[3].startswith("warning: the index is stale for edited (#")
    assert "3 file(s) changed since indexed (2 modified, 1 new)" in lines[3]
    assert "run `artlens index`" in lines[3]
    assert "~ param\tlr\t0.1\t0.5\tchanged" in out
    assert "+ added\tnew.txt" in out
    assert sum("the index is stale" in line for line in lines) == 1  # said once
    code, out, err = run("base", "edited", "--db", str(db), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["equal"] is False
    assert data["params"] == [{"key": "lr", "change": "changed", "old": 0.1, "new": 0.5}]
    assert [c["path"] for c in data["configs"]] == ["config.yaml"]
    artifacts = data["artifacts"]
    assert [c["path"] for c in artifacts["changed"]] == ["config.yaml", "model.bin"]
    assert [c["path"] for c in artifacts["added"]] == ["new.txt"]
    assert artifacts["unchanged"] == 0 and artifacts["unverified"] == []
    assert [(s["side"], s["path"], s["change"], s["hashed"]) for s in data["stale"]] == [
        ("b", "config.yaml", "modified", True),
        ("b", "model.bin", "modified", True),
        ("b", "new.txt", "new", True),
    ]
    assert data["warnings"][0].startswith("the index is stale for edited")


def test_nothing_found_to_differ_but_unhashed_is_not_called_different(tmp_path: Path) -> None:
    """Two runs of the same files, indexed without hashes: nothing is known to differ, and
    nothing is known equal.  The verdict said "runs differ", a wrong answer; it is unknown,
    in text and JSON (the exit status stays 1: not known equal)."""
    root, _ = generic_runs(tmp_path)
    db = tmp_path / "unhashed.db"
    done = CliRunner().invoke(main, ["index", str(root), "--no-hash", "--db", str(db)])
    assert done.exit_code == 0, done.output
    code, out, err = run("base", "edited", "--db", str(db))
    assert code == 1, err
    assert out.splitlines()[2] == (
        "runs not known equal: nothing found to differ, but not all could be compared"
    )
    code, out, err = run("base", "edited", "--db", str(db), "--json")
    data = json.loads(out)
    assert code == 1 and data["equal"] is False and data["verdict"] == "unknown"
    (root / "edited" / "new.txt").write_text("x\n")  # a file only one side has: different
    code, out, err = run("base", "edited", "--db", str(db))
    assert code == 1 and out.splitlines()[2] == "runs differ", err
    assert json.loads(run("base", "edited", "--db", str(db), "--json")[1])["verdict"] == (
        "different"
    )


def test_stale_but_the_same_on_disk_is_equal_with_the_warning(tmp_path: Path) -> None:
    """Both runs edited alike since indexing: equal as they are now, and said to be stale."""
    root, db = generic_runs(tmp_path)
    for name in ("base", "edited"):
        (root / name / "config.yaml").write_text("lr: 0.7\n")
    code, out, err = run("base", "edited", "--db", str(db))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[2] == "runs are equal"
    assert lines[3].startswith("warning: the index is stale for base (#")
    assert "and edited (#" in lines[3]
    code, out, _ = run("base", "edited", "--db", str(db), "--json")
    data = json.loads(out)
    assert code == 0 and data["equal"] is True and data["params"] == []
    assert data["verdict"] == "equal"
    assert sorted((s["side"], s["path"]) for s in data["stale"]) == [
        ("a", "config.yaml"),
        ("b", "config.yaml"),
    ]


def test_a_file_removed_since_indexing_is_removed(tmp_path: Path) -> None:
    root, db = generic_runs(tmp_path)
    (root / "edited" / "model.bin").unlink()
    code, out, err = run("base", "edited", "--db", str(db), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert [c["path"] for c in data["artifacts"]["removed"]] == ["model.bin"]
    assert [(s["path"], s["change"], s["disk_size"]) for s in data["stale"]] == [
        ("model.bin", "vanished", None)
    ]


def test_a_changed_file_not_hashed_again_is_never_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the user's hash size cap, a same-size file changed since indexing is unknown."""
    root, db = generic_runs(tmp_path)
    config_home = tmp_path / "xdg"
    (config_home / "artlens").mkdir(parents=True)
    (config_home / "artlens" / "config.toml").write_text('[index]\nhash_max_size = "100"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    (root / "edited" / "model.bin").write_bytes(MODEL[::-1])
    code, out, err = run("base", "edited", "--db", str(db), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["equal"] is False
    assert data["artifacts"]["unverified"] == ["model.bin"]
    [stale] = data["stale"]
    assert stale["path"] == "model.bin" and stale["hashed"] is False
    assert "hash size cap" in stale["note"]
    assert any("not hashed again" in w for w in data["warnings"])


def test_a_fresh_index_finds_nothing_stale_around_nested_runs(tmp_path: Path) -> None:
    """The index's own files, a nested run, a .git folder and a FIFO in the run folders are
    none of the runs' files: nothing is stale and the runs are equal."""
    import os

    root = tmp_path / "hy"
    for name in ("r1", "r2"):
        run_dir = root / name
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
        (run_dir / ".hydra" / "overrides.yaml").write_text("- lr=0.1\n")
        (run_dir / "model.pt").write_bytes(MODEL)
        for version in ("version_0", "version_1"):  # two: the Hydra job stays a run
            nested = run_dir / "lightning_logs" / version
            nested.mkdir(parents=True)
            (nested / "hparams.yaml").write_text(f"run: {name}\n")
            (nested / "metrics.csv").write_text("epoch,step,val_loss\n0,1,0.5\n")
        (run_dir / ".git").mkdir()
        (run_dir / ".git" / "HEAD").write_text("ref\n")
    os.mkfifo(root / "r1" / "fifo")
    age(root)
    db = root / "r1" / "index.db"
    done = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    assert done.exit_code == 0, done.output
    ids = {
        r["path"]: str(r["id"])
        for r in json.loads(CliRunner().invoke(main, ["runs", "--db", str(db), "--json"]).stdout)
    }
    first, second = ids[str(root / "r1")], ids[str(root / "r2")]
    code, out, err = run(first, second, "--db", str(db), "--json")
    data = json.loads(out)
    assert (code, data["equal"], data["stale"]) == (0, True, []), (data, err)
    assert data["artifacts"]["unchanged"] == 3


def test_files_of_different_sizes_differ_without_being_read_whole(tmp_path: Path) -> None:
    """A sparse 8 GiB file against a small one: different by size, not hashed (which read
    every byte of both); the output still says how they differ."""
    big, small = tmp_path / "big.dat", tmp_path / "small.dat"
    with open(big, "wb") as handle:
        handle.truncate(8 << 30)
    small.write_bytes(b"\0\0\0hello")
    code, out, err = run(str(big), str(small), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["engine"] == "binary" and (data["size_a"], data["size_b"]) == (8 << 30, 8)
    result = data["result"]
    assert (result["hash_old"], result["hash_new"]) == (None, None)
    assert result["first_difference"] == 3 and result["equal"] is False
    assert any("sizes differ" in note for note in result["notes"])
    code, out, _ = run(str(big), str(small))
    assert code == 1
    assert "first difference at byte 3" in out and "sizes differ" in out


def test_mlflow3_logged_models_pair_by_name_in_text_and_json(tmp_path: Path) -> None:
    """Two MLflow 3 runs' logged models: every artifact path is run-relative or
    ``models/<name>/...`` (never a path from the root), and nothing is called moved."""
    from tests.test_rundiff import mlflow3_pair

    db = str(mlflow3_pair(tmp_path))
    code, out, err = run("lr-high", "lr-low", "--db", db)
    assert code == 1, err
    rows = [line.split("\t") for line in out.splitlines() if "\t" in line]
    artifact_rows = [row for row in rows if row[0] in ("~ changed", "+ added", "- removed")]
    assert ["~ changed", "models/model/MLmodel"] in [row[:2] for row in artifact_rows]
    assert ["- removed", "models/model/data/model.pth"] in [row[:2] for row in artifact_rows]
    assert ["+ added", "models/model/data/model.pt2"] in [row[:2] for row in artifact_rows]
    assert not any(row[0] == "→ moved" or "mlruns" in row[1] for row in rows), out
    code, out, err = run("lr-high", "lr-low", "--db", db, "--json")
    assert code == 1, err
    artifacts = json.loads(out)["artifacts"]
    shown = [c["path"] for kind in ("added", "removed", "changed") for c in artifacts[kind]]
    assert all(
        p.startswith(("models/model/", "outputs/", "params/", "meta.yaml", "tags/")) for p in shown
    ), shown
    assert artifacts["moved"] == []
    assert artifacts["unchanged"] == 3
    assert "models/model/MLmodel" in [c["path"] for c in artifacts["changed"]]


# --- a YAML alias bomb ---------------------------------------------------------------------

ALIAS_BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join(['*' + below] * 9)}]\n"
    for below, name in zip("abcdefghi", "bcdefghij", strict=True)
)
"""400 bytes naming 9**10 strings: a config diff that copies, prints or renders a value
whole never ends (nor does its memory stop growing)."""


def run_bounded(*args: str) -> tuple[int, str, str]:
    """``run`` in a child with a deadline: a hang sits in C (json.dumps) holding the GIL,
    where neither a signal nor pytest-timeout's thread gets in."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "diff", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_yaml_alias_bomb_is_a_config_that_does_not_parse(pair: Pair) -> None:
    """The bomb as a run's hparams.yaml and its conda environment, and as a file: the diff
    ends, says the config does not parse and why, in text and JSON (it printed a value
    of 9**10 strings, and never ended)."""
    bomb = pair.b / "hparams.yaml"
    bomb.write_text(ALIAS_BOMB)
    (pair.b / "environment.yml").write_text(ALIAS_BOMB + "dependencies: [*i, python=3.11]\n")
    sides = (str(pair.a / "hparams.yaml"), str(bomb))
    code, out, err = run_bounded(*sides)
    assert code == 1, err
    assert "structured diff failed: " in out and "alias bomb" in out
    code, out, err = run_bounded(*sides, "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["engine"] == "text" and "alias bomb" in data["notes"][0]
    code, out, err = run_bounded("version_0", "version_1", "--db", str(pair.db_path))
    assert code == 1, err
    assert "environment.yml: invalid yaml" in out.lower() and "alias bomb" in out
    code, out, err = run_bounded("version_0", "version_1", "--db", str(pair.db_path), "--json")
    assert code == 1, err
    config = next(c for c in json.loads(out)["configs"] if c["path"] == "hparams.yaml")
    assert "alias bomb" in config["error"]


def test_a_repeated_key_is_said_and_never_equal_in_text_and_json(pair: Pair) -> None:
    """Run A's hparams.yaml gives lr twice (0.001, then 0.002), run B once (0.002):
    PyYAML keeps 0.002 and the runs looked equal there, though a loader keeping the first
    value, or refusing the file, gives another answer.  The file diff and the run diff
    name the file and the key, and call the key ambiguous."""
    (pair.a / "hparams.yaml").write_text("lr: 0.001\nbatch_size: 32\nlr: 0.002\n")
    (pair.b / "hparams.yaml").write_text("batch_size: 32\nlr: 0.002\n")
    for name in ("config.yaml", "metrics.csv", "checkpoints/last.safetensors"):
        (pair.b / name).write_bytes((pair.a / name).read_bytes())
    age(pair.root)
    from tests.test_rundiff import index

    index(pair.root, pair.db_path)
    sides = (str(pair.a / "hparams.yaml"), str(pair.b / "hparams.yaml"))
    code, out, err = run(*sides)
    assert code == 1, err
    assert "hparams.yaml: key lr appears 2 times in one mapping (first 0.001, last 0.002)" in out
    assert "? lr: 0.002 → 0.002  (repeated key:" in out
    code, out, err = run(*sides, "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["equal"] is False
    assert data["result"]["changes"] == [
        {"path": "lr", "kind": "ambiguous", "old": 0.002, "new": 0.002}
    ]
    assert "key lr appears 2 times" in data["result"]["warnings"][0]
    code, out, err = run("version_0", "version_1", "--db", str(pair.db_path))
    assert code == 1, err
    assert "runs differ" in out and "? config\thparams.yaml: lr\t0.002\t0.002" in out
    assert "note: version_0: hparams.yaml: key lr appears 2 times" in out
    code, out, err = run("version_0", "version_1", "--db", str(pair.db_path), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["equal"] is False
    config = next(c for c in data["configs"] if c["path"] == "hparams.yaml")
    assert config["changes"] == [{"key": "lr", "change": "ambiguous", "old": 0.002, "new": 0.002}]
    assert config["warnings"][0].startswith("version_0: hparams.yaml: key lr appears 2 times")
    assert config["warnings"][0] in data["warnings"]


def test_every_cap_on_a_listing_says_how_many_it_left_out(tmp_path: Path) -> None:
    """12,000 changed cells: the engine lists 10,000 and the text 2,000; both say how many
    more there are, and the counts count them all (the text stopped at 2,000 without a
    word, and the JSON could not tell 10,000 changed cells from 12,000)."""
    for name, shift in (("a.csv", 0), ("b.csv", 1)):
        rows = "".join(f"{i},{i + shift},{i + shift}\n" for i in range(6000))
        (tmp_path / name).write_text("step,x,y\n" + rows)
    sides = (str(tmp_path / "a.csv"), str(tmp_path / "b.csv"))
    code, out, err = run(*sides)
    assert code == 1, err
    assert "6000 changed row(s), 12000 changed cell(s)" in out
    assert out.count("~ row ") == 2000
    assert "… 10000 more changed cell(s) not shown" in out
    assert "2000 more changed cell(s) not listed: only the first 10000 are" in out
    code, out, err = run(*sides, "--json")
    result = json.loads(out)["result"]
    assert len(result["cells"]) == 10_000
    assert (result["cells_changed"], result["cells_more"]) == (12_000, 2_000)
    # safetensors metadata past the 2,000 rows the text lists
    header = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    for name, value in (("a.safetensors", "x"), ("b.safetensors", "y")):
        meta = {"__metadata__": {f"k{i}": value for i in range(2500)}}
        raw = json.dumps({**header, **meta}).encode()
        (tmp_path / name).write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(4))
    code, out, err = run(str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"))
    assert code == 1, err
    assert out.count("~ metadata.") == 2000
    assert out.splitlines()[-1] == "… 500 more metadata change(s) not shown"


def test_a_config_with_more_changes_than_listed_counts_them_all(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config diff lists MAX_CHANGES changes (100,000; lowered here): the file diff, the
    run diff's rows, its heading and its JSON count every change, not the listed ones."""
    from store.diff import structured

    monkeypatch.setattr(structured, "MAX_CHANGES", 250)
    for folder, value in ((pair.a, 0), (pair.b, 1)):
        (folder / "big.json").write_text(json.dumps({f"k{i}": value for i in range(300)}))
    age(pair.root)
    from tests.test_rundiff import index

    index(pair.root, pair.db_path)
    code, out, err = run(str(pair.a / "big.json"), str(pair.b / "big.json"))
    assert code == 1, err
    assert out.startswith("json: 300 change(s)\n")
    assert "50 more change(s) not listed: only the first 250 are" in out
    code, out, err = run(str(pair.a / "big.json"), str(pair.b / "big.json"), "--json")
    assert json.loads(out)["result"]["more"] == 50
    code, out, err = run("version_0", "version_1", "--db", str(pair.db_path))
    assert code == 1, err
    assert "configs: 2 file(s) changed, 301 value(s)" in out
    assert "big.json: … 100 more change(s)" in out  # 200 rows shown of 300
    code, out, err = run("version_0", "version_1", "--db", str(pair.db_path), "--json")
    config = next(c for c in json.loads(out)["configs"] if c["path"] == "big.json")
    assert len(config["changes"]) == 250 and config["more"] == 50
    assert config["notes"] == ["50 more change(s) not listed: only the first 250 are"]


def test_files_that_differ_only_in_unicode_normalisation_say_so(tmp_path: Path) -> None:
    """NFC ``café`` against NFD ``café``: a config, a table and a text file whose change
    printed as ``café → café`` (or ``-café`` ``+café``), a change that reads as none."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    (tmp_path / "a.yaml").write_text(f"{nfc}: 1\nname: {nfc}\n")
    (tmp_path / "b.yaml").write_text(f"{nfd}: 1\nname: {nfd}\n")
    code, out, err = run(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert code == 1, err
    assert out.splitlines()[1:] == [
        "- caf\\u00e9: 1  (key differs only in Unicode normalisation from an added one)",
        "~ name: caf\\u00e9 → cafe\\u0301  (differs only in Unicode normalisation)",
        "+ cafe\\u0301: 1  (key differs only in Unicode normalisation from a removed one)",
    ]
    (tmp_path / "a.csv").write_text(f"step,{nfc}\n0,{nfc}\n")
    (tmp_path / "b.csv").write_text(f"step,{nfd}\n0,{nfd}\n")
    code, out, err = run(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"))
    assert code == 1, err
    assert "+ column cafe\\u0301  (name differs only in Unicode normalisation" in out
    assert "- column caf\\u00e9  (name differs only in Unicode normalisation" in out
    (tmp_path / "c.csv").write_text(f"step,x\n0,{nfd}\n")
    (tmp_path / "d.csv").write_text(f"step,x\n0,{nfc}\n")
    code, out, err = run(str(tmp_path / "c.csv"), str(tmp_path / "d.csv"))
    assert "~ row 0, x: cafe\\u0301 → caf\\u00e9  (differs only in Unicode normalisation)" in out
    (tmp_path / "a.txt").write_text(f"x\n{nfc}\n")
    (tmp_path / "b.txt").write_text(f"x\n{nfd}\n")
    code, out, err = run(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert code == 1, err
    assert out.splitlines()[-1].startswith(
        "old line 2 and new line 2 look alike but differ only in Unicode normalisation"
    )
    (tmp_path / "c.txt").write_text(f"{nfc}\nx\n")
    (tmp_path / "d.txt").write_text(f"x\n{nfc}\n")  # the same line moved: no twin
    code, out, err = run(str(tmp_path / "c.txt"), str(tmp_path / "d.txt"))
    assert "normalisation" not in out


def test_a_run_with_more_warnings_than_a_diff_lists_says_how_many_it_left_out(
    pair: Pair,
) -> None:
    """The run diff names the first 20 of a run's own warnings: the rest are counted."""
    (pair.a / "hparams.yaml").write_text(
        "".join(f"k{i}: 1\n" for i in range(30)) + "".join(f"k{i}: 2\n" for i in range(30))
    )
    age(pair.root)
    from tests.test_rundiff import index

    index(pair.root, pair.db_path)
    meta = json.loads(next(r for r in run_rows(pair.db_path) if r[0] == "version_0")[1] or "{}")
    warnings = [w for w in meta.get("warnings", []) if isinstance(w, str)]
    assert len(warnings) > 20
    code, out, err = run("version_0", "version_1", "--db", str(pair.db_path), "--json")
    assert code == 1, err
    own = [w for w in json.loads(out)["warnings"] if w.startswith("version_0: ")]
    assert own[:20] == [f"version_0: {w}" for w in warnings[:20]]
    assert f"version_0: {len(warnings) - 20} more not shown" in own


def run_rows(db_path: Path) -> list[tuple[str, str]]:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return conn.execute("SELECT name, meta FROM runs").fetchall()


def test_a_changed_value_that_prints_alike_is_shown_with_its_type(pair: Pair) -> None:
    """``seed: !!str 1`` against ``seed: 1`` said ``1 → 1 (type changed)``; a YAML date
    against the same text quoted the date and not the string; ``"a "`` against ``"a"``
    read ``a  → a``.  Strings are quoted there and a date says it is one, in a file diff
    and in a run diff's config rows."""
    a, b = pair.a / "extra.yaml", pair.b / "extra.yaml"
    a.write_text('seed: !!str 1\nday: 2024-01-01\nname: "a "\nlr: 0.1\n')
    b.write_text('seed: 1\nday: "2024-01-01"\nname: "a"\nlr: 0.2\n')
    code, out, err = run(str(a), str(b))
    assert code == 1, err
    assert out.splitlines()[1:] == [
        '~ seed: "1" → 1  (type changed)',
        '~ day: 2024-01-01 (date) → "2024-01-01"  (type changed)',
        '~ name: "a " → "a"',
        "~ lr: 0.1 → 0.2",
    ]
    age(pair.root)
    index(pair.root, pair.db_path)
    code, out, err = run("version_0", "version_1", "--db", str(pair.db_path))
    assert code == 1, err
    assert '~ config\textra.yaml: seed\t"1"\t1\ttype changed' in out
    assert '~ config\textra.yaml: day\t2024-01-01 (date)\t"2024-01-01"\ttype changed' in out
    assert '~ config\textra.yaml: name\t"a "\t"a"\tchanged' in out
    assert "~ config\textra.yaml: lr\t0.1\t0.2\tchanged" in out


def test_a_metric_nan_in_both_runs_is_said_not_called_the_same(tmp_path: Path) -> None:
    """Two Lightning runs whose val_loss diverged to NaN: the diff said "runs are equal"
    with val_loss "same" (delta 0, better "same"), as if the loss were fine.  The runs
    are still equal, but the row, a note and --json say the NaN, with no delta and no
    better run."""
    root = tmp_path / "root"
    for version in ("version_0", "version_1"):
        folder = root / "logs" / version
        folder.mkdir(parents=True)
        (folder / "hparams.yaml").write_text("lr: 0.1\n")
        (folder / "metrics.csv").write_text("epoch,step,val_loss\n0,10,0.5\n1,20,nan\n")
    age(root)
    db_path = tmp_path / "index.db"
    index(root, db_path)
    code, out, err = run("version_0", "version_1", "--db", str(db_path))
    assert code == 0, err
    assert "runs are equal" in out
    assert "  metric\tval_loss\tnan\tnan\tNaN in both runs" in out
    assert "same" not in out
    line = (
        "metric val_loss is NaN in both runs (its last value): unchanged, but no run is "
        "better by it"
    )
    assert f"note: {line}" in out
    code, out, err = run("version_0", "version_1", "--db", str(db_path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["equal"] is True
    assert data["metrics"] == [
        {
            "name": "val_loss",
            "old": "NaN",
            "new": "NaN",
            "delta": None,
            "percent": None,
            "direction": "min",
            "better": None,
            "ambiguous": False,
            "only": None,
            "series": [],
        }
    ]
    assert line in data["warnings"]


def test_tables_equal_after_parsing_are_said_so_like_configs(tmp_path: Path) -> None:
    """Two CSVs with other delimiters, a BOM and CRLF: exit 0 and no word, as if the files
    were the same.  Equal after parsing is still exit 0 (as for configs: equal values), but
    the diff says so and what differs, in text and JSON."""
    (tmp_path / "a.csv").write_bytes(b"step;loss\n1;0.5\n")
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbfstep,loss\r\n1,0.5\r\n")
    code, out, err = run(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"))
    assert code == 0, err
    assert (
        "equal after parsing (delimiter ';' vs ','; UTF-8 byte order mark in the new file "
        "only; line ends LF vs CRLF)"
    ) in out
    code, out, err = run(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--json")
    data = json.loads(out)
    assert code == 0 and data["equal"] and len(data["result"]["layout"]) == 3
    code, out, _ = run(str(tmp_path / "a.csv"), str(tmp_path / "a.csv"))
    assert code == 0 and "equal after parsing" not in out


@pytest.mark.parametrize(
    ("other", "field", "old", "new"),
    [
        ("epoch,step,val_acc\n0,10,0.5\n1,20,0.57\n2,30,0.52\n", "best", 0.55, 0.57),
        ("epoch,step,val_acc\n0,10,0.55\n1,20,0.5\n2,30,0.51\n3,40,0.52\n", "n", 3, 4),
    ],
    ids=["another-best", "more-steps"],
)
def test_runs_ending_on_the_same_value_with_other_series_are_not_equal(
    tmp_path: Path, other: str, field: str, old: float, new: float
) -> None:
    """Two runs whose val_acc ends on the same value, one with a higher best (its best
    checkpoint differs) or more epochs: the diff said "runs are equal", val_acc "same"."""
    root = tmp_path / "root"
    texts = {"version_0": "epoch,step,val_acc\n0,10,0.5\n1,20,0.55\n2,30,0.52\n"}
    texts["version_1"] = other
    for version, text in texts.items():
        folder = root / "logs" / version
        folder.mkdir(parents=True)
        (folder / "hparams.yaml").write_text("lr: 0.1\n")
        (folder / "metrics.csv").write_text(text)
    age(root)
    db_path = tmp_path / "index.db"
    index(root, db_path)
    code, out, err = run("version_0", "version_1", "--db", str(db_path), "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["equal"] is False
    (metric,) = data["metrics"]
    assert (metric["old"], metric["new"], metric["delta"]) == (0.52, 0.52, 0)
    assert {"field": field, "old": old, "new": new} in metric["series"]
    code, out, err = run("version_0", "version_1", "--db", str(db_path))
    assert code == 1, err
    assert "runs are equal" not in out
    assert "last same; " in out
    assert "metrics: 1 of 1 changed" in out  # the heading counts it too (it read 0 of 1)


@pytest.mark.parametrize("text_b", ["lr: 0.2\nname: tiny\n", "name: tiny\nlr: 0.1\n"])
def test_configs_not_hashed_yet_are_compared_by_value(tmp_path: Path, text_b: str) -> None:
    """Two configs of the same size, just written, so not hashed: the configs section said
    "0 file(s) changed" while lr went from 0.1 to 0.2 (the params line alone said so)."""
    root = tmp_path / "root"
    for run_name, text in (("run1", "lr: 0.1\nname: tiny\n"), ("run2", text_b)):
        (root / run_name).mkdir(parents=True)
        (root / run_name / "config.yaml").write_text(text)
        (root / run_name / "metrics.csv").write_text("step,loss\n1,0.5\n")
    db_path = tmp_path / "index.db"
    index(root, db_path, hash_files=False)
    code, out, err = run("run1", "run2", "--db", str(db_path), "--json")
    assert code == 1, err
    configs = json.loads(out)["configs"]
    if "0.2" in text_b:
        assert [c["path"] for c in configs] == ["config.yaml"]
        (change,) = configs[0]["changes"]
        assert (change["key"], change["old"], change["new"]) == ("lr", 0.1, 0.2)
        code, out, _ = run("run1", "run2", "--db", str(db_path))
        assert "configs: 1 file(s) changed, 1 value(s)" in out
    else:  # the same values in another order: no config change to report
        assert configs == []


_AS_NOBODY = """
import json, sys
from click.testing import CliRunner
from tui.cli import main
root, db = sys.argv[1], sys.argv[2]
done = CliRunner().invoke(main, ["index", root, "--db", db])
assert done.exit_code == 0, done.output
found = {}
for a, b in (("base", "edited"), ("edited", "base"), ("edited", "listed")):
    ran = CliRunner().invoke(main, ["diff", a, b, "--db", db, "--json"])
    found[a + "-" + b] = [ran.exit_code, json.loads(ran.stdout)]
print(json.dumps(found))
"""


def test_files_under_a_folder_one_side_could_not_list_are_unknown_not_added() -> None:
    """``base/dir`` cannot be listed (mode 000) and ``listed/dir`` can be listed but not
    entered (0644): the other run's ``dir/model.ckpt`` was "added" (or "removed") and the
    runs "differ", though the blind run may hold the very file.  It is unknown, with a
    note naming the side and the folder, and the verdict is unknown: from the disk as from
    what the index recorded of the scan that could not read them."""
    from store.diff._io import read_capped
    from store.index.db import open_db
    from store.index.query import resolve_run
    from store.rundiff import diff_sides, run_verdict
    from tests.conftest import unprivileged_env, unprivileged_python

    python = unprivileged_python() if os.geteuid() == 0 else [sys.executable]
    base = Path(tempfile.mkdtemp(prefix="artlens-diff-"))
    root = base / "rd"
    closed = (root / "base" / "dir", root / "listed" / "dir")
    try:
        base.chmod(0o777)
        for name in ("base", "edited", "listed"):
            (root / name / "dir").mkdir(parents=True)
            (root / name / "config.yaml").write_text("lr: 0.1\n")
            (root / name / "dir" / "model.ckpt").write_bytes(MODEL)
        age(root)
        closed[0].chmod(0)
        closed[1].chmod(0o644)
        ran = subprocess.run(
            [*python, "-c", _AS_NOBODY, str(root), str(base / "index.db")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env=unprivileged_env(base),
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        found = json.loads(ran.stdout)
        for pair, (side, place, why) in {
            "base-edited": ("A (base)", "dir", "not listed: Permission denied"),
            "edited-base": ("B (base)", "dir", "not listed: Permission denied"),
            "edited-listed": ("B (listed)", "dir/model.ckpt", "not examined: Permission denied"),
        }.items():
            code, data = found[pair]
            artifacts = data["artifacts"]
            assert (artifacts["added"], artifacts["removed"]) == ([], []), pair
            assert artifacts["unknown"] == ["dir/model.ckpt"], pair
            assert (code, data["equal"], data["verdict"]) == (1, False, "unknown"), pair
            assert any(
                line.startswith(f"artifacts of {side} could not all be listed: {place} ({why})")
                for line in data["unknown"]
            ), (pair, data["unknown"])
        db = open_db(base / "index.db", readonly=True)
        try:  # what the index recorded, diffed without the disk (as a mirror is)
            a, b = resolve_run(db, "base"), resolve_run(db, "edited")
            notes: list[str] = []
            result = diff_sides(db, a, db, b, notes, read_capped, read_capped)
        finally:
            db.conn.close()
        assert (result.artifacts.added, result.artifacts.unknown) == ([], ["dir/model.ckpt"])
        assert run_verdict(result) == "unknown"
        assert any("artifacts of A (base) could not all be listed: dir (" in n for n in notes)
    finally:
        for folder in closed:
            folder.chmod(0o755)
        shutil.rmtree(base)
