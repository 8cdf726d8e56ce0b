"""Object-store roots on the command line: ``artlens index s3://bucket/prefix`` (with what
the listing and reads cost), ``artlens bucket trash|restore|purge`` (retention) and
``artlens bucket dups`` (duplicates, exact or probable)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from store.errors import ArtlensError
from store.locate import ENV_DB, cache_dir, remember
from store.lock import WriterLock
from tui.cli.common import count_type, emit_json, json_option

if TYPE_CHECKING:
    from store.retention.bucket import Batch, BucketTrash
    from store.root.objstore import ObjectRoot


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
    from store.index.db import open_db
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


# --- retention on buckets -----------------------------------------------------------------


def _object_root(url: str) -> ObjectRoot:
    from store.root import is_url, open_root
    from store.root.objstore import ObjectRoot

    if not is_url(url):
        raise ArtlensError(f"not an object-store URL: {url} (local folders: artlens retention)")
    root = open_root(url)
    if not isinstance(root, ObjectRoot):
        raise ArtlensError(f"not an object-store root: {url}")
    return root


def _trash_for(url: str) -> BucketTrash:
    from store.retention.bucket import BucketTrash

    return BucketTrash(_object_root(url))


def _print_batch(batch: Batch, verb: str) -> None:
    from store.paths import display
    from tui.format import human_size

    for item in batch.items:
        note = f"  ({display(item.note)})" if item.note else ""
        click.echo(f"{item.state:<9} {human_size(item.size):>8}  {display(item.rel)}{note}")
    counts = ", ".join(f"{n} {state}" for state, n in sorted(batch.counts().items()))
    click.echo(
        f"{verb}: {counts}; {human_size(batch.total_bytes)}, about "
        f"${batch.monthly_cost():.2f}/month of storage; batch {batch.batch}"
    )


def _exit_if_left(batch: Batch, asked: list[int], done: str) -> None:
    """Name on stderr each item of ``asked`` (indexes into ``batch.items``) that the command
    did not bring to ``done`` (changed since the plan, locked, no such object, a newer
    object at the key, a failed request), or whose copy a restore left in the trash
    (``bucket.leftover``: restored, the copy is what a purge deletes), one line with why,
    then exit 1: a script never goes on as if it had.  Text and --json alike."""
    from store.paths import display
    from store.retention.bucket import leftover

    # a purge asked to delete a restored item's leftover copy leaves it ``restored``
    ok = {done, "restored"} if done == "purged" else {done}
    left = [
        batch.items[i] for i in asked if leftover(batch.items[i]) or batch.items[i].state not in ok
    ]
    for item in left:
        why = f"{item.state}: {item.note}" if item.note else item.state
        click.echo(f"artlens: skipped {display(item.rel)}: {display(why)}", err=True)
    if left:
        sys.exit(1)


def _in_state(batch: Batch, state: str) -> list[int]:
    return [i for i, item in enumerate(batch.items) if item.state == state]


@click.group("bucket")
def bucket_group() -> None:
    """Retention on a bucket prefix: trash objects (dry run first), restore, purge; dups."""


@bucket_group.command("trash")
@click.argument("url")
@click.argument("rels", nargs=-1, required=True)
@click.option("--apply", "do_apply", is_flag=True, help="Trash them (else a dry run).")
@json_option
def bucket_trash_cmd(url: str, rels: tuple[str, ...], do_apply: bool, as_json: bool) -> None:
    """Trash the objects at RELS under URL: a delete marker in a versioned bucket, else a
    server-side copy to .artlens-trash/ then a delete.  A dry run unless --apply."""
    trash = _trash_for(url)
    batch = trash.plan(list(rels))
    asked = list(range(len(batch.items)))
    if do_apply:
        batch = trash.apply(batch)
    if as_json:
        emit_json({"applied": do_apply, **batch.to_json()})
    else:
        _print_batch(batch, "trashed" if do_apply else "dry run (add --apply)")
    if do_apply:
        _exit_if_left(batch, asked, "trashed")


@bucket_group.command("restore")
@click.argument("url")
@click.argument("batch_id", metavar="BATCH")
@json_option
def bucket_restore_cmd(url: str, batch_id: str, as_json: bool) -> None:
    """Bring back what BATCH trashed under URL, never over an object written since."""
    trash = _trash_for(url)
    batch = trash.load(batch_id)
    # a refused item (not in the shape apply writes) is said on stderr, never left out
    asked = _in_state(batch, "trashed") + _in_state(batch, "refused")
    batch = trash.restore(batch)
    if as_json:
        emit_json(batch.to_json())
    else:
        _print_batch(batch, "restore")
    _exit_if_left(batch, asked, "restored")


@bucket_group.command("purge")
@click.argument("url")
@click.argument("batch_id", metavar="BATCH")
@click.option("--yes", "-y", is_flag=True, help="Delete for good (else a dry run).")
@click.option("--trust-manifest", is_flag=True,
              help="Purge a versioned batch this machine holds no record of, as its "
              "manifest in the bucket says.")  # fmt: skip
@json_option
def bucket_purge_cmd(
    url: str, batch_id: str, yes: bool, trust_manifest: bool, as_json: bool
) -> None:
    """Delete for good what BATCH trashed under URL (locked versions are kept).  Each
    item must be what apply recorded on this machine; a versioned batch applied from
    another one is purged only with --trust-manifest."""
    from store.retention.bucket import leftover

    trash = _trash_for(url)
    batch = trash.load(batch_id)
    asked = (
        _in_state(batch, "trashed")
        + _in_state(batch, "refused")
        + [i for i, item in enumerate(batch.items) if leftover(item)]
    )
    if yes:
        batch = trash.purge(batch, trust_manifest=trust_manifest)
    if as_json:
        emit_json({"purged": yes, **batch.to_json()})
    else:
        _print_batch(batch, "purge" if yes else "dry run (add --yes)")
    if yes:
        _exit_if_left(batch, asked, "purged")


@bucket_group.command("dups")
@click.argument("url")
@click.option("--hash", "full_hash", is_flag=True,
              help="SHA-256 every object sharing its size with another (exact).")  # fmt: skip
@click.option("--min-size", type=count_type(1), default=1, show_default=True,
              help="Ignore objects smaller than this many bytes.")  # fmt: skip
@click.option("--top", type=count_type(1), default=20, show_default=True,
              help="Groups listed (without --json).")  # fmt: skip
@json_option
def bucket_dups_cmd(url: str, full_hash: bool, min_size: int, top: int, as_json: bool) -> None:
    """Duplicate objects under URL: "exact" by a full-object SHA-256 checksum the store
    keeps (or by reading them, with --hash), else "probable" by size and ETag (a
    multipart ETag is no hash of the bytes)."""
    from store.objdups import etag_note, object_duplicates
    from store.paths import display
    from tui.format import human_size

    root = _object_root(url)
    found = object_duplicates(root, min_size=min_size, full_hash=full_hash)
    for note in found.warnings:
        click.echo(f"artlens: {display(note)}", err=True)
    if as_json:
        emit_json(
            {
                "url": root.url,
                "hashed": full_hash,
                "objects": found.objects,
                **root.stats.to_json(),
                "duplicates": [g.to_json() for g in found.groups],
                "warnings": found.warnings,
            }
        )
        return
    if not found.groups:
        click.echo(f"no duplicates among {found.objects} objects")
    for group in found.groups[:top]:
        why = etag_note(group.digest) if group.basis == "etag" else group.basis
        click.echo(
            f"{human_size(group.reclaimable):>8}  {group.certainty:<8}  "
            f"{len(group.paths)} copies of {human_size(group.size)} ({why})"
        )
        for path in group.paths[:6]:
            click.echo(f"          {display(path)}")
    if len(found.groups) > top:
        click.echo(f"… {len(found.groups) - top} more (--top, --json)")
    click.echo(f"{root.stats.requests} requests, {root.stats.bytes} bytes read")


COMMANDS = [bucket_group]
