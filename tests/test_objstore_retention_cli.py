"""``artlens retention plan|apply`` on an indexed s3:// root, against a real S3 server on
loopback: the same plan and report JSON as for a folder, a dry run unless --yes, every
object re-checked against the plan, and ``artlens trash restore BATCH --root URL`` brings
back every byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, fresh_bucket, s3_server

from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fresh_bucket", "s3_server"]


def _json(*args: str, code: int = 0) -> Any:
    """The command's JSON; ``code`` 1 when it skips an item asked for (each named on
    stderr)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("versioned", [True, False])
def test_plan_apply_restore_a_bucket(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path, versioned: bool
) -> None:
    bucket = fresh_bucket(versioned=versioned)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    before = s3_server.contents(bucket)
    _json("index", url, "--db", db, "--json")

    plan = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    assert [r["root"] for r in plan["roots"]] == [url]
    removed = sorted(i["path"] for i in plan["items"] if not i["keep"])
    assert len(removed) == 6 and all(p.endswith(".ckpt") for p in removed)
    assert plan["filesystems"] == []  # a bucket frees no local disk
    (root_totals,) = plan["roots"]
    freed = root_totals["bytes_removed"]
    assert freed > 0
    assert root_totals["storage_usd_per_month"] == round(freed / 1e9 * 0.023, 6)
    text = CliRunner().invoke(main, ["retention", "plan", url, "--keep-last", "1", "--db", db])
    assert "a month to store (S3 Standard list price)" in text.output, text.output

    dry = _json("retention", "apply", plan["id"], "--db", db, "--json")
    assert dry["applied"] is False and len(dry["would_remove"]) == 6
    assert s3_server.contents(bucket) == before

    # one planned checkpoint is rewritten after the plan: it is left alone
    changed = removed[0]
    s3_server.put(bucket, changed, b"written after the plan")
    done = _json("retention", "apply", plan["id"], "--yes", "--db", db, "--json", code=1)
    assert done["applied"] is True
    assert sorted(i["path"] for i in done["done"]) == removed[1:]
    assert [(i["path"], i["reason"].split(":")[0]) for i in done["skipped"]] == [
        (changed, "changed")
    ]
    assert all(i["root"] == url and i["outcome"] == "trashed" for i in done["done"])
    left = s3_server.contents(bucket)
    assert not set(removed[1:]) & set(left)
    assert left[changed] == b"written after the plan"

    # the index followed: a new plan has nothing left to remove but the changed one
    assert done["index_updated"] is True
    again = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    assert [i["path"] for i in again["items"] if not i["keep"]] == [changed]

    batch = done["done"][0]["id"]
    restored = _json("trash", "restore", batch, "--root", url, "--db", db, "--json")
    assert sorted(i["path"] for i in restored["done"]) == removed[1:]
    assert restored["skipped"] == [] and restored["index_updated"] is True
    after = {k: v for k, v in s3_server.contents(bucket).items() if ".artlens-trash" not in k}
    assert after == {**before, changed: b"written after the plan"}
    # the index has them again: the same plan as before
    again = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    assert sorted(i["path"] for i in again["items"] if not i["keep"]) == removed

    missing = CliRunner().invoke(
        main, ["trash", "restore", "no-such-batch", "--root", url, "--db", db]
    )
    assert missing.exit_code == 2 and "no batch" in missing.output


def test_bucket_and_folder_roots_are_planned_apart(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["retention", "plan", "s3://some-bucket", str(tmp_path), "--keep-last", "1"]
    )
    assert result.exit_code == 2 and "separate commands" in result.output


def test_the_folder_trash_never_takes_a_bucket_item(
    s3_server: S3Server,
    fresh_bucket: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plan with bucket items given to the folder trash (as the explorer's apply does)
    skips them: ``s3://b/x`` must never resolve to ``./s3:/b/x`` in the working folder."""
    from store.retention.plan import load_plan
    from store.retention.trash import apply_plan

    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    plan_json = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    plan = load_plan(Path(plan_json["saved_to"]))
    decoy = tmp_path / "cwd" / "s3:" / bucket / plan.removals[0].path
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(b"a local file")
    monkeypatch.chdir(tmp_path / "cwd")
    report = apply_plan(plan)
    assert report.done == [] and len(report.skipped) == len(plan.removals) == 6
    assert all("object-store root" in s.reason for s in report.skipped)
    assert decoy.read_bytes() == b"a local file"


def test_folder_trash_commands_never_read_a_bucket_root_as_a_path(
    s3_server: S3Server,
    fresh_bucket: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`trash list` and `trash purge` on a bucket's index say the root is a bucket; a
    ``./s3:/<bucket>/.artlens-trash`` in the working folder is neither listed nor purged."""
    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    decoy = tmp_path / "cwd" / "s3:" / bucket / ".artlens-trash" / "x"
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(b"local")
    monkeypatch.chdir(tmp_path / "cwd")
    listed = CliRunner().invoke(main, ["trash", "list", "--db", db])
    assert listed.exit_code == 0 and listed.output == "the trash is empty\n"
    CliRunner().invoke(main, ["trash", "purge", "--older-than", "0s", "--yes", "--db", db])
    assert decoy.read_bytes() == b"local"


def _rows(db: str) -> dict[str, list[tuple[object, ...]]]:
    """Each root's artifacts (path, size) and runs (path, bytes, files)."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        found: dict[str, list[tuple[object, ...]]] = {}
        for root_id, root in conn.execute("SELECT id, path FROM roots"):
            found[bytes(root).decode()] = [
                *conn.execute(
                    "SELECT path, size FROM artifacts WHERE root_id = ? ORDER BY path", (root_id,)
                ),
                *conn.execute(
                    "SELECT path, size_bytes, n_artifacts FROM runs WHERE root_id = ?"
                    " ORDER BY path",
                    (root_id,),
                ),
            ]
        return found
    finally:
        conn.close()


def test_apply_and_restore_refresh_every_bucket_root_that_holds_the_objects(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """``s3://b`` and ``s3://b/lightning`` both indexed: apply trashed the checkpoints of
    the inner prefix and re-listed it alone, so the outer root still listed them (and its
    runs counted them) until the next index.  Both follow, as a fresh index would."""
    bucket = fresh_bucket(versioned=False)
    outer, inner = f"s3://{bucket}", f"s3://{bucket}/lightning"
    db = str(tmp_path / "bucket.db")

    def as_fresh(name: str) -> None:
        fresh = str(tmp_path / f"fresh-{name}.db")
        _json("index", outer, inner, "--db", fresh, "--json")
        assert _rows(db) == _rows(fresh)

    _json("index", outer, inner, "--db", db, "--json")
    done = _json("retention", "apply", "--keep-last", "1", "--yes", "--db", db, "--json")
    trashed = [i["path"] for i in done["done"]]
    assert len(trashed) == 6 and all(i["root"] == inner for i in done["done"])
    assert done["index_updated"] is True
    as_fresh("applied")
    batch = done["done"][0]["id"]
    restored = _json("trash", "restore", batch, "--root", inner, "--db", db, "--json")
    assert sorted(i["path"] for i in restored["done"]) == sorted(trashed)
    as_fresh("restored")


@pytest.mark.parametrize("versioned", [True, False])
@pytest.mark.parametrize("how", ["deleted", "overwritten"])
def test_a_kept_checkpoint_gone_since_the_plan_skips_its_runs_removals(
    s3_server: S3Server,
    fresh_bucket: Callable[..., str],
    tmp_path: Path,
    versioned: bool,
    how: str,
) -> None:
    """As on a folder: when a checkpoint the plan keeps in a run was deleted or rewritten
    since the plan, none of that run's removals is applied (the plan relied on the kept
    one: applying it would leave the run with no checkpoint it chose to keep); the other
    runs' removals are."""
    bucket = fresh_bucket(versioned=versioned)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    plan = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    removed = {i["path"]: i["run"] for i in plan["items"] if not i["keep"]}
    kept = sorted(
        (i["run"], i["path"])
        for i in plan["items"]
        if i["keep"] and i["run"] in removed.values() and i["path"].endswith(".ckpt")
    )
    assert len(set(removed.values())) > 1 and kept, plan["items"]
    run, gone = kept[0]
    waiting = sorted(path for path, of in removed.items() if of == run)
    others = sorted(path for path, of in removed.items() if of != run)
    if how == "deleted":
        s3_server.call("delete_object", Bucket=bucket, Key=gone)
    else:
        s3_server.put(bucket, gone, b"rewritten after the plan")
    before = s3_server.contents(bucket)

    done = _json("retention", "apply", plan["id"], "--yes", "--db", db, "--json", code=1)
    assert sorted(i["path"] for i in done["done"]) == others
    assert sorted(i["path"] for i in done["skipped"]) == waiting
    assert all(f"kept {gone}" in i["reason"] for i in done["skipped"]), done["skipped"]
    after = {k: v for k, v in s3_server.contents(bucket).items() if ".artlens-trash" not in k}
    assert after == {k: v for k, v in before.items() if k not in others}


@pytest.mark.parametrize("versioned", [True, False])
def test_trash_list_and_purge_show_and_free_a_buckets_trash(
    s3_server: S3Server, versioned: bool, tmp_path: Path
) -> None:
    """`trash list` on a bucket's index said "the trash is empty" (with a warning that the
    bucket keeps its trash in itself) while batches sat there, an object a restore could
    not bring back among them; `trash purge` said "nothing in the trash is that old".  Each
    trashed object is listed by its batch, with why a restore left it, and purged."""
    bucket = s3_server.new_bucket(versioned=versioned)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    s3_server.put(bucket, "runs/a/other.pt", b"other weights")
    url = f"s3://{bucket}/runs"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    batch = _json("bucket", "trash", url, "a/ckpt.pt", "a/other.pt", "--apply", "--json")
    s3_server.put(bucket, "runs/a/ckpt.pt", b"written since")
    back = CliRunner().invoke(main, ["bucket", "restore", url, batch["batch"]])
    assert back.exit_code == 1 and "still in the trash" in back.stderr

    listed = _json("trash", "list", "--root", url, "--db", db, "--json")
    assert [(e["path"], e["batch"], e["size_bytes"]) for e in listed] == [
        ("a/ckpt.pt", batch["batch"], len(b"weights"))
    ]
    assert "still in the trash" in listed[0]["note"]
    text = CliRunner().invoke(main, ["trash", "list", "--root", url, "--db", db])
    assert text.exit_code == 0 and text.stderr == ""
    assert text.stdout.startswith(batch["batch"]) and "a/ckpt.pt" in text.stdout
    assert "1 item(s)" in text.stdout

    purged = _json("trash", "purge", "--older-than", "0", "--yes", "--root", url, "--db", db,
                   "--json")  # fmt: skip
    assert [i["path"] for i in purged["done"]] == ["a/ckpt.pt"] and purged["skipped"] == []
    assert s3_server.contents(bucket, "runs/a/") == {
        "runs/a/ckpt.pt": b"written since",
        "runs/a/other.pt": b"other weights",  # restored: its key was free
    }
    assert s3_server.contents(bucket, f"runs/.artlens-trash/{batch['batch']}/") == {}
    assert _json("trash", "list", "--root", url, "--db", db, "--json") == []


def test_trash_list_says_a_bucket_manifest_it_cannot_read(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "a/ckpt.pt", b"weights")
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    batch = _json("bucket", "trash", url, "a/ckpt.pt", "--apply", "--json")
    s3_server.put(bucket, f".artlens-trash/{batch['batch']}.json", b"{not json")
    listed = CliRunner().invoke(main, ["trash", "list", "--root", url, "--db", db])
    assert listed.exit_code == 0
    assert f"batch {batch['batch']}: " in listed.stderr and "unreadable" in listed.stderr


def test_a_bucket_removal_the_index_does_not_hold_is_skipped(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """A saved plan is a file anyone may edit: a folder root's removal the index does not
    hold as planned is skipped ("not in the index"), but a bucket's was trashed whenever
    the object matched the plan's own size and ETag, so an edited plan could trash any
    object of an indexed bucket, one no plan ever chose.  It is skipped the same way."""
    import dataclasses

    from store.retention.plan import load_plan

    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    planned = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    plan = load_plan(planned["saved_to"])
    first = plan.removals[0]
    # an object nobody indexed, with the same bytes (so the same size and ETag)
    unindexed = first.path.rsplit("/", 1)[0] + "/never-indexed.ckpt"
    s3_server.put(bucket, unindexed, s3_server.contents(bucket)[first.path])
    plan.items = [*plan.items, dataclasses.replace(first, path=unindexed, reasons=[])]
    edited = plan.save(tmp_path / "edited.json")
    done = _json("retention", "apply", str(edited), "--yes", "--db", db, "--json", code=1)
    assert [i["path"] for i in done["skipped"]] == [unindexed]
    assert "not in the index" in done["skipped"][0]["reason"]
    assert unindexed in s3_server.contents(bucket)
    assert len(done["done"]) == len(planned["items"]) - sum(i["keep"] for i in planned["items"])


def test_a_batch_whose_manifest_is_unreadable_is_not_called_missing(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """`trash restore BATCH --root URL` said "no batch" when the bucket held the batch but
    its manifest could not be read (edited, truncated): the user was told there was
    nothing to restore.  It names the manifest's problem, exit 2."""
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "a/ckpt.pt", b"weights")
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _json("index", url, "--db", db, "--json")
    batch = _json("bucket", "trash", url, "a/ckpt.pt", "--apply", "--json")["batch"]
    s3_server.put(bucket, f".artlens-trash/{batch}.json", b"{not json")
    result = CliRunner().invoke(main, ["trash", "restore", batch, "--root", url, "--db", db])
    assert result.exit_code == 2, result.output
    assert "no batch" not in result.output and "unreadable" in result.output
    missing = CliRunner().invoke(main, ["trash", "restore", "nope", "--root", url, "--db", db])
    assert missing.exit_code == 2 and "no batch" in missing.output
