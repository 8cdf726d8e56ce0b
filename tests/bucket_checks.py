"""Checks every object-store backend passes the same way (GCS, Azure): the seeded bucket's
index must be the local index of the same files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.root.objstore import ObjectRoot
from store.scan import Indexer
from tests.seed import SEED_TREES


def _runs(db_path: Path) -> dict[str, tuple[str, Any]]:
    db = open_db(db_path, readonly=True)
    try:
        rows = db.conn.execute("SELECT path, framework, params FROM runs").fetchall()
        return {bytes(p).decode(): (f, json.loads(params)) for p, f, params in rows}
    finally:
        db.close()


def index_matches_the_local_index(url: str, files: dict[str, bytes], tmp_path: Path) -> ObjectRoot:
    """Index the bucket at ``url`` (seeded with ``files``) and a local copy of its framework
    trees; the MLflow and Lightning runs must have the same params, the malicious pickle must
    be dangerous, and a second scan must find nothing new.  Returns the bucket's root (its
    request counts are the backend's own business)."""
    local = tmp_path / "local"
    for key, body in files.items():
        if key.split("/")[0] in SEED_TREES or key == "models/evil.pkl":
            target = local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    local_db = open_db(tmp_path / "local.db")
    try:
        Indexer(local_db, local).scan()
    finally:
        local_db.close()
    root = ObjectRoot(url)
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
    assert report.files == len(files) and report.warning_count == 0
    bucket_runs = _runs(tmp_path / "bucket.db")
    compared = 0
    for path, (framework, params) in _runs(tmp_path / "local.db").items():
        if framework in ("mlflow", "lightning"):
            assert bucket_runs[path] == (framework, params), path
            compared += 1
    assert compared >= 5
    assert verdicts["models/evil.pkl"] == "dangerous"
    assert (rescan.added, rescan.changed, rescan.removed) == (0, 0, 0)
    return root
