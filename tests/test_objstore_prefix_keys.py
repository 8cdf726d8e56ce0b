"""The object named exactly ``<prefix>/`` (a key that ends the root's own prefix, with
bytes in it) against a real S3 server: it is the root's ``%`` entry in a listing, a walk,
a read and a retention batch alike, and never the object ``<prefix>`` beside the root,
which is outside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from objstore_server import S3Server, s3_server

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.retention.bucket import TRASH, BucketTrash
from store.root.objstore import ObjectRoot

pytestmark = pytest.mark.objstore
__all__ = ["s3_server"]


def _bucket(server: S3Server) -> str:
    bucket: str = server.new_bucket(versioned=False)
    server.put(bucket, "runs", b"outside the root")
    server.put(bucket, "runs/", b"inside")
    server.put(bucket, "runs/x.txt", b"x")
    server.put(bucket, "runs/a/", b"")  # a folder marker: no entry
    server.put(bucket, "runs/a/b/", b"under a")
    return bucket


def test_the_prefix_key_is_the_root_entry_everywhere(s3_server: S3Server, tmp_path: Path) -> None:
    root = ObjectRoot(f"s3://{_bucket(s3_server)}/runs")
    assert root.key_of("%") == "runs/"
    listed = {e.name: e.size for e in root.list_dir("")}
    walked = {f"{f}/{e.name}" if f else e.name: e.size for f, es in root.walk() for e in es}
    objects = {path: obj.size for path, obj in root.objects()}
    assert listed == {"%": 6, "x.txt": 1, "a": 0}
    assert walked == {"%": 6, "x.txt": 1, "a": 0, "a/b": 0, "a/b/%": 7}
    assert objects == {"%": 6, "x.txt": 1, "a/b/%": 7}
    assert root.stat("%").size == 6
    assert root.read_capped("%", 100) == (b"inside", False)
    with root.open("%") as reader:
        assert reader.read_at(0, 100) == b"inside"
    assert root.read_capped("a/b/%", 100) == (b"under a", False)

    db = open_db(tmp_path / "i.db")
    try:
        ObjectIndexer(db, root).scan()
        rows = dict(db.conn.execute("SELECT CAST(path AS TEXT), size FROM artifacts"))
    finally:
        db.close()
    assert rows == {"%": 6, "x.txt": 1, "a/b/%": 7}


def test_trashing_the_prefix_key_never_touches_the_key_beside_the_root(
    s3_server: S3Server,
) -> None:
    bucket = _bucket(s3_server)
    root = ObjectRoot(f"s3://{bucket}/runs")
    trash = BucketTrash(root)
    batch = trash.apply(trash.plan(["%"]))
    assert [(i.key, i.state) for i in batch.items] == [("runs/", "trashed")]
    left = {k: v for k, v in s3_server.contents(bucket).items() if f"/{TRASH}/" not in k}
    assert left == {
        "runs": b"outside the root",
        "runs/x.txt": b"x",
        "runs/a/": b"",
        "runs/a/b/": b"under a",
    }
    trash.restore(batch)
    assert s3_server.contents(bucket)["runs/"] == b"inside"


def test_dot_keys_are_their_own_on_s3_and_the_root_is_no_object(s3_server: S3Server) -> None:
    """S3 keeps a key's ``..`` as it is (aiobotocore sends the path encoded, unresolved):
    ``runs/../x.txt`` is the root's ``%../x.txt``, trashed and restored as itself, never
    ``x.txt`` beside the prefix.  The root's own path (``""``) is refused: its key is the
    object ``runs`` beside the root, which plan took for the root's and apply trashed."""
    bucket = _bucket(s3_server)
    s3_server.put(bucket, "x.txt", b"beside the root")
    s3_server.put(bucket, "runs/../x.txt", b"a dot-dot key")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}/runs"))
    batch = trash.apply(trash.plan(["", "%../x.txt"]))
    assert [(i.key, i.state) for i in batch.items] == [
        ("runs", "refused"),
        ("runs/../x.txt", "trashed"),
    ]
    contents = s3_server.contents(bucket)
    assert contents[f"runs/{TRASH}/{batch.batch}/../x.txt"] == b"a dot-dot key"
    assert (contents["runs"], contents["x.txt"]) == (b"outside the root", b"beside the root")
    assert "runs/../x.txt" not in contents
    trash.restore(trash.load(batch.batch))
    assert s3_server.contents(bucket)["runs/../x.txt"] == b"a dot-dot key"
