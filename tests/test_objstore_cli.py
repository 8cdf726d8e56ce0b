"""``artlens index s3://...`` then ``runs`` and ``ls`` on the index it wrote, against a real
S3 server on loopback; costs in ``--json``; hostile keys never reach the terminal raw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, s3_server, seeded

from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["s3_server", "seeded"]


def test_index_runs_ls_on_a_bucket(
    s3_server: S3Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    db = tmp_path / "bucket.db"
    runner = CliRunner()
    url = f"s3://{seeded['versioned']}"
    result = runner.invoke(main, ["index", url, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["roots"][0]
    assert report["root"] == url and report["files"] == len(seeded["files"])
    assert 0 < report["requests"] < 4 * len(seeded["files"])
    assert 0 < report["bytes"] < sum(len(b) for b in seeded["files"].values())

    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db)]).output)
    mlflow = sorted((r["params"]["lr"], r["framework"]) for r in runs if r["framework"] == "mlflow")
    assert mlflow == [(0.05, "mlflow"), (0.1, "mlflow")]

    listed = runner.invoke(main, ["ls", "--db", str(db)])
    assert listed.exit_code == 0
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "hostile/%../up.txt" in listed.output and "hostile/%/double.txt" in listed.output
    assert "models/evil.pkl\tdangerous" in listed.output

    again = runner.invoke(main, ["index", url, "--db", str(db)])
    assert again.exit_code == 0 and "(+0 ~0 -0)" in again.output


def test_bad_urls_are_one_line(s3_server: S3Server, tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "x.db")
    missing = runner.invoke(main, ["index", "s3://no-such-bucket-anywhere", "--db", db])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1
    assert "no-such-bucket-anywhere" in missing.output
    mixed = runner.invoke(main, ["index", "s3://a-bucket", str(tmp_path), "--db", db])
    assert mixed.exit_code == 2 and "separate commands" in mixed.output
    azure = runner.invoke(main, ["index", "az://no-such-container-here/prefix", "--db", db])
    assert azure.exit_code == 2 and len(azure.output.strip().splitlines()) == 1, azure.output
    assert "az://" in azure.output and "Traceback" not in azure.output
    typo = runner.invoke(main, ["index", "s3://no-such-bucket-anywhere/x", "--db", db])
    assert typo.exit_code == 2


def test_scan_flags_the_malicious_object_by_ranged_reads(
    s3_server: S3Server, seeded: dict[str, Any]
) -> None:
    result = CliRunner().invoke(main, ["scan", f"s3://{seeded['plain']}", "--json"])
    assert result.exit_code == 1, result.output  # something dangerous
    found = {f["path"]: f for f in json.loads(result.output)["files"]}
    evil = found[f"s3://{seeded['plain']}/models/evil.pkl"]
    assert evil["verdict"] == "dangerous" and any("eval" in r for r in evil["reasons"])
    ckpts = [f for p, f in found.items() if p.endswith(".ckpt")]
    assert ckpts and all(f["verdict"] == "safe" for f in ckpts)


def test_bucket_trash_is_a_dry_run_until_apply_then_restores(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    url = f"s3://{bucket}/runs"
    runner = CliRunner()
    dry = runner.invoke(main, ["bucket", "trash", url, "a/ckpt.pt"])
    assert dry.exit_code == 0 and "dry run (add --apply)" in dry.output
    assert s3_server.contents(bucket, "runs/") == {"runs/a/ckpt.pt": b"weights"}
    done = runner.invoke(main, ["bucket", "trash", url, "a/ckpt.pt", "--apply", "--json"])
    batch = json.loads(done.output)
    assert batch["counts"] == {"trashed": 1} and batch["bytes"] == 7
    assert "runs/a/ckpt.pt" not in s3_server.contents(bucket, "runs/")
    back = runner.invoke(main, ["bucket", "restore", url, batch["batch"], "--json"])
    assert json.loads(back.output)["counts"] == {"restored": 1}
    assert s3_server.contents(bucket, "runs/a/") == {"runs/a/ckpt.pt": b"weights"}
    bad = runner.invoke(main, ["bucket", "restore", url, "../x"])
    assert bad.exit_code == 2 and "not a batch id" in bad.output


def test_the_explorer_opens_a_bucket_index_and_polls_the_bucket(
    s3_server: S3Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    """``artlens`` on the last index (here a bucket's) starts its watcher on the index's
    roots: a URL is no folder to watch (it is polled), and must not become a bogus local
    root."""
    import asyncio

    from store.index.db import open_db
    from tui.app import ArtlensApp

    db_path = tmp_path / "bucket.db"
    url = f"s3://{seeded['plain']}"
    assert CliRunner().invoke(main, ["index", url, "--db", str(db_path)]).exit_code == 0

    async def run() -> tuple[int, str]:
        app = ArtlensApp(db_path, [], watch=True)
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = asyncio.get_running_loop().time() + 60
            while not (app.watch_state[0].startswith("polling ") and app.screen.runs):  # type: ignore[attr-defined]
                assert asyncio.get_running_loop().time() < deadline, app.watch_state
                await pilot.pause(0.05)
            return len(app.screen.runs), app.watch_state[0]  # type: ignore[attr-defined]

    shown, watcher = asyncio.run(run())
    assert watcher.startswith("polling"), watcher
    db = open_db(db_path, readonly=True)
    try:
        roots = [bytes(r[0]).decode() for r in db.conn.execute("SELECT path FROM roots")]
        files = db.conn.execute("SELECT count(*) FROM artifacts").fetchone()[0]
    finally:
        db.close()
    assert roots == [url]
    assert files == len(seeded["files"]) and shown == 7


def test_a_bucket_trash_restore_or_purge_that_skips_an_object_exits_1(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """``bucket trash --apply`` asked for an object that is not there, and ``bucket
    restore`` met a newer object at the key: both left an object as it was and exited 0.
    Exit 1, text and --json alike, one line on stderr per object with why."""
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    url = f"s3://{bucket}/runs"
    runner = CliRunner()
    done = runner.invoke(main, ["bucket", "trash", url, "a/ckpt.pt", "a/nothing.pt", "--apply"])
    assert done.exit_code == 1, done.output
    assert done.stderr == "artlens: skipped a/nothing.pt: missing: no such object\n"
    assert "1 missing, 1 trashed" in done.stdout
    batch_id = done.stdout.rsplit("batch ", 1)[1].strip()
    s3_server.put(bucket, "runs/a/ckpt.pt", b"written since")
    back = runner.invoke(main, ["bucket", "restore", url, batch_id, "--json"])
    assert back.exit_code == 1, back.output
    assert back.stderr == (
        "artlens: skipped a/ckpt.pt: trashed: an object was written at the key since: "
        "not restored, still in the trash\n"
    )
    assert json.loads(back.stdout)["counts"] == {"trashed": 1, "missing": 1}
    assert s3_server.contents(bucket, "runs/a/") == {"runs/a/ckpt.pt": b"written since"}
    # still trashed: asked again, still refused, and said so
    again = runner.invoke(main, ["bucket", "restore", url, batch_id])
    assert again.exit_code == 1, again.output
    assert "still in the trash" in again.stderr


@pytest.mark.parametrize("versioned", [True, False])
def test_a_refused_bucket_restore_leaves_the_item_restorable_and_purgeable(
    s3_server: S3Server, versioned: bool
) -> None:
    """``bucket restore`` that met a newer object at the key marked the item ``kept`` and
    left its trash copy (or its trashed version and marker): ``bucket purge`` acts only on
    trashed items, so those bytes were never purged and no command said so.  The item stays
    trashed: a restore once the key is free brings it back, a purge frees its bytes."""
    bucket = s3_server.new_bucket(versioned=versioned)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    url = f"s3://{bucket}/runs"
    runner = CliRunner()
    done = runner.invoke(main, ["bucket", "trash", url, "a/ckpt.pt", "--apply", "--json"])
    assert done.exit_code == 0, done.output
    batch_id = json.loads(done.stdout)["batch"]
    s3_server.put(bucket, "runs/a/ckpt.pt", b"written since")
    back = runner.invoke(main, ["bucket", "restore", url, batch_id])
    assert back.exit_code == 1 and "still in the trash" in back.stderr
    dry = runner.invoke(main, ["bucket", "purge", url, batch_id, "--json"])
    assert json.loads(dry.stdout)["counts"] == {"trashed": 1}  # the purge sees it
    # the key free again: the restore brings the trashed bytes back
    if versioned:  # the newer version goes for good: the marker is on top again
        versions = s3_server.call("list_object_versions", Bucket=bucket, Prefix="runs/a/")
        newer = [v for v in versions["Versions"] if v["Size"] == len(b"written since")]
        s3_server.call(
            "delete_object", Bucket=bucket, Key="runs/a/ckpt.pt", VersionId=newer[0]["VersionId"]
        )
    else:
        s3_server.call("delete_object", Bucket=bucket, Key="runs/a/ckpt.pt")
    restored = runner.invoke(main, ["bucket", "restore", url, batch_id, "--json"])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["counts"] == {"restored": 1}
    assert s3_server.contents(bucket, "runs/a/") == {"runs/a/ckpt.pt": b"weights"}


@pytest.mark.parametrize("versioned", [True, False])
def test_a_refused_restore_then_purge_frees_the_trashed_bytes(
    s3_server: S3Server, versioned: bool
) -> None:
    bucket = s3_server.new_bucket(versioned=versioned)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    url = f"s3://{bucket}/runs"
    runner = CliRunner()
    done = runner.invoke(main, ["bucket", "trash", url, "a/ckpt.pt", "--apply", "--json"])
    batch_id = json.loads(done.stdout)["batch"]
    s3_server.put(bucket, "runs/a/ckpt.pt", b"written since")
    assert runner.invoke(main, ["bucket", "restore", url, batch_id]).exit_code == 1
    purged = runner.invoke(main, ["bucket", "purge", url, batch_id, "--yes", "--json"])
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["counts"] == {"purged": 1}
    assert s3_server.contents(bucket, "runs/a/") == {"runs/a/ckpt.pt": b"written since"}
    assert s3_server.contents(bucket, f"runs/.artlens-trash/{batch_id}/") == {}
    if versioned:  # the trashed version and its marker are gone for good
        versions = s3_server.call("list_object_versions", Bucket=bucket, Prefix="runs/a/")
        assert len(versions.get("Versions", [])) == 1 and not versions.get("DeleteMarkers")


def test_a_restore_that_leaves_its_trash_copy_says_so_and_purge_frees_it(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bucket restore`` copied the object back, then could not delete its copy in the
    trash (the store refuses, AccessDenied): it said 'restore failed' and kept the item
    trashed while the object was back, and a second restore said a newer object had been
    written at the key.  The item is restored, the copy left in the trash is named on
    stderr (exit 1), and ``bucket purge`` deletes that copy and nothing else."""
    import s3fs

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    url = f"s3://{bucket}/runs"
    runner = CliRunner()
    done = runner.invoke(main, ["bucket", "trash", url, "a/ckpt.pt", "--apply", "--json"])
    batch_id = json.loads(done.stdout)["batch"]
    copy = f"runs/.artlens-trash/{batch_id}/a/ckpt.pt"
    real_call = s3fs.S3FileSystem.call_s3

    def refuse_deleting_the_copy(self: Any, op: str, *args: Any, **kwargs: Any) -> Any:
        if op == "delete_object" and kwargs.get("Key") == copy:
            raise PermissionError("AccessDenied")
        return real_call(self, op, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", refuse_deleting_the_copy)
    back = runner.invoke(main, ["bucket", "restore", url, batch_id, "--json"])
    monkeypatch.undo()
    assert back.exit_code == 1, back.output
    assert back.stderr.startswith(
        "artlens: skipped a/ckpt.pt: restored: the object is back; its copy"
    )
    assert json.loads(back.stdout)["counts"] == {"restored": 1}
    assert s3_server.contents(bucket, "runs/a/") == {"runs/a/ckpt.pt": b"weights"}
    again = runner.invoke(main, ["bucket", "restore", url, batch_id])
    assert "written at the key" not in again.output
    purged = runner.invoke(main, ["bucket", "purge", url, batch_id, "--yes", "--json"])
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["counts"] == {"restored": 1}
    assert s3_server.contents(bucket, "runs/") == {
        "runs/a/ckpt.pt": b"weights",
        f"runs/.artlens-trash/{batch_id}.json": s3_server.contents(bucket, "runs/.artlens-trash/")[
            f"runs/.artlens-trash/{batch_id}.json"
        ],
    }
