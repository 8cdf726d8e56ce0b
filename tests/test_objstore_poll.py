"""Watching a bucket is polling: an object put while the poller runs reaches the index
without a restart, and the schedule's monthly request cost comes from measured passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from bucket_checks import polling_finds_a_new_object_and_prices_its_listings
from objstore_server import S3Server, fresh_bucket, s3_server

from store.index.db import open_db
from store.objpoll import BucketPoller

pytestmark = pytest.mark.objstore
__all__ = ["fresh_bucket", "s3_server"]


def paths_in(db_path: Path) -> set[str]:
    db = open_db(db_path, readonly=True)
    try:
        return {
            bytes(p).decode("utf-8", "replace")
            for (p,) in db.conn.execute("SELECT path FROM artifacts")
        }
    finally:
        db.close()


def wait_for(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_an_object_put_while_polling_reaches_the_index(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    bucket = fresh_bucket(versioned=False)
    polling_finds_a_new_object_and_prices_its_listings(
        f"s3://{bucket}", partial(s3_server.put, bucket), "list_objects_v2", tmp_path
    )


def test_bad_intervals_are_refused(tmp_path: Path) -> None:
    from store.errors import ArtlensError

    with pytest.raises(ArtlensError, match="positive"):
        BucketPoller(tmp_path / "x.db", ["s3://b"], live_every=0)


def test_artlens_watch_polls_a_bucket_until_sigterm(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db_path = tmp_path / "bucket.db"
    out = tmp_path / "out.txt"
    args = ["watch", url, "--db", str(db_path), "--poll", "0.2", "--reconcile", "1"]
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parent.parent,
            env=dict(os.environ),
        )
        try:
            wait_for(lambda: "[full]" in out.read_text(), "the first pass")
            s3_server.put(bucket, "mlflow/late.txt", b"late\n")
            wait_for(lambda: "mlflow/late.txt" in paths_in(db_path), "the new object")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
    text = out.read_text()
    assert code == 0, text
    assert text.startswith(f"polling {url} (live every 0.2s, all every 1s)"), text
    assert "/month" in text and "stopped: " in text and "Traceback" not in text


def test_artlens_watch_polls_the_buckets_of_a_mixed_index_beside_its_folders(
    s3_server: S3Server, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "runs/a/notes.txt", b"first\n")
    url = f"s3://{bucket}/runs"
    folder = tmp_path / "folder"
    (folder / "run1").mkdir(parents=True)
    (folder / "run1" / "notes.txt").write_text("first\n")
    db_path = tmp_path / "mixed.db"
    out = tmp_path / "out.txt"
    args = ["watch", str(folder), url, "--db", str(db_path), "--reconcile", "1"]
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parent.parent,
            env=dict(os.environ),
        )
        try:
            wait_for(lambda: "[full]" in out.read_text(), "the bucket's first pass")
            assert {"run1/notes.txt", "a/notes.txt"} <= paths_in(db_path)
            s3_server.put(bucket, "runs/b/late.txt", b"late\n")
            (folder / "run1" / "late.txt").write_text("late\n")
            wait_for(lambda: "b/late.txt" in paths_in(db_path), "the new object")
            wait_for(lambda: "run1/late.txt" in paths_in(db_path), "the new file")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
    text = out.read_text()
    assert code == 0, text
    [said] = [line for line in text.splitlines() if line.startswith("watching ")]
    assert said.startswith(f"watching {folder} (") and f"; polling {url} (live every" in said
    assert "stopped" in text and "Traceback" not in text
    db = open_db(db_path, readonly=True)
    try:
        roots = sorted(os.fsdecode(bytes(p)) for (p,) in db.conn.execute("SELECT path FROM roots"))
    finally:
        db.close()
    assert roots == sorted([str(folder), url])


def test_run_summaries_are_read_before_the_write_transaction_opens(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """A folder watcher writing the same index beside the poller never waits on GETs."""
    from typing import Any

    from store.objscan import ObjectIndexer
    from store.root.objstore import ObjectRoot

    held: list[bool] = []

    class Watched:
        """The real backend; each ranged GET notes whether the index's write transaction
        is open."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def get_range(self, *args: Any, **kwargs: Any) -> Any:
            held.append(indexer.db.conn.in_transaction)
            return self.real.get_range(*args, **kwargs)

    bucket = fresh_bucket(versioned=False)
    db = open_db(tmp_path / "bucket.db")
    try:
        root = ObjectRoot(f"s3://{bucket}")
        root.backend = Watched(root.backend)
        indexer = ObjectIndexer(db, root)
        indexer.scan(defer_summaries=True)
        held.clear()  # detection's own reads
        assert indexer.fill_summaries() > 0
        params = [
            r[0] for r in db.conn.execute("SELECT params FROM runs WHERE framework = 'mlflow'")
        ]
    finally:
        db.close()
    assert held and not any(held), held
    assert any('"lr"' in p for p in params), params
