"""Indexing a bucket on a real S3 server: the same runs, params and verdicts as the local
index of the same files, found through listings and small ranged reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from objstore_server import SEED_TREES, S3Server, s3_server, seeded

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.root.objstore import ObjectRoot
from store.scan import Indexer

pytestmark = pytest.mark.objstore
__all__ = ["s3_server", "seeded"]


def _runs(db_path: Path) -> dict[str, tuple[str, dict[str, Any], list[str], list[str]]]:
    db = open_db(db_path, readonly=True)
    try:
        return {
            bytes(path).decode(): (
                framework,
                json.loads(params),
                sorted(json.loads(metrics)),
                json.loads(meta).get("warnings", []),
            )
            for path, framework, params, metrics, meta in db.conn.execute(
                "SELECT path, framework, params, metrics, meta FROM runs"
            )
        }
    finally:
        db.close()


def test_bucket_index_matches_the_local_index(
    s3_server: S3Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    local = tmp_path / "local"
    for key, body in seeded["files"].items():
        if key.split("/")[0] in SEED_TREES or key == "models/evil.pkl":
            target = local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    local_db = open_db(tmp_path / "local.db")
    try:
        indexer = Indexer(local_db, local)
        indexer.scan()
        indexer.hash_pending()
    finally:
        local_db.close()

    root = ObjectRoot(f"s3://{seeded['plain']}")
    bucket_db = open_db(tmp_path / "bucket.db")
    try:
        objects = ObjectIndexer(bucket_db, root)
        report = objects.scan(defer_summaries=True)
        objects.fill_summaries()
        # one listing page; detection and the readers ask the walk, not the store, for
        # names: what is left is a few small GETs per run
        listed_and_read = dict(root.stats.ops)
        objects.hash_pending()
        verdicts = dict(
            bucket_db.conn.execute(
                "SELECT CAST(path AS TEXT), verdict FROM artifacts WHERE verdict IS NOT NULL"
            ).fetchall()
        )
        rescan = objects.scan()
    finally:
        bucket_db.close()

    assert report.files == len(seeded["files"]) and report.warning_count == 0
    assert listed_and_read["list_objects_v2"] == 1, listed_and_read
    assert set(listed_and_read) == {"list_objects_v2", "get_object"}, listed_and_read
    local_runs = _runs(tmp_path / "local.db")
    bucket_runs = _runs(tmp_path / "bucket.db")
    assert {p for p in local_runs if p != "models"} <= set(bucket_runs)
    for path, (framework, params, metrics, warnings) in local_runs.items():
        if framework not in ("mlflow", "lightning"):
            continue
        got = bucket_runs[path]
        assert got[0] == framework
        assert got[1] == params, path
        if got[3] and not warnings:
            # TensorBoard's reader still needs a local path: no metrics rather than wrong
            # ones, and a warning that says why
            assert got[2] == [] and "local folders only" in got[3][0], got
        else:
            assert got[2] == metrics, path
    mlflow = [v for v in bucket_runs.values() if v[0] == "mlflow"]
    assert len(mlflow) == 2 and all(v[1]["optimizer"] == "sgd" for v in mlflow)
    lightning = [v for v in bucket_runs.values() if v[0] == "lightning" and v[1]]
    assert len(lightning) == 3
    assert verdicts["models/evil.pkl"] == "dangerous"
    # unchanged listing: nothing written, one listing request
    assert (rescan.added, rescan.changed, rescan.removed) == (0, 0, 0)
    assert rescan.unchanged == report.files


def test_changed_and_deleted_objects_are_seen(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "run/a.txt", b"one")
    s3_server.put(bucket, "run/b.txt", b"two")
    db = open_db(tmp_path / "i.db")
    try:
        indexer = ObjectIndexer(db, ObjectRoot(f"s3://{bucket}"))
        assert indexer.scan().added == 2
        s3_server.put(bucket, "run/a.txt", b"uno")  # same size, new ETag
        s3_server.call("delete_object", Bucket=bucket, Key="run/b.txt")
        again = indexer.scan()
        assert (again.added, again.changed, again.removed) == (0, 1, 1)
    finally:
        db.close()
