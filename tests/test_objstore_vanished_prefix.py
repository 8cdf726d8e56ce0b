"""A rescan of a bucket subtree whose keys are all gone (a run prefix deleted while the
poller re-lists it as live, ``objpoll``'s live pass) drops its rows, as a rescan of a local
folder that vanished does.  It used to keep them, warning "listing failed", until the next
whole-root reconcile: rows for objects the bucket no longer has."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3_answers import BUCKET, FakeS3, fake_s3

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.root import NotFound
from store.root.objstore import ObjectRoot
from tests.conftest import indexed_paths

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fake_s3"]

OBJECTS = {
    "runs/a.txt": b"a",
    "runs/c/d.txt": b"ddd",
    "runs/c/e/f.txt": b"ffff",
    "runs/g/h.txt": b"hhhhh",
}


def test_a_subtree_whose_keys_are_gone_loses_its_rows(fake_s3: FakeS3, tmp_path: Path) -> None:
    fake_s3.objects.update(OBJECTS)
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    db = open_db(tmp_path / "i.db")
    try:
        indexer = ObjectIndexer(db, root)
        assert indexer.scan().files == len(OBJECTS)
        for key in ("runs/c/d.txt", "runs/c/e/f.txt"):
            del fake_s3.objects[key]
        report = indexer.scan("c")
    finally:
        db.close()
    assert indexed_paths(tmp_path / "i.db") == ["a.txt", "g/h.txt"]
    assert not any("listing failed" in w for w in report.warnings), report.warnings


def test_a_root_whose_keys_are_gone_is_an_error_and_keeps_its_rows(
    fake_s3: FakeS3, tmp_path: Path
) -> None:
    """The whole root listed empty is said, not applied: a wrong prefix or bucket must not
    empty an index."""
    fake_s3.objects.update(OBJECTS)
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    db = open_db(tmp_path / "i.db")
    try:
        indexer = ObjectIndexer(db, root)
        indexer.scan()
        fake_s3.objects.clear()
        with pytest.raises(NotFound):
            indexer.scan()
    finally:
        db.close()
    assert indexed_paths(tmp_path / "i.db") == ["a.txt", "c/d.txt", "c/e/f.txt", "g/h.txt"]
