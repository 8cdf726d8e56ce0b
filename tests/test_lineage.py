"""Lineage: identical files across runs by hash, and a run's commit and environment."""

from __future__ import annotations

import os
from pathlib import Path

from store.index import query
from store.index.db import open_db
from store.lineage import copies_of, duplicate_space, duplicates, git_head, provenance
from tests.test_checklist import copy_fixtures, index_tree

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_duplicates_and_copies_on_real_outputs(tmp_path: Path) -> None:
    _, db_path = copy_fixtures(tmp_path)
    db = open_db(db_path, readonly=True)
    try:
        runs = {r.path.decode(): r for r in query.list_runs(db)}
        hf = runs["hf-trainer/out"]
        found = duplicates(db, hf)
        described = [c.describe() for c in found.copies]
        assert "model.safetensors: same as checkpoint-2/model.safetensors in this run" in described
        assert found.files >= 2 and found.bytes > 0
        space, groups = duplicate_space(db)
        assert space > 0 and groups > 0
        art = next(
            a
            for a in query.list_artifacts(db, run_id=hf.id)
            if a.path.endswith(b"out/model.safetensors")
        )
        copies = copies_of(db, art)
        assert [c.other_path for c in copies] == ["checkpoint-2/model.safetensors"]
        assert copies[0].same_run
        mlflow = runs["mlflow-file/mlruns/989847461378923471/515c2e8075bf4245afd038c7751e22a8"]
        note = next(
            a for a in query.list_artifacts(db, run_id=mlflow.id) if a.path.endswith(b"notes.txt")
        )
        other = copies_of(db, note)
        assert other and not other[0].same_run and other[0].run_name == "run-0"
        assert "same as run run-0/artifacts/notes.txt" in other[0].describe()
    finally:
        db.conn.close()


def test_commit_from_the_framework_record_first(tmp_path: Path) -> None:
    _, db_path = copy_fixtures(tmp_path)
    db = open_db(db_path, readonly=True)
    try:
        runs = query.list_runs(db)
        mlflow = next(r for r in runs if r.framework == "mlflow")
        found = provenance(db, mlflow)
        assert found.git_commit == "10236fab5cf9bface815376621e8d8af9eb22c9a"
        assert found.git_branch == "main"
        assert found.git_source == "mlflow record"
        wandb = next(r for r in runs if r.framework == "wandb")
        found = provenance(db, wandb)
        assert found.git_commit == "10236fab5cf9bface815376621e8d8af9eb22c9a"
        assert found.env_files == ("files/requirements.txt",)
        assert ("host", "vm") in found.details
    finally:
        db.conn.close()


def test_git_head_near_a_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run = repo / "outputs" / "run-1"
    run.mkdir(parents=True)
    (run / "model.pt").write_bytes(b"x" * 10)
    git = repo / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert git_head(os.fsencode(run)) == (SHA, "main")
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{SHA} refs/heads/main\n")
    assert git_head(os.fsencode(run)) == (SHA, "main")
    (git / "HEAD").write_text(SHA[::-1] + "\n")
    assert git_head(os.fsencode(run)) == (SHA[::-1], None)
    (git / "HEAD").write_text("ref: refs/../../../etc/passwd\n")
    assert git_head(os.fsencode(run)) is None
    (git / "HEAD").unlink()
    os.mkfifo(git / "HEAD")  # must not hang
    assert git_head(os.fsencode(run)) is None
    # provenance falls back to the .git folder when the framework recorded nothing
    (git / "HEAD").unlink()
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    db_path = tmp_path / "index.db"
    index_tree(repo / "outputs", db_path)
    db = open_db(db_path, readonly=True)
    try:
        generic = next(r for r in query.list_runs(db) if r.name == "run-1")
        found = provenance(db, generic)
    finally:
        db.conn.close()
    assert (found.git_commit, found.git_branch) == (SHA, "main")
    assert found.git_source == ".git near the run"


def test_worktree_gitdir_file(tmp_path: Path) -> None:
    real = tmp_path / "store" / "worktrees" / "wt"
    real.mkdir(parents=True)
    (real / "HEAD").write_text(SHA + "\n")
    work = tmp_path / "wt"
    work.mkdir()
    (work / ".git").write_text(f"gitdir: {real}\n")
    assert git_head(os.fsencode(work / "sub")) == (SHA, None)
