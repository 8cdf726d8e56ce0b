"""Checks every object-store backend passes the same way (S3, GCS, Azure): the seeded
bucket's index must be the local index of the same files, and a poller must find an object
put while it runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
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


def _paths(db_path: Path) -> set[str]:
    db = open_db(db_path, readonly=True)
    try:
        rows = db.conn.execute("SELECT path FROM artifacts").fetchall()
        return {bytes(p).decode("utf-8", "replace") for (p,) in rows}
    finally:
        db.close()


def _wait(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling the condition, with the deadline above


def polling_finds_a_new_object_and_prices_its_listings(
    url: str, put: Callable[[str, bytes], None], list_op: str, tmp_path: Path
) -> None:
    """A poller on ``url`` (a freshly seeded bucket) indexes an object put while it runs
    (``put(key, body)``) without a restart, lists the just-written run prefixes between its
    whole-root passes, and prices the schedule from at least the listings (``list_op``) its
    whole-root passes made."""
    from store.objpoll import LIST_PRICE, MONTH, BucketPoller, PollReport

    db_path = tmp_path / "bucket.db"
    passes: list[PollReport] = []
    poller = BucketPoller(
        db_path, [url], live_every=0.1, reconcile_every=0.3, on_pass=passes.append
    )
    thread = threading.Thread(target=poller.run)
    thread.start()
    try:
        _wait(lambda: any(p.kind == "full" for p in passes), "the first pass")
        first = next(p for p in passes if p.kind == "full")
        assert first.added > 0 and first.error is None
        assert "lightning/new/notes.txt" not in _paths(db_path)
        put("lightning/new/notes.txt", b"added while polling\n")
        _wait(lambda: "lightning/new/notes.txt" in _paths(db_path), "the new object")
    finally:
        poller.stop()
        thread.join(60)
    assert not thread.is_alive()
    # the seeded runs were written just now: their prefixes are listed between full passes
    assert any(p.kind == "live" and p.requests for p in passes), passes
    assert all(p.error is None for p in passes), [p.error for p in passes if p.error]
    assert poller.requests > 0 and poller.nbytes > 0
    # an unchanged whole-root pass is its listing pages: one page of under 1000 keys
    listings = poller.full.ops.get(list_op, 0)
    assert listings >= 1 and poller.monthly_cost() >= listings * LIST_PRICE * MONTH / 0.3 > 0
