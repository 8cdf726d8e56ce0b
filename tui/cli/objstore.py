"""``artlens index s3://bucket/prefix``: object-store roots into an index, with what the
listing and reads cost (requests, body bytes)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import click

from store.errors import ArtlensError
from store.locate import ENV_DB, cache_dir, remember
from store.lock import WriterLock
from tui.cli.common import emit_json


def object_db(db_path: Path | None, urls: list[str]) -> Path:
    """--db, then $ARTLENS_DB, then one cache index per set of URLs."""
    if db_path:
        return db_path.expanduser()
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    normal = sorted({u.rstrip("/") for u in urls})
    digest = hashlib.sha1("\0".join(normal).encode()).hexdigest()[:12]
    name = normal[0].partition("://")[2].replace("/", "_")
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40] or "bucket"
    return cache_dir() / f"{slug}-{digest}.db"


def index_urls(urls: list[str], db_path: Path | None, *, no_hash: bool, as_json: bool) -> None:
    """Index each object-store root: listings, run summaries through ranged reads and,
    unless ``no_hash``, model verdicts by inspection (objects are never hashed whole)."""
    from store.db import open_db
    from store.objscan import ObjectIndexer
    from store.root import open_root
    from store.root.objstore import ObjectRoot

    target = object_db(db_path, urls)
    target.parent.mkdir(parents=True, exist_ok=True)
    results = []
    with WriterLock(target, role="index"):
        db = open_db(target)
        try:
            for url in urls:
                root = open_root(url)
                if not isinstance(root, ObjectRoot):
                    raise ArtlensError(f"not an object-store root: {url}")
                indexer = ObjectIndexer(db, root)
                report = indexer.scan(defer_summaries=True)
                indexer.fill_summaries()
                if not no_hash:
                    indexer.hash_pending()
                results.append((report, root.stats.to_json()))
        finally:
            db.close()
    if db_path is None:
        remember(target, [])  # commands run later without --db find it as the latest
    if as_json:
        emit_json({"db": str(target), "roots": [{**r.to_json(), **cost} for r, cost in results]})
        return
    for report, cost in results:
        click.echo(
            f"{report.root}: {report.files} objects, {report.runs} runs "
            f"(+{report.added} ~{report.changed} -{report.removed}) in {report.seconds:.2f}s; "
            f"{cost['requests']} requests, {cost['bytes']} bytes"
        )
        for what, samples in sorted(report.samples.items()):
            click.echo(f"  {what}: {', '.join(samples)}")
    click.echo(f"index: {target}")
