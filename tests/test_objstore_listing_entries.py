"""Listing entries a store should never send, against the tiny S3, GCS and Azure endpoints
on loopback (tests/s3_answers.py, tests/gcs_answers.py, tests/azure_answers.py): an entry
without a key or name, a size that is missing, negative or no number, no ETag or
generation, no modification time, a common prefix without a name, a list that is no
list.  Each is a one-line ``RootError`` naming what was wrong, never a shorter listing (a
rescan would drop the rows of objects still there), an object of size 0, of no identity
or from 1970 (the first a retention rule removes), nor a traceback; the index keeps its
rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure_answers import FakeAzure, fake_azure
from gcs_answers import FakeGCS, fake_gcs
from s3_answers import BUCKET, FakeS3, fake_s3

from store.index.db import open_db
from store.objscan import ObjectIndexer
from store.root import RootError
from store.root.objstore import ObjectRoot

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fake_azure", "fake_gcs", "fake_s3"]

OBJECTS = {
    "runs/a.txt": b"a",
    "runs/b.txt": b"bb",
    "runs/c/d.txt": b"ddd",
}
ROWS = ["a.txt", "b.txt", "c/d.txt"]


def _rows(db_path: Path) -> list[str]:
    db = open_db(db_path, readonly=True)
    try:
        return sorted(
            bytes(path).decode() for (path,) in db.conn.execute("SELECT path FROM artifacts")
        )
    finally:
        db.close()


def _fails_and_keeps_the_rows(root: ObjectRoot, db_path: Path, spoil: Callable[[], None]) -> str:
    """Index ``root`` whole, spoil its listing, then: every listing call and a rescan fail
    with one line, and the index still holds every row.  The error's message."""
    db = open_db(db_path)
    try:
        indexer = ObjectIndexer(db, root)
        assert indexer.scan().files == len(ROWS)
        spoil()
        with pytest.raises(RootError) as caught:
            indexer.scan()
        with pytest.raises(RootError):
            list(root.walk())
        with pytest.raises(RootError):
            root.list_dir("")
        with pytest.raises(RootError):
            list(root.objects())
    finally:
        db.close()
    assert _rows(db_path) == ROWS
    message = str(caught.value)
    assert "\n" not in message
    return message


S3_SPOILED: dict[str, tuple[Callable[[str], str], str]] = {
    "no-key": (lambda t: t.replace("<Key>runs/b.txt</Key>", ""), "Key"),
    "no-etag": (lambda t: re.sub(r"<ETag>[^<]*</ETag>", "", t, count=1), "ETag"),
    "empty-etag": (lambda t: re.sub(r"<ETag>[^<]*</ETag>", '<ETag>""</ETag>', t, count=1), "ETag"),
    "negative-size": (lambda t: t.replace("<Size>2</Size>", "<Size>-2</Size>"), "Size"),
    "no-size": (lambda t: t.replace("<Size>2</Size>", ""), "Size"),
    "no-last-modified": (
        lambda t: re.sub(r"<LastModified>[^<]*</LastModified>", "", t, count=1),
        "LastModified",
    ),
}


@pytest.mark.parametrize("case", list(S3_SPOILED))
def test_a_malformed_s3_entry_fails_the_listing(fake_s3: FakeS3, tmp_path: Path, case: str) -> None:
    fake_s3.objects.update(OBJECTS)
    fake_s3.page_keys = 100
    rewrite, named = S3_SPOILED[case]

    def spoil() -> None:
        fake_s3.rewrite = rewrite

    message = _fails_and_keeps_the_rows(ObjectRoot(f"s3://{BUCKET}/runs"), tmp_path / "i.db", spoil)
    assert named in message


def test_a_common_prefix_without_a_name_fails_the_folder_listing(fake_s3: FakeS3) -> None:
    fake_s3.objects.update(OBJECTS)
    fake_s3.page_keys = 100
    fake_s3.rewrite = lambda t: t.replace("<Prefix>runs/c/</Prefix>", "")
    with pytest.raises(RootError, match="Prefix"):
        ObjectRoot(f"s3://{BUCKET}/runs").list_dir("")


def _spoil_b(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A page rewrite applying ``change`` to the item named ``runs/b.txt``."""

    def rewrite(page: dict[str, Any]) -> dict[str, Any]:
        page["items"] = [
            change(item) if item.get("name") == "runs/b.txt" else item
            for item in page.get("items", [])
        ]
        return page

    return rewrite


def _without(field: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda item: {k: v for k, v in item.items() if k != field}


GCS_SPOILED: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "no-name": (_spoil_b(_without("name")), "name"),
    "name-not-a-string": (_spoil_b(lambda item: item | {"name": 7}), "name"),
    "item-not-an-object": (_spoil_b(lambda item: "runs/b.txt"), "no object"),
    "no-size": (_spoil_b(_without("size")), "size"),
    "negative-size": (_spoil_b(lambda item: item | {"size": "-2"}), "size"),
    "size-not-a-number": (_spoil_b(lambda item: item | {"size": "2.0"}), "size"),
    "no-generation": (_spoil_b(_without("generation")), "generation"),
    "no-updated": (_spoil_b(_without("updated")), "updated"),
    "items-not-a-list": (lambda page: page | {"items": {"runs/a.txt": {}}}, "items"),
    "prefix-not-a-string": (lambda page: page | {"prefixes": [None]}, "prefix"),
}


@pytest.mark.parametrize("case", list(GCS_SPOILED))
def test_a_malformed_gcs_item_fails_the_listing(
    fake_gcs: FakeGCS, tmp_path: Path, case: str
) -> None:
    for key, body in OBJECTS.items():
        fake_gcs.put(key, body)
    rewrite, named = GCS_SPOILED[case]

    def spoil() -> None:
        fake_gcs.rewrite_page = rewrite

    message = _fails_and_keeps_the_rows(
        ObjectRoot(f"gs://{fake_gcs.bucket}/runs"), tmp_path / "i.db", spoil
    )
    assert named in message


def test_the_gcs_fake_pages_a_right_listing_whole(fake_gcs: FakeGCS) -> None:
    for key, body in OBJECTS.items():
        fake_gcs.put(key, body)
    fake_gcs.page_keys = 1
    root = ObjectRoot(f"gs://{fake_gcs.bucket}/runs")
    walked = {f"{f}/{e.name}" if f else e.name for f, es in root.walk() for e in es}
    assert walked == {"a.txt", "b.txt", "c", "c/d.txt"}
    assert sorted(e.name for e in root.list_dir("")) == ["a.txt", "b.txt", "c"]
    assert root.stats.ops["objects.list"] > 3


AZURE_SPOILED: dict[str, tuple[Callable[[str], str], str]] = {
    "no-name": (lambda t: t.replace("<Name>runs/b.txt</Name>", ""), "cannot read"),
    "no-etag": (lambda t: re.sub(r"<Etag>[^<]*</Etag>", "", t, count=1), "ETag"),
    "no-size": (lambda t: t.replace("<Content-Length>2</Content-Length>", ""), "size"),
    "negative-size": (
        lambda t: t.replace(
            "<Content-Length>2</Content-Length>", "<Content-Length>-2</Content-Length>"
        ),
        "size",
    ),
    "no-last-modified": (
        lambda t: re.sub(r"<Last-Modified>[^<]*</Last-Modified>", "", t, count=1),
        "Last-Modified",
    ),
}


@pytest.mark.parametrize("case", list(AZURE_SPOILED))
def test_a_malformed_azure_entry_fails_the_listing(
    fake_azure: FakeAzure, tmp_path: Path, case: str
) -> None:
    for key, body in OBJECTS.items():
        fake_azure.put(key, body)
    rewrite, named = AZURE_SPOILED[case]

    def spoil() -> None:
        fake_azure.rewrite_listing = rewrite

    message = _fails_and_keeps_the_rows(
        ObjectRoot(f"az://{fake_azure.container}/runs"), tmp_path / "i.db", spoil
    )
    assert named in message
