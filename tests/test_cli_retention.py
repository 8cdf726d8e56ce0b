"""``artlens retention``, ``trash`` and ``du`` on real trees, a real index and real moves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_retention_support import snapshot, write

from store.index.db import open_db
from store.lock import WriterLock
from store.retention.trash import TRASH_DIR
from tui.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
KEEP_LAST_BEST = ["--keep-last", "1", "--keep-best", "1", "--metric", "val_loss"]


@pytest.fixture(autouse=True)
def isolated(isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plans, the user config and pins under tmp_path, never in the real home folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return isolated_cache


def run(*args: str, db: Path) -> Result:
    return CliRunner().invoke(main, [*args, "--db", str(db)], catch_exceptions=False)


def ok(*args: str, db: Path) -> Result:
    result = run(*args, db=db)
    assert result.exit_code == 0, result.output
    return result


def ok_json(*args: str, db: Path) -> Any:
    return json.loads(ok(*args, "--json", db=db).stdout)


def real_outputs(tmp_path: Path) -> tuple[list[Path], Path]:
    """The real Lightning and HF Trainer outputs, copied (mtimes kept), indexed."""
    roots = []
    for name in ("lightning", "hf-trainer"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
        roots.append(tmp_path / name)
    db = tmp_path / "index.db"
    ok("index", *map(str, roots), db=db)
    return roots, db


def files_outside_trash(root: Path) -> dict[str, str]:
    return {k: v for k, v in snapshot(root).items() if not k.startswith(TRASH_DIR)}


def test_plan_json_shape(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    plan = ok_json("retention", "plan", *KEEP_LAST_BEST, db=db)
    assert set(plan) == {
        "id",
        "saved_to",
        "created",
        "bytes_freed",
        "roots",
        "runs",
        "items",
        "expiring_soon",
        "filesystems",
        "warnings",
        "links",
    }
    assert Path(plan["saved_to"]).is_file()
    assert {r["root"] for r in plan["roots"]} == {str(r) for r in roots}
    assert set(plan["roots"][0]) >= {"policy", "kept", "removed", "bytes_removed", "total_bytes"}
    item = plan["items"][0]
    assert set(item) == {
        "root",
        "run",
        "path",
        "is_dir",
        "size_bytes",
        "keep",
        "reasons",
        "step",
        "epoch",
        "metric",
        "metric_source",
        "expires",
    }
    assert plan["bytes_freed"] == sum(i["size_bytes"] for i in plan["items"] if not i["keep"])
    assert plan["filesystems"][0]["free_now"] > 0
    assert plan["warnings"] == []


def test_real_outputs_keep_last_and_best_then_restore_byte_identical(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    before = {root: files_outside_trash(root) for root in roots}
    plan = ok_json("retention", "plan", *KEEP_LAST_BEST, db=db)
    kept = {(Path(i["root"]).name, i["path"]) for i in plan["items"] if i["keep"]}
    expected_kept = set()
    for version, best in (("0", "epoch3-val0.0592"), ("1", "epoch3-val0.0829")):
        ckpts = f"lightning_logs/version_{version}/checkpoints"
        expected_kept |= {
            ("lightning", f"{ckpts}/last.ckpt"),
            ("lightning", f"{ckpts}/{best}.ckpt"),
        }
    ckpts = "lightning_logs/version_2/checkpoints"
    expected_kept |= {
        ("lightning", f"{ckpts}/last.ckpt"),
        ("lightning", f"{ckpts}/epoch3-val0.1993.ckpt"),
    }
    # HF: checkpoint-6 is the latest and the best eval_loss; checkpoint-2 is the trainer's best.
    expected_kept |= {("hf-trainer", "out/checkpoint-6"), ("hf-trainer", "out/checkpoint-2")}
    assert kept == expected_kept
    reasons = {i["path"]: i["reasons"] for i in plan["items"]}
    assert reasons["lightning_logs/version_0/checkpoints/epoch3-val0.0592.ckpt"] == [
        "best val_loss 0.0591995",
        "trainer's best_model_path (ModelCheckpoint monitoring val_loss)",  # its own state's
    ]
    # the Trainer logged eval_loss, not the val_loss asked: the reason names what was read
    assert reasons["out/checkpoint-6"] == ["latest 1", "best eval_loss 0.693798 (for val_loss)"]
    removed = sorted(i["path"] for i in plan["items"] if not i["keep"])
    assert removed == [
        f"lightning_logs/version_{v}/checkpoints/epoch2-val{x}.ckpt"
        for v, x in (("0", "0.0854"), ("1", "0.1158"), ("2", "0.2364"))
    ]

    done = ok_json("retention", "apply", plan["id"], "--yes", db=db)
    assert done["applied"] and done["index_updated"]
    assert sorted(d["path"] for d in done["done"]) == removed and not done["skipped"]
    for path in removed:
        assert not (roots[0] / path).exists()
    listed = ok_json("trash", "list", db=db)
    assert sorted(e["path"] for e in listed) == removed
    index = open_db(db, readonly=True)
    try:
        paths = {bytes(p[0]).decode() for p in index.conn.execute("SELECT path FROM artifacts")}
    finally:
        index.close()
    assert not set(removed) & paths  # the index followed the moves

    restored = ok_json("trash", "restore", "--all", db=db)
    assert sorted(d["path"] for d in restored["done"]) == removed
    assert {root: files_outside_trash(root) for root in roots} == before
    assert ok_json("trash", "list", db=db) == []


def test_the_printed_plan_names_the_metric_keep_best_read(tmp_path: Path) -> None:
    """Each framework logs its own twin of the loss (HF eval_loss, Lightning val_loss):
    the plan names the one whose value it used and, after it, the one asked for."""
    roots, db = real_outputs(tmp_path)
    hf = ok("retention", "plan", str(roots[1]), *KEEP_LAST_BEST, db=db).output
    assert "checkpoint-6/  " in hf
    assert hf.count("latest 1; best eval_loss 0.693798 (for val_loss)\n") == 1
    assert "best val_loss" not in hf
    for asked, reason in (
        ("eval_loss", "best val_loss 0.0591995 (for eval_loss)"),  # from metrics.csv
        ("val_loss", "best val_loss 0.0591995"),
    ):
        lines = ok(
            "retention", "plan", str(roots[0]), "--keep-best", "1", "--metric", asked, db=db
        ).output.splitlines()
        (line,) = [x for x in lines if "checkpoints/epoch3-val0.0592.ckpt" in x]
        own = "trainer's best_model_path (ModelCheckpoint monitoring val_loss)"
        assert line.startswith("    keep ") and line.endswith(f"  {reason}; {own}"), line


def test_apply_without_yes_changes_nothing(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    before = {root: snapshot(root) for root in roots}
    result = ok("retention", "apply", *KEEP_LAST_BEST, db=db)
    assert "dry run" in result.output and "3 item(s)" in result.output
    dry = ok_json("retention", "apply", *KEEP_LAST_BEST, db=db)
    assert dry["applied"] is False and len(dry["would_remove"]) == 3
    assert {root: snapshot(root) for root in roots} == before
    assert not (roots[0] / TRASH_DIR).exists()


def test_pinned_checkpoint_is_kept(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    target = roots[0] / "lightning_logs/version_1/checkpoints/epoch2-val0.1158.ckpt"
    ok("retention", "pin", str(target), db=db)
    pins = ok_json("retention", "pins", db=db)
    assert pins == [
        {
            "root": str(roots[0]),
            "path": "lightning_logs/version_1/checkpoints/epoch2-val0.1158.ckpt",
            "glob": False,
        }
    ]
    plan = ok_json("retention", "plan", *KEEP_LAST_BEST, db=db)
    item = next(i for i in plan["items"] if i["path"].endswith("epoch2-val0.1158.ckpt"))
    assert item["keep"] and item["reasons"][0] == "pinned"
    ok_json("retention", "apply", plan["id"], "--yes", db=db)
    assert target.exists()
    ok("retention", "unpin", str(target), db=db)
    again = ok_json("retention", "plan", *KEEP_LAST_BEST, db=db)
    item = next(i for i in again["items"] if i["path"].endswith("epoch2-val0.1158.ckpt"))
    assert not item["keep"]


def _run_of_folders_and_files(tmp_path: Path) -> tuple[Path, Path]:
    """runB: checkpoint-1..3/ folders and epoch=1..3.ckpt files, oldest first, indexed."""
    root = tmp_path / "root"
    for step in (1, 2, 3):
        age = (10 - step) * 3600.0
        write(root / "runB" / f"checkpoint-{step}" / "model.safetensors", os.urandom(64), age=age)
        write(root / "runB" / f"checkpoint-{step}" / "optimizer.pt", os.urandom(32), age=age)
        write(root / "runB" / f"epoch={step}.ckpt", os.urandom(16), age=age - 60.0)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    return root, db


def test_a_pin_made_after_the_plan_still_keeps_what_it_names(tmp_path: Path) -> None:
    """Retention never removes a pin: a saved plan applied after `retention pin` skips the
    pinned checkpoint, and the checkpoint folder a pinned file lies in."""
    root, db = _run_of_folders_and_files(tmp_path)
    plan = ok_json("retention", "plan", "--keep-last", "1", db=db)
    assert {i["path"] for i in plan["items"] if not i["keep"]} == {
        "runB/checkpoint-1",
        "runB/checkpoint-2",
        "runB/checkpoint-3",
        "runB/epoch=1.ckpt",
        "runB/epoch=2.ckpt",
    }
    before = snapshot(root)
    pinned_file = root / "runB" / "checkpoint-2" / "optimizer.pt"
    ok("retention", "pin", str(root / "runB" / "epoch=1.ckpt"), str(pinned_file), db=db)
    result = run("retention", "apply", plan["id"], "--yes", "--json", db=db)
    assert result.exit_code == 1, result.output  # not everything the plan asked for went
    report = json.loads(result.stdout)
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert sorted(result.stderr.splitlines()) == [
        "artlens: skipped runB/checkpoint-2: runB/checkpoint-2/optimizer.pt inside it is"
        " pinned; retention never removes it",
        "artlens: skipped runB/epoch=1.ckpt: pinned; retention never removes it",
    ]
    assert skipped == {
        "runB/epoch=1.ckpt": "pinned; retention never removes it",
        "runB/checkpoint-2": (
            "runB/checkpoint-2/optimizer.pt inside it is pinned; retention never removes it"
        ),
    }
    assert sorted(d["path"] for d in report["done"]) == [
        "runB/checkpoint-1",
        "runB/checkpoint-3",
        "runB/epoch=2.ckpt",
    ]
    after = files_outside_trash(root)
    for rel in ("runB/epoch=1.ckpt", "runB/checkpoint-2/optimizer.pt"):
        assert after[rel] == before[rel]


def test_a_file_pinned_inside_a_checkpoint_folder_keeps_the_folder(tmp_path: Path) -> None:
    """Removing the folder would remove the pinned file: the plan keeps it, as pinned."""
    root, db = _run_of_folders_and_files(tmp_path)
    ok("retention", "pin", str(root / "runB" / "checkpoint-2" / "model.safetensors"), db=db)
    plan = ok_json("retention", "plan", "--keep-last", "1", db=db)
    kept = {i["path"]: i["reasons"] for i in plan["items"] if i["keep"]}
    assert kept == {"runB/checkpoint-2": ["pinned"], "runB/epoch=3.ckpt": ["latest 1"]}


def test_a_pin_names_a_file_as_the_index_does_or_is_refused(tmp_path: Path) -> None:
    """A mistyped pin said "pinned" and protected nothing; a path through a symlinked
    folder was pinned under the link, which the index (never following links) never
    names, so the file stayed unprotected.  A path neither on disk nor in the index is an
    error; one through a link is pinned where it lies, or refused outside every root."""
    root, db = _run_of_folders_and_files(tmp_path)
    (root / "alias").symlink_to(root / "runB")
    (tmp_path / "via").symlink_to(root / "runB")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "model.ckpt").write_bytes(b"x")
    (root / "out").symlink_to(tmp_path / "elsewhere")
    for wrong, said in (
        (root / "runB" / "epoch=9.ckpt", "no such file or folder, on disk or in the index"),
        (root / "runC" / "checkpoint-1", "no such file or folder, on disk or in the index"),
        (root / "out" / "model.ckpt", "outside every indexed root"),
    ):
        refused = run("retention", "pin", str(wrong), db=db)
        assert refused.exit_code == 2, refused.output
        assert refused.stderr.count("\n") == 1 and said in refused.stderr, refused.stderr
    assert ok_json("retention", "pins", db=db) == []
    (root / "runB" / "epoch=2.ckpt").unlink()  # gone from disk, still in the index
    ok("retention", "pin", str(root / "runB" / "epoch=2.ckpt"), db=db)
    said = ok("retention", "pin", str(root / "alias" / "epoch=3.ckpt"), db=db).stdout
    assert said == f"pinned runB/epoch=3.ckpt in {root}\n"
    ok("retention", "pin", str(tmp_path / "via" / "checkpoint-1"), db=db)
    pins = [p["path"] for p in ok_json("retention", "pins", db=db)]
    assert pins == ["runB/checkpoint-1", "runB/epoch=2.ckpt", "runB/epoch=3.ckpt"]
    plan = ok_json("retention", "plan", "--keep-last", "1", db=db)
    kept = {i["path"] for i in plan["items"] if i["keep"] and "pinned" in i["reasons"]}
    assert kept == {"runB/checkpoint-1", "runB/epoch=2.ckpt", "runB/epoch=3.ckpt"}
    undone = ok("retention", "unpin", str(root / "alias" / "epoch=3.ckpt"), db=db).stdout
    assert undone == "unpinned runB/epoch=3.ckpt\n"
    from store.userstate import UserState

    with UserState() as state:  # a pin made through the link before pins were resolved
        state.pin(str(root), "alias/epoch=1.ckpt", glob=False)
    undone = ok("retention", "unpin", str(root / "alias" / "epoch=1.ckpt"), db=db).stdout
    assert undone == "unpinned alias/epoch=1.ckpt\n"


def test_the_policy_line_shows_control_characters_escaped(tmp_path: Path) -> None:
    """A root's .artlens.toml is a file on disk like any other: a metric name or a pin
    holding ESC or BEL reached the terminal raw in the plan's policy line."""
    root, db = _run_of_folders_and_files(tmp_path)
    (root / ".artlens.toml").write_text(
        '[retention]\nkeep_best = 1\nmode = "min"\nmetric = "\\u001b[31mx\\u0007"\n'
        'pin = ["\\u001b]0;title\\u0007"]\n'
    )
    text = ok("retention", "plan", str(root), db=db).output
    policy = next(line for line in text.splitlines() if "policy: " in line)
    assert "\x1b" not in text and "\x07" not in text
    assert "keep_best=1 \\e[31mx\\x07 (min)" in policy


def test_policy_file_and_no_policy(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    text = ok("retention", "plan", str(roots[1]), db=db).output
    assert "no policy: keeping everything" in text
    (roots[0] / ".artlens.toml").write_text("[retention]\nkeep_last = 1\n")
    plan = ok_json("retention", "plan", str(roots[0]), db=db)
    assert plan["roots"][0]["policy"].startswith("keep_last=1")
    # each run's last.ckpt and ModelCheckpoint's best (its state names it) stay
    assert sum(not i["keep"] for i in plan["items"]) == 3
    (roots[0] / ".artlens.toml").write_text("[retention]\nkeep_lats = 1\n")
    bad = run("retention", "plan", str(roots[0]), db=db)
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1 and ".artlens.toml:2:" in bad.stderr


def test_watcher_holding_the_lock_applies_through_the_filesystem(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    with WriterLock(db, role="watch"):
        result = run("retention", "apply", *KEEP_LAST_BEST, "--yes", "--json", db=db)
    assert result.exit_code == 0, result.output
    assert "moving files only" in result.stderr and result.stderr.count("\n") == 1
    report = json.loads(result.stdout)
    assert len(report["done"]) == 3 and report["index_updated"] is False
    assert all(not (roots[0] / d["path"]).exists() for d in report["done"])
    ok("trash", "restore", "--all", db=db)
    assert all((roots[0] / d["path"]).exists() for d in report["done"])


def test_restore_by_id_and_purge(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for step in (1, 2, 3):
        write(root / "run" / f"step_{step}.pt", os.urandom(64), age=5000.0 - step)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    ok("retention", "apply", "--keep-last", "1", "--yes", db=db)
    entries = ok_json("trash", "list", db=db)
    assert sorted(e["path"] for e in entries) == ["run/step_1.pt", "run/step_2.pt"]
    first = next(e for e in entries if e["path"] == "run/step_1.pt")
    ok("trash", "restore", first["id"][:8], db=db)
    assert (root / "run" / "step_1.pt").exists()
    dry = ok("trash", "purge", "--older-than", "0", db=db)
    assert "dry run" in dry.output and (root / TRASH_DIR).exists()
    purged = ok_json("trash", "purge", "--older-than", "0", "--yes", db=db)
    assert [d["path"] for d in purged["done"]] == ["run/step_2.pt"]
    assert ok_json("trash", "list", db=db) == []
    assert not (root / "run" / "step_2.pt").exists()


def test_a_purge_that_did_not_finish_is_said_and_finished_by_the_next(tmp_path: Path) -> None:
    """A purge killed half-way (its intent line written, part of the folder deleted) left
    the item listed as if whole, and every later purge said "nothing in the trash is that
    old": the list says so, and the next purge finishes it whatever its age."""
    root, db = _run_of_folders_and_files(tmp_path)
    ok("retention", "apply", "--keep-last", "1", "--yes", db=db)
    entry = next(e for e in ok_json("trash", "list", db=db) if e["path"] == "runB/checkpoint-1")
    (root / entry["trash_path"] / "model.safetensors").unlink()  # what the purge deleted
    with open(root / TRASH_DIR / "manifest.jsonl", "a") as manifest:
        manifest.write(json.dumps({"op": "purge-intent", "id": entry["id"], "ts": 1.0}) + "\n")
    listed = ok("trash", "list", db=db).output
    line = next(x for x in listed.splitlines() if "runB/checkpoint-1/" in x)
    assert "[purge not finished" in line
    assert (
        "would purge runB/checkpoint-1 "
        in ok("trash", "purge", "--older-than", "30d", db=db).output
    )
    purged = ok_json("trash", "purge", "--older-than", "30d", "--yes", db=db)
    assert [d["path"] for d in purged["done"]] == ["runB/checkpoint-1"] and not purged["skipped"]
    assert not (root / entry["trash_path"]).exists()
    assert "runB/checkpoint-1" not in {e["path"] for e in ok_json("trash", "list", db=db)}


def test_errors_are_one_line(tmp_path: Path) -> None:
    _, db = real_outputs(tmp_path)
    for args in (
        ["retention", "plan", "--older-than", "7x"],
        ["retention", "plan", "--keep-best", "1"],
        ["retention", "plan", str(tmp_path / "elsewhere")],
        ["retention", "apply", "no-such-plan"],
        ["retention", "apply", "../../etc"],
        ["trash", "restore"],
        ["trash", "restore", "abc"],
        ["trash", "purge", "--older-than", "soon"],
    ):
        result = run(*args, db=db)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("artlens: error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("where", ["flag", "policy text", "policy number"])
def test_a_budget_too_large_to_save_is_one_line(tmp_path: Path, where: str) -> None:
    """A budget is saved in the plan, which holds sizes below 8 EiB: a larger one (or one
    of hundreds of digits, infinite as a float) is refused when read, never a plan that
    cannot be applied afterwards, nor an OverflowError."""
    roots, db = real_outputs(tmp_path)
    huge = "1" + "0" * 400
    for size in ("99999999999P", f"{huge}G"):
        if where == "flag":
            args = ["--keep-last", "1", "--keep-within-budget", size]
        else:
            value = f'"{size}"' if where == "policy text" else huge
            (roots[0] / ".artlens.toml").write_text(
                f"[retention]\nkeep_last = 1\nbudget = {value}\n"
            )
            args = []
        result = run("retention", "plan", str(roots[0]), *args, db=db)
        _one_line_error(result, "too large")
        if where != "flag":
            assert ".artlens.toml:3:" in result.stderr


def _stale_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A run of four checkpoints indexed, then its newest deleted: the index is stale."""
    root = tmp_path / "r2"
    for epoch in (1, 2, 3, 4):
        write(root / "runA" / f"epoch={epoch}.ckpt", f"a{epoch}\n".encode(), age=2 * 86400.0)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    (root / "runA" / "epoch=4.ckpt").unlink()
    return root, db


def _saved(plan_id: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "xdg-state" / "artlens" / "plans" / f"{plan_id}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _one_line_error(result: Result, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("artlens: error: ") and result.stderr.count("\n") == 1
    assert all(part in result.stderr for part in parts), result.stderr


def test_a_stale_index_never_empties_a_run(tmp_path: Path) -> None:
    """keep-last 1 on a stale index keeps epoch=4, which is gone: applying a saved plan, or
    one made on the spot, skips the whole run instead of trashing epochs 1 to 3."""
    root, db = _stale_setup(tmp_path)
    plan_id = ok_json("retention", "plan", "--keep-last", "1", db=db)["id"]
    assert [row[3] for row in _saved(plan_id, tmp_path)["kept_units"]] == ["runA/epoch=4.ckpt"]
    for args in ([plan_id], ["--keep-last", "1"]):
        result = run("retention", "apply", *args, "--yes", "--json", db=db)
        assert result.exit_code == 1, result.output
        report = json.loads(result.stdout)
        assert report["done"] == [] and len(report["skipped"]) == 3
        assert len(result.stderr.splitlines()) == 3
        assert {s["reason"] for s in report["skipped"]} == {
            "kept runA/epoch=4.ckpt is gone since the plan: run skipped; re-index and plan again"
        }
    assert sorted(p.name for p in (root / "runA").iterdir()) == [
        "epoch=1.ckpt",
        "epoch=2.ckpt",
        "epoch=3.ckpt",
    ]
    ok("index", str(root), db=db)  # fresh again: the plan keeps epoch=3 and goes ahead
    report = ok_json("retention", "apply", "--keep-last", "1", "--yes", db=db)
    assert sorted(d["path"] for d in report["done"]) == ["runA/epoch=1.ckpt", "runA/epoch=2.ckpt"]


def test_a_plan_naming_a_folder_outside_the_index_is_refused(tmp_path: Path) -> None:
    """A hand-edited plan that names a folder the index does not hold as a root moves
    nothing, not even in a dry run: one line names the root."""
    root = tmp_path / "r1"
    for epoch in (1, 2):
        write(root / "runA" / f"epoch={epoch}.ckpt", f"a{epoch}\n".encode(), age=2 * 86400.0)
    canary = tmp_path / "canary"
    write(canary / "c.ckpt", b"CANARY\n", age=2 * 86400.0)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    data = _saved(ok_json("retention", "plan", "--keep-last", "1", db=db)["id"], tmp_path)
    st = os.stat(canary / "c.ckpt")
    data["item_roots"] = [str(canary)]
    data["kept_units"] = []
    identity = [st.st_size, st.st_mtime_ns, st.st_ino]
    data["removals"] = [[0, 1, "runA", "c.ckpt", False, *identity, "file", "x", ["r"], []]]
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps(data))
    for yes in ([], ["--yes"]):
        result = run("retention", "apply", str(evil), *yes, db=db)
        _one_line_error(result, f"names {canary}, which is not a root of this index")
    assert (canary / "c.ckpt").read_bytes() == b"CANARY\n" and not (canary / TRASH_DIR).exists()


def _mutations() -> dict[str, Any]:
    """What a hand-edited plan may hold, and the field its one-line error names."""

    def removal(index: int, value: Any) -> Any:
        return lambda d: d["removals"][0].__setitem__(index, value)

    return {
        "root out of range": (removal(0, 99), "removals row 1, root"),
        "a short row": (lambda d: d["removals"][0].pop(), "removals row 1 does not have 12"),
        "a bool size": (removal(5, True), "removals row 1, size"),
        "a lone surrogate": (removal(3, "run/\ud800"), "removals row 1, path is not text"),
        "a NUL": (removal(2, "r\0"), "removals row 1, run_path is not text"),
        "a path up": (removal(3, "../x"), "removals row 1, path is not a normalised"),
        "a member outside": (
            lambda d: d["removals"][0].__setitem__(11, [["x", 1, 1, 1, "file", None]]),
            "removals row 1, members are listed for a file",
        ),
        "no removals": (lambda d: d.pop("removals"), "removals is missing"),
        "a kept row of 3": (lambda d: d["kept_units"].append([0, 1, 2]), "kept_units row 2"),
        "a NaN time": (lambda d: d.__setitem__("created", float("nan")), "created is not a time"),
        "a run field more": (lambda d: d["runs"][0].__setitem__("x", 1), "runs entry 1"),
        "an older version": (
            lambda d: d.__setitem__("version", 1),
            "a plan from an older artlens (version 1): plan again",
        ),
    }


@pytest.mark.parametrize("case", sorted(_mutations()))
def test_a_saved_plan_out_of_shape_is_one_line(tmp_path: Path, case: str) -> None:
    """Every field of a saved plan is checked: one line naming the plan and the field."""
    root, db = _stale_setup(tmp_path)
    plan_id = ok_json("retention", "plan", "--keep-last", "1", db=db)["id"]
    data = _saved(plan_id, tmp_path)
    mutate, named = _mutations()[case]
    mutate(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = run("retention", "apply", str(bad), "--yes", db=db)
    _one_line_error(result, f"cannot load plan {bad}: ", named)
    assert "'removals'" not in result.stderr and "unpack" not in result.stderr
    assert len(list((root / "runA").iterdir())) == 3


@pytest.mark.parametrize("kind", ["fifo", "folder", "device", "deep", "planted link"])
def test_a_plan_path_that_is_no_regular_file_is_one_line(tmp_path: Path, kind: str) -> None:
    """A FIFO would block the open for ever, a device could be endless, JSON nested
    100,000 deep overflows the parser, and the plans folder holds no links artlens made:
    each is one line, fast (a subprocess, so a hang fails the test instead of stalling)."""
    _, db = _stale_setup(tmp_path)
    plans = tmp_path / "xdg-state" / "artlens" / "plans"
    plans.mkdir(parents=True)
    target = tmp_path / f"{kind.replace(' ', '-')}.json"
    why = "not a regular file"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    elif kind == "device":
        target.symlink_to("/dev/zero")
    elif kind == "deep":
        target.write_text("[" * 100_000)
        why = "not a plan (JSON nested too deeply)"
    else:
        os.mkfifo(tmp_path / "elsewhere")
        (plans / "20260101-000000-0123abcd.json").symlink_to(tmp_path / "elsewhere")
        target = plans / "20260101-000000-0123abcd.json"
        why = "it is a symlink; give the file it points to"
    name = target.stem if kind == "planted link" else str(target)
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "retention", "apply", name, "--yes", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"artlens: error: cannot load plan {target}: {why}\n"


def test_du_json(tmp_path: Path) -> None:
    roots, db = real_outputs(tmp_path)
    usage = ok_json("du", db=db)
    sizes = [r["size_bytes"] for r in usage["roots"]]
    assert sizes == sorted(sizes, reverse=True)
    lightning = next(r for r in usage["roots"] if r["root"] == str(roots[0]))
    assert lightning["runs"][0]["run"] == "lightning_logs/version_2"
    dup = next(g for g in usage["duplicates"] if len(g["copies"]) == 3)
    assert dup["reclaimable_bytes"] == 2 * dup["size_bytes"]


@pytest.mark.parametrize("config", ["deep", "fifo"])
def test_a_policy_nested_too_deeply_or_no_regular_file_is_one_line(
    tmp_path: Path, config: str
) -> None:
    root = tmp_path / "root"
    for step in (1, 2):
        write(root / "run" / f"step_{step}.pt", os.urandom(64), age=5000.0 - step)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    policy_file = root / ".artlens.toml"
    if config == "deep":
        policy_file.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
        why = "nested too deeply"
    else:
        os.mkfifo(policy_file)  # read as a file, this would block the command
        why = "cannot read (not a regular file)"
    for args in (["retention", "plan"], ["retention", "apply", "--yes"], ["check"]):
        result = run(*args, db=db)
        assert result.exit_code == 2, args
        assert result.stderr == f"artlens: error: {policy_file}: {why}\n", args
    assert sorted(p.name for p in (root / "run").iterdir()) == ["step_1.pt", "step_2.pt"]
    assert not (root / TRASH_DIR).exists()


def test_du_names_what_the_index_could_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_checklist import index_tree
    from tests.test_scan import deny_listing, run_tree

    root = tmp_path / "pc"
    run_tree(root)
    db = tmp_path / "index.db"
    with monkeypatch.context() as denied:
        deny_listing(denied, root / "runD" / "out")
        index_tree(root, db)
    text = ok("du", db=db).stdout
    assert (
        "          1 folder could not be read: runD/out (permission denied);"
        " what they hold counts as last seen, or not at all\n"
    ) in text
    assert "    runD  (1 place could not be read)\n" in text
    usage = ok_json("du", db=db)
    (shown,) = usage["roots"]
    assert shown["unreadable"] == [
        {"path": "runD/out", "kind": "folder", "reason": "permission denied"}
    ]
    assert shown["runs"][0]["unreadable"] == 1
    assert shown["experiments"][0]["unreadable"] == 1
    index_tree(root, db)  # readable again
    assert "could not be read" not in ok("du", db=db).stdout
    assert ok_json("du", db=db)["roots"][0]["unreadable"] == []


def test_du_on_an_index_that_does_not_record_what_it_could_not_read(tmp_path: Path) -> None:
    write(tmp_path / "root" / "run" / "step_1.pt", b"x", age=5000.0)
    db = tmp_path / "index.db"
    ok("index", str(tmp_path / "root"), db=db)
    older = open_db(db)
    older.execute("DROP VIEW unreadable_text")
    older.execute("DROP TABLE unreadable")
    older.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_unreadable'")
    older.close()
    assert "is not recorded in this index yet" in ok("du", db=db).stdout
    assert ok_json("du", db=db)["roots"][0]["unreadable"] is None


def test_du_counts_a_file_under_two_roots_once(tmp_path: Path) -> None:
    outer = tmp_path / "r1"
    write(outer / "runA" / "epoch=1.ckpt", b"a\n", age=5000.0)
    write(tmp_path / "r2" / "runB" / "epoch=1.ckpt", b"b\n", age=5000.0)
    db = tmp_path / "index.db"
    ok("index", str(outer), str(outer / "runA"), str(tmp_path / "r2"), db=db)
    text = ok("du", db=db).stdout
    assert (
        f"roots overlap: {outer / 'runA'} lies inside {outer}: 1 file (2B) counted under both"
    ) in text
    assert "      4B  in all (2 files, each counted once)\n" in text
    assert "duplicates" not in text  # one file under two roots is no copy of itself
    usage = ok_json("du", db=db)
    inner = next(r for r in usage["roots"] if r["root"] == str(outer / "runA"))
    assert inner["shared"] == [{"root": str(outer), "files": 1, "size_bytes": 2}]
    assert usage["all_roots"] == {"size_bytes": 4, "files": 2, "unchecked": []}
    assert usage["duplicates"] == []


def test_du_hard_links_are_one_file_not_copies(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "runA" / "e.ckpt", b"abc\n", age=5000.0)
    write(root / "runB" / "copy.ckpt", b"abc\n", age=5000.0)
    os.link(root / "runA" / "e.ckpt", root / "runB" / "e.ckpt")
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    text = ok("du", db=db).stdout
    assert "duplicates: 4B reclaimable\n" in text
    assert "2 copies: runA/e.ckpt, runB/copy.ckpt (+1 other name of these files)" in text
    assert "in all" not in text  # one root: its own total is the total
    (group,) = ok_json("du", db=db)["duplicates"]
    assert group["reclaimable_bytes"] == 4
    assert group["links"] == [{"root": str(root), "path": "runB/e.ckpt"}]


def test_du_says_how_many_files_it_could_not_measure_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for step in (1, 2):
        write(root / "run" / f"step_{step}.pt", b"x" * 100, age=5000.0)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    (root / "run" / "step_2.pt").unlink()  # gone since the scan: lstat fails
    (line,) = [t for t in ok("du", db=db).stdout.splitlines() if str(root) in t]
    assert line.startswith(f"    200B  {root}  (2 files") and line.endswith(", 1 not measured)")
    assert ok_json("du", db=db)["roots"][0]["disk_unmeasured_files"] == 1


@pytest.mark.parametrize(
    ("policy", "user_config", "where"),
    [
        # a misspelt framework selects no run: the base keep_last = 1 would remove what
        # the rule was written to keep
        (
            '[retention]\nkeep_last = 1\n\n[[retention.rule]]\nframework = "lightnin"\n'
            "keep_last = 10\n",
            None,
            ":5: unknown framework 'lightnin'",
        ),
        # [[rule]] outside [retention]: the overrides were silently dropped
        (
            '[retention]\nkeep_last = 1\n\n[[rule]]\nframework = "lightning"\nkeep_last = 10\n',
            None,
            ":4: 'rule' is outside [retention]",
        ),
        # a misspelt table: read as "no policy here", so the user config's policy applied
        ("[retension]\nkeep_last = 10\n", "[retention]\nkeep_last = 1\n", ":1: unknown key"),
        ("keep_last = 10\n", "[retention]\nkeep_last = 1\n", ":1: 'keep_last' is outside"),
    ],
)
def test_a_misspelt_policy_is_one_line_never_another_policy(
    tmp_path: Path, policy: str, user_config: str | None, where: str
) -> None:
    roots, db = real_outputs(tmp_path)
    root = roots[0]
    if user_config is not None:
        config = tmp_path / "xdg-config" / "artlens" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(user_config)
    (root / ".artlens.toml").write_text(policy)
    before = files_outside_trash(root)
    for args in (["retention", "plan", str(root)], ["retention", "apply", "--yes"]):
        result = run(*args, db=db)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"{root / '.artlens.toml'}{where}" in result.stderr
    assert files_outside_trash(root) == before
    assert not (root / TRASH_DIR).exists()


def test_a_restore_that_leaves_an_item_in_the_trash_exits_1(tmp_path: Path) -> None:
    """``trash restore ID`` when something now occupies the item's path: the item stays in
    the trash ("skipped"), and the command exited 0, so ``restore && train --resume``
    went on without it.  Exit 1, text and --json alike; restored once the path is free."""
    root = tmp_path / "root"
    for step in (1, 2):
        write(root / "run" / f"step_{step}.pt", os.urandom(64), age=5000.0 - step)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    ok("retention", "apply", "--keep-last", "1", "--yes", db=db)
    (entry,) = ok_json("trash", "list", db=db)
    assert entry["path"] == "run/step_1.pt"
    (root / "run" / "step_1.pt").write_bytes(b"written since")
    result = run("trash", "restore", entry["id"], db=db)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "artlens: skipped run/step_1.pt: something now occupies the original path\n"
    )
    assert result.stdout == "restored 0 (0B), skipped 1\n"
    result = run("trash", "restore", "--all", "--json", db=db)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["done"], [s["path"] for s in report["skipped"]]) == ([], ["run/step_1.pt"])
    (root / "run" / "step_1.pt").unlink()
    restored = ok_json("trash", "restore", entry["id"], db=db)
    assert [d["path"] for d in restored["done"]] == ["run/step_1.pt"]


def test_an_apply_that_skips_an_item_exits_1(tmp_path: Path) -> None:
    """``retention apply PLAN --yes`` when a checkpoint changed since the plan: the item is
    rightly skipped, but the command exited 0 (``trash restore`` exits 1 when it skips),
    so ``apply && rm -rf backup`` went on as if the space were freed.  Exit 1, text and
    --json alike, one line on stderr naming the item and why."""
    root = tmp_path / "root"
    for step in (1, 2, 3):
        write(root / "run" / f"step_{step}.pt", os.urandom(64), age=5000.0 - step)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    plan = ok_json("retention", "plan", "--keep-last", "1", db=db)
    assert sorted(i["path"] for i in plan["items"] if not i["keep"]) == [
        "run/step_1.pt",
        "run/step_2.pt",
    ]
    # rewritten since (still before step_2: rewritten last, a resumed run's newest is kept)
    write(root / "run" / "step_1.pt", os.urandom(80), age=4998.5)
    result = run("retention", "apply", plan["id"], "--yes", db=db)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("artlens: skipped run/step_1.pt: changed since the plan"), line
    assert "trashed run/step_2.pt" in result.stdout
    assert "trashed 1 (64B), skipped 1" in result.stdout
    result = run("retention", "apply", plan["id"], "--yes", "--json", db=db)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [s["path"] for s in report["skipped"]] == ["run/step_1.pt", "run/step_2.pt"]
    assert len(result.stderr.splitlines()) == 2
    # nothing skipped: 0
    plan = ok_json("retention", "plan", "--keep-last", "1", db=db)
    done = ok_json("retention", "apply", plan["id"], "--yes", db=db)
    assert ([d["path"] for d in done["done"]], done["skipped"]) == (["run/step_1.pt"], [])


def test_a_purge_that_skips_an_item_exits_1(tmp_path: Path) -> None:
    """``trash purge --older-than 0 --yes`` when an item's trash folder was swapped for a
    symlink: the item is rightly left alone (never followed), but the command exited 0,
    so a script took the space as freed.  Exit 1 with one line on stderr per item."""
    root = tmp_path / "root"
    for step in (1, 2):
        write(root / "run" / f"step_{step}.pt", os.urandom(64), age=5000.0 - step)
    db = tmp_path / "index.db"
    ok("index", str(root), db=db)
    ok("retention", "apply", "--keep-last", "1", "--yes", db=db)
    (entry,) = ok_json("trash", "list", db=db)
    trashed = root / entry["trash_path"]
    folder = trashed.parent
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere)
    for extra in ((), ("--json",)):
        result = run("trash", "purge", "--older-than", "0", "--yes", *extra, db=db)
        assert result.exit_code == 1, result.output
        assert result.stderr == (
            "artlens: skipped run/step_1.pt: its trash folder is a symlink or not a folder;"
            " never followed\n"
        )
    assert (elsewhere / "step_1.pt").exists()  # never followed
    folder.unlink()
    elsewhere.rename(folder)
    purged = ok_json("trash", "purge", "--older-than", "0", "--yes", db=db)
    assert ([d["path"] for d in purged["done"]], purged["skipped"]) == (["run/step_1.pt"], [])
