"""Listings an S3-compatible server gets wrong, against a tiny S3 endpoint on loopback
(tests/s3_answers.py): a truncated page without a continuation token, a token that comes
back (a loop), keys outside the prefix asked for.  Each is an error naming the fault,
never a shorter, longer or shifted listing: a short one would make the index drop the
rows of objects that are still there, a looping one never ends, and a key outside the
prefix would become a path that names another key."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3_answers import BUCKET, FakeS3, fake_s3

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.retention.bucket import kept_changed
from store.retention.candidates import Candidate
from store.root import NotFound, RootError
from store.root.objstore import ObjectRoot
from tests.conftest import indexed_paths

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fake_s3"]

OBJECTS = {
    "runs/a.txt": b"a",
    "runs/b.txt": b"bb",
    "runs/c/d.txt": b"ddd",
    "runs/c/e.txt": b"eeee",
    "runs/f.txt": b"fffff",
}


def test_the_fake_pages_a_right_listing_whole(fake_s3: FakeS3) -> None:
    fake_s3.objects.update(OBJECTS)
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    walked = {f"{f}/{e.name}" if f else e.name for f, es in root.walk() for e in es}
    assert walked == {"a.txt", "b.txt", "c", "c/d.txt", "c/e.txt", "f.txt"}
    assert sorted(e.name for e in root.list_dir("")) == ["a.txt", "b.txt", "c", "f.txt"]
    assert fake_s3.lists() > 2  # pages of two keys


def test_a_truncated_page_without_a_token_fails_and_the_index_keeps_its_rows(
    fake_s3: FakeS3, tmp_path: Path
) -> None:
    fake_s3.objects.update(OBJECTS)
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    db = open_db(tmp_path / "i.db")
    try:
        indexer = ObjectIndexer(db, root)
        assert indexer.scan().files == len(OBJECTS)
        fake_s3.fault = "no-token"
        with pytest.raises(RootError, match="no continuation token"):
            indexer.scan()
        with pytest.raises(RootError, match="no continuation token"):
            root.list_dir("")
    finally:
        db.close()
    assert indexed_paths(tmp_path / "i.db") == sorted(k.removeprefix("runs/") for k in OBJECTS)


@pytest.mark.parametrize("fault", ["same-token", "cycle"])
def test_a_token_that_comes_back_fails_instead_of_looping(fake_s3: FakeS3, fault: str) -> None:
    fake_s3.objects.update(OBJECTS)
    fake_s3.fault = fault
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    with pytest.raises(RootError, match="came back"):
        list(root.walk())
    assert fake_s3.lists() <= 3
    with pytest.raises(RootError, match="came back"):
        root.list_dir("")


def test_keys_outside_the_prefix_fail_the_listing(fake_s3: FakeS3, tmp_path: Path) -> None:
    fake_s3.objects.update(OBJECTS)
    fake_s3.outside = {"runs2/other.pt": b"not ours", "runsX": b"nor this"}
    fake_s3.fault = "outside"
    fake_s3.page_keys = 100
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    with pytest.raises(RootError, match="outside"):
        list(root.walk())
    with pytest.raises(RootError, match="outside"):
        list(root.objects())
    with pytest.raises(RootError, match="outside"):
        root.list_dir("")
    db = open_db(tmp_path / "i.db")
    try:
        with pytest.raises(RootError, match="outside"):
            ObjectIndexer(db, root).scan()
    finally:
        db.close()
    assert indexed_paths(tmp_path / "i.db") == []


def test_a_folder_asked_about_gets_the_same_checked_listing(fake_s3: FakeS3) -> None:
    """``stat`` of a name with no object asks whether a folder is there (``_require_dir``,
    ``any_below``): keys outside the prefix are no "yes", and the pages of a looping
    listing no "no"; each is an error, as it is for a walk."""
    fake_s3.objects.update(OBJECTS)
    fake_s3.outside = {"runs/ghost-other/x.pt": b"", "elsewhere/y.pt": b"not ours"}
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    with pytest.raises(NotFound):
        root.stat("ghost")
    fake_s3.fault = "outside"
    with pytest.raises(RootError, match="outside"):
        root.stat("ghost")
    with pytest.raises(RootError, match="outside"):
        root.any_below("ghost")
    fake_s3.fault = "empty-loop"
    with pytest.raises(RootError, match="came back"):
        root.stat("c")
    assert fake_s3.lists() <= 3 + 3


def test_an_empty_first_page_with_a_token_is_no_missing_folder(fake_s3: FakeS3) -> None:
    """A listing page may hold no key and still carry a token (GCS says so; S3-compatible
    servers send them): the folder below it is there all the same."""
    fake_s3.objects.update(OBJECTS)
    fake_s3.fault = "empty-first"
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    assert root.stat("c").kind == "dir"
    assert sorted(e.name for e in root.list_dir("c")) == ["d.txt", "e.txt"]
    assert root.any_below("c") and not root.any_below("nothing")
    with pytest.raises(NotFound):
        root.stat("nothing")


def _kept_folder(path: str) -> Candidate:
    return Candidate("", 1, "run", "hf", False, path, True, 7, 0, 0, "dir", None)


def test_a_kept_checkpoint_folder_is_checked_by_the_checked_listing(fake_s3: FakeS3) -> None:
    """Before a run's removals, bucket retention checks that each checkpoint folder the
    plan keeps is still there: a server listing keys outside the prefix must not make a
    deleted kept folder look present (the removals would then leave the run with
    nothing), and an empty first page must not make a present one look gone."""
    fake_s3.objects.update(OBJECTS)
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    assert kept_changed(root, [_kept_folder("c")]) is None
    gone = kept_changed(root, [_kept_folder("ckpt-9")])
    assert gone is not None and "gone" in gone
    fake_s3.fault = "empty-first"
    assert kept_changed(root, [_kept_folder("c")]) is None
    fake_s3.fault = "outside"
    fake_s3.outside = {"runs/ckpt-90/model.pt": b"another checkpoint"}
    why = kept_changed(root, [_kept_folder("ckpt-9")])
    assert why is not None and "cannot be checked" in why and "outside" in why
