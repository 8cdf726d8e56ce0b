"""gs:// roots against a real GCS emulator on loopback (fake-gcs-server): listings with
hostile names, reads pinned to a generation, the index and ``runs --json`` equal to the
local index of the same files, ``scan`` flagging the malicious pickle, and retention
apply + restore round-tripping every byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gcs_server import SEED_TREES, GCSServer, gcs_fresh, gcs_seeded, gcs_server

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.retention.bucket import TRASH, BucketTrash
from store.root import ChangedError, NotFound, RootError, open_root
from store.root.objstore import BLOCK_SIZE, ObjectRoot, encode_part, key_to_rel
from store.scan import Indexer
from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["gcs_fresh", "gcs_seeded", "gcs_server"]


def test_listing_names_and_hostile_keys(gcs_seeded: dict[str, Any]) -> None:
    root = open_root(f"gs://{gcs_seeded['bucket']}")
    assert isinstance(root, ObjectRoot) and root.scheme == "gs"
    assert {e.name for e in root.list_dir()} == {"hostile", "lightning", "mlflow", "models"}
    names = {e.name for e in root.list_dir("hostile")}
    assert {"%", "%..", encode_part("%41.txt"), "[bold]x.txt", "ctl\x1b[31mred.txt"} <= names
    assert [e.name for e in root.list_dir("hostile/%..")] == ["up.txt"]
    evil = root.stat("models/evil.pkl")
    walked = dict(root.walk())
    assert {e.name: e.identity for e in walked["models"]} == {"evil.pkl": evil.identity}
    assert evil.identity.isdigit()  # the generation
    files = sum(1 for entries in walked.values() for e in entries if e.kind == "file")
    assert files == len(gcs_seeded["files"])
    with pytest.raises(NotFound):
        root.stat("models/nothing-here")
    assert ObjectRoot(f"gcs://{gcs_seeded['bucket']}/models").url == (
        f"gs://{gcs_seeded['bucket']}/models"
    )


def test_reads_are_pinned_to_the_generation(gcs_server: GCSServer) -> None:
    bucket = gcs_server.new_bucket()
    body = bytes(range(256)) * (3 * BLOCK_SIZE // 256)
    gcs_server.put(bucket, "m/model.bin", body)
    gcs_server.put(bucket, "m/empty.txt", b"")
    root = ObjectRoot(f"gs://{bucket}")
    assert root.read_capped("m/model.bin", 10) == (body[:10], True)
    assert root.read_capped("m/empty.txt", 10) == (b"", False)
    with root.open("m/empty.txt") as empty:
        assert empty.size == 0 and empty.read_at(0, 10) == b""
    with root.open("m/model.bin") as reader:
        assert reader.size == len(body)
        assert reader.identity == root.stat("m/model.bin").identity
        assert reader.read_at(BLOCK_SIZE + 5, 10) == body[BLOCK_SIZE + 5 : BLOCK_SIZE + 15]
        gcs_server.put(bucket, "m/model.bin", b"\0" * len(body))  # same size, new bytes
        assert reader.read_at(BLOCK_SIZE + 5, 10) == body[BLOCK_SIZE + 5 : BLOCK_SIZE + 15]
        with pytest.raises(ChangedError):
            reader.read_at(2 * BLOCK_SIZE, 10)  # never a block of the new bytes
    assert root.stats.bytes < 4 * BLOCK_SIZE + 64
    assert root.stats.ops["get_media"] >= 4


def test_missing_bucket_and_other_schemes_are_one_line(gcs_server: GCSServer) -> None:
    with pytest.raises(RootError) as caught:
        ObjectRoot("gs://no-such-bucket-here").list_dir()
    assert "\n" not in str(caught.value) and "no-such-bucket-here" in str(caught.value)
    with pytest.raises(RootError, match="not supported yet"):
        ObjectRoot("az://container/prefix")


def _runs(db_path: Path) -> dict[str, tuple[str, Any]]:
    db = open_db(db_path, readonly=True)
    try:
        rows = db.conn.execute("SELECT path, framework, params FROM runs").fetchall()
        return {bytes(p).decode(): (f, json.loads(params)) for p, f, params in rows}
    finally:
        db.close()


def test_index_matches_the_local_index(gcs_seeded: dict[str, Any], tmp_path: Path) -> None:
    local = tmp_path / "local"
    for key, body in gcs_seeded["files"].items():
        if key.split("/")[0] in SEED_TREES or key == "models/evil.pkl":
            target = local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    local_db = open_db(tmp_path / "local.db")
    try:
        Indexer(local_db, local).scan()
    finally:
        local_db.close()
    root = ObjectRoot(f"gs://{gcs_seeded['bucket']}")
    db = open_db(tmp_path / "bucket.db")
    try:
        indexer = ObjectIndexer(db, root)
        report = indexer.scan()
        indexer.hash_pending()
        verdicts = dict(
            db.conn.execute(
                "SELECT CAST(path AS TEXT), verdict FROM artifacts WHERE verdict IS NOT NULL"
            ).fetchall()
        )
        rescan = indexer.scan()
    finally:
        db.close()
    assert report.files == len(gcs_seeded["files"]) and report.warning_count == 0
    assert root.stats.ops["list"] >= 1 and set(root.stats.ops) <= {"list", "get_media", "get"}
    local_runs = {p: r for p, r in _runs(tmp_path / "local.db").items() if r[0] != "tensorboard"}
    bucket_runs = _runs(tmp_path / "bucket.db")
    for path, (framework, params) in local_runs.items():
        if framework in ("mlflow", "lightning"):
            assert bucket_runs[path] == (framework, params), path
    assert verdicts["models/evil.pkl"] == "dangerous"
    assert (rescan.added, rescan.changed, rescan.removed) == (0, 0, 0)


def test_cli_index_runs_ls_and_scan(gcs_seeded: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"gs://{gcs_seeded['bucket']}"
    db = str(tmp_path / "bucket.db")
    result = runner.invoke(main, ["index", url, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["roots"][0]
    assert report["root"] == url and report["files"] == len(gcs_seeded["files"])
    assert report["requests"] > 0 and report["bytes"] > 0
    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", db]).output)
    mlflow = sorted(r["params"]["lr"] for r in runs if r["framework"] == "mlflow")
    assert mlflow == [0.05, 0.1]
    listed = runner.invoke(main, ["ls", "--db", db])
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "hostile/%../up.txt" in listed.output and "models/evil.pkl\tdangerous" in listed.output
    scan = runner.invoke(main, ["scan", url])
    assert scan.exit_code == 1, scan.output
    assert "evil.pkl" in scan.output and "\x1b" not in scan.output


CHOSEN = [
    "models/evil.pkl",
    "lightning/lightning_logs/version_0/checkpoints/last.ckpt",
    "hostile/ctl\x1b[31mred.txt",
    "hostile/../up.txt",
]


@pytest.mark.parametrize("versioned", [False, True])
def test_retention_apply_restore_purge_round_trip(
    gcs_server: GCSServer, gcs_fresh: Callable[..., str], versioned: bool
) -> None:
    bucket = gcs_fresh(versioned=versioned)
    before = gcs_server.contents(bucket)
    trash = BucketTrash(ObjectRoot(f"gs://{bucket}"))
    plan = trash.plan([key_to_rel(k) for k in CHOSEN])
    assert gcs_server.contents(bucket) == before  # planning changes nothing
    assert plan.versioned is False  # GCS has no delete markers: trash is a copy
    assert plan.total_bytes == sum(len(before[k]) for k in CHOSEN)
    applied = trash.apply(plan)
    assert applied.counts() == {"trashed": len(CHOSEN)}, applied.to_json()
    live = {k for k in gcs_server.contents(bucket) if not k.startswith(TRASH)}
    assert live == set(before) - set(CHOSEN)

    restored = BucketTrash(ObjectRoot(f"gs://{bucket}")).restore(trash.load(plan.batch))
    assert restored.counts() == {"restored": len(CHOSEN)}
    after = {k: v for k, v in gcs_server.contents(bucket).items() if not k.startswith(TRASH)}
    assert after == before  # every byte back, nothing else touched
    assert gcs_server.contents(bucket, f"{TRASH}/{plan.batch}/") == {}

    again = trash.apply(trash.plan(["models/evil.pkl"]))
    assert trash.purge(again).counts() == {"purged": 1}
    assert "models/evil.pkl" not in gcs_server.contents(bucket)
    assert gcs_server.contents(bucket, f"{TRASH}/{again.batch}/") == {}


def test_retention_leaves_an_object_rewritten_after_the_plan(gcs_server: GCSServer) -> None:
    bucket = gcs_server.new_bucket()
    gcs_server.put(bucket, "run/a.ckpt", b"planned bytes")
    trash = BucketTrash(ObjectRoot(f"gs://{bucket}"))
    plan = trash.plan(["run/a.ckpt"])
    gcs_server.put(bucket, "run/a.ckpt", b"written after the plan")
    assert trash.apply(plan).counts() == {"changed": 1}
    left = gcs_server.contents(bucket)
    assert left["run/a.ckpt"] == b"written after the plan"
    assert not [k for k in left if k.startswith(f"{TRASH}/{plan.batch}/")]
