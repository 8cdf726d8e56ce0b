"""Run diffs of bucket prefixes: ``artlens diff s3://b/p/run1 s3://b/p/run2``.

Each prefix is indexed on the spot into a private index (the same ``ObjectIndexer`` as
``artlens index URL``: one listing, the run readers' small ranged reads), so the diff is of
what the bucket holds now, whichever index (if any) saw it before.  The run diff is then
the local one (``store.rundiff.diff_sides``), with every file read through the bucket.

Objects are never hashed whole.  An ETag that is the MD5 of the bytes (a single-part
upload) stands in for the hash, as ``md5:<etag>``: two objects are unchanged only when
both ETags are such digests and equal.  A multipart ETag proves nothing about the bytes,
so a same-size pair with one stays unverified (never reported unchanged).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from store import paths
from store.diff import RunDiff
from store.diff._io import DiffError
from store.errors import ArtlensError
from store.index.query import RunRow, list_runs
from store.root import RootError
from store.root.objstore import ObjectRoot, is_content_hash


def _reader(root: ObjectRoot) -> Callable[[str, int], tuple[bytes, bool]]:
    """A ``store.rundiff.Reader`` for files named ``<root url>/<rel>``."""
    base = root.url + "/"

    def read(full: str, cap: int) -> tuple[bytes, bool]:
        if not full.startswith(base):
            raise DiffError(f"{paths.display(full)}: not under {paths.display(root.url)}")
        try:
            return root.read_capped(full[len(base) :], cap)
        except (RootError, OSError) as exc:
            raise DiffError(f"cannot read {paths.display(full)}: {exc}") from None

    return read


def index_run_prefix(db_path: Path, root: ObjectRoot, rel: str) -> RunRow:
    """Index the prefix ``rel`` of ``root`` (its parent, so that run detection sees the
    experiment around it) into a fresh index at ``db_path``; return the run it is.

    ``ArtlensError`` when the prefix holds no run of its own (a folder of runs, a bucket
    with loose files): the message says what was found instead.
    """
    from store.index import write
    from store.index.db import open_db, write_transaction
    from store.objscan import ObjectIndexer

    db = open_db(db_path)
    try:
        indexer = ObjectIndexer(db, root)
        indexer.scan(rel, defer_summaries=True)
        indexer.fill_summaries()
        known = [
            ("md5:" + etag.strip('"'), paths.key(path))
            for path, obj in root.objects(rel)
            if root.scheme == "s3" and is_content_hash(etag := obj.etag)
        ]
        with write_transaction(db) as conn:
            write.set_known_hashes(conn, indexer.root_id, known)
        runs = list_runs(db)
    finally:
        db.close()
    own = [run for run in runs if run.path == paths.key(rel)]
    if len(own) == 1:
        return own[0]
    inside = ", ".join(paths.display(run.abs_path) for run in runs[:3])
    found = f"; runs below it: {inside}{' …' if len(runs) > 3 else ''}" if runs else ""
    shown = f"{root.url}/{rel}" if rel else root.url
    raise ArtlensError(f"{paths.display(shown)} is not a run{found}")


def diff_bucket_runs(
    side_a: tuple[ObjectRoot, str], side_b: tuple[ObjectRoot, str], warnings: list[str]
) -> tuple[RunRow, RunRow, RunDiff]:
    """The run diff of two bucket prefixes (each ``(root, rel)``) that are each a run
    (``a`` is the old side)."""
    from store.index.db import open_db
    from store.rundiff import diff_sides

    with tempfile.TemporaryDirectory(prefix="artlens-diff-") as tmp:
        path_a, path_b = Path(tmp, "a.db"), Path(tmp, "b.db")
        run_a = index_run_prefix(path_a, *side_a)
        run_b = index_run_prefix(path_b, *side_b)
        db_a, db_b = open_db(path_a, readonly=True), open_db(path_b, readonly=True)
        try:
            result = diff_sides(
                db_a,
                run_a,
                db_b,
                run_b,
                warnings,
                _reader(side_a[0]),
                _reader(side_b[0]),
                folders=(side_a, side_b),
            )
        finally:
            db_a.close()
            db_b.close()
    return run_a, run_b, result
