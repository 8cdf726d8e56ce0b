"""A model object's verdict is of the bytes the listing saw: the index keeps it under the
object's identity (its ETag, which names the bytes), so a verdict made of other bytes
would be believed whenever the listed bytes come back.  Against the tiny S3 endpoint on
loopback (tests/s3_answers.py): a pickle that runs code is listed, overwritten with a
harmless one before its inspection, then put back."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from s3_answers import BUCKET, FakeS3, fake_s3

from store.index.db import open_db
from store.objscan import ObjectIndexer, identity_number
from store.root.objstore import ObjectRoot

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fake_s3"]

EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."
"""A protocol-0 pickle that calls os.system when loaded (never loaded here)."""
HARMLESS = pickle.dumps({"weights": [1.0, 2.0]}, protocol=2)


def _row(db_path: Path) -> tuple[int, str | None, str]:
    db = open_db(db_path, readonly=True)
    try:
        inode, verdict, state = db.conn.execute(
            "SELECT inode, verdict, hash_state FROM artifacts WHERE path = ?", [b"model.pkl"]
        ).fetchone()
    finally:
        db.close()
    return int(inode), verdict, str(state)


def test_a_verdict_is_never_kept_under_an_identity_it_was_not_made_of(
    fake_s3: FakeS3, tmp_path: Path
) -> None:
    fake_s3.objects["runs/model.pkl"] = EVIL
    root = ObjectRoot(f"s3://{BUCKET}/runs")
    db_path = tmp_path / "i.db"
    db = open_db(db_path)
    try:
        indexer = ObjectIndexer(db, root)
        indexer.scan(defer_summaries=True)
        evil_identity = identity_number(root.stat("model.pkl").identity)
        assert _row(db_path)[0] == evil_identity

        fake_s3.objects["runs/model.pkl"] = HARMLESS  # overwritten before the inspection
        indexer.hash_pending()
        inode, verdict, _ = _row(db_path)
        assert inode == evil_identity
        assert verdict != "safe", "the harmless bytes' verdict, kept under the evil ETag"

        fake_s3.objects["runs/model.pkl"] = EVIL  # the listed bytes come back
        indexer.scan(defer_summaries=True)
        indexer.hash_pending()
    finally:
        db.close()
    inode, verdict, state = _row(db_path)
    assert inode == evil_identity
    assert verdict == "dangerous", (verdict, state)
