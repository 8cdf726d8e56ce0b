"""Retention as use-cases: what the CLI (``tui.cli.retention``) and the retention view
(``tui.screens.retention``) both call, so the orchestration is written once.

Load each root's policy (or an ad-hoc one), plan with the errors, usage and duplicates,
the expiring items and the stable JSON shapes; act on the index "as its writer or through
the filesystem only" (when a watcher holds the writer lock, the trash manifest is the record
and the watcher sees the files move); pin and unpin.  Errors are ``ArtlensError``s.
Runs on whatever thread calls it (a Textual worker in the TUI): nothing here touches a UI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from store import jsontext, paths
from store.errors import ArtlensError
from store.index import query
from store.lock import WriterBusyError, WriterLock
from store.retention.audit import AuditRecord
from store.retention.candidates import Candidate
from store.retention.plan import Plan, make_plan
from store.retention.policy import INVALID_POLICY as INVALID_POLICY
from store.retention.policy import Policy, PolicyError, load_policy
from store.retention.trash import (
    Progress,
    Report,
    TrashEntry,
    TrashError,
    TrashRefused,
    apply_plan,
    audit_log,
    list_trash,
    purge,
    read_manifest_checked,
    restore,
)
from store.retention.usage import DuplicateGroup, RootUsage, disk_usage, duplicates
from store.root import is_url
from store.userstate import GLOB_CHARS, Pin, UserState

EXPIRING_SECONDS = 7 * 86400.0
"""Kept items whose ``keep_within`` protection ends sooner than this are "expiring soon"."""
"""The source shown for a root whose policy file is broken (it keeps everything)."""


# --- roots and policies ---------------------------------------------------------------------


def indexed_roots(db: sqlite_utils.Database) -> list[str]:
    """Absolute paths of every root in the index."""
    return [os.fsdecode(path) for _, path, _ in query.roots(db)]


def resolve_roots(db: sqlite_utils.Database, wanted: Sequence[Path | str]) -> list[str]:
    """Absolute paths of the indexed roots asked for (all of them when none is)."""
    indexed = indexed_roots(db)
    if not wanted:
        if not indexed:
            raise ArtlensError("the index has no roots: run `artlens index ROOT` first")
        return indexed
    chosen = []
    for root in wanted:
        text = os.fspath(root)
        # a bucket root is indexed under its URL, never a path of the working folder
        absolute = text.rstrip("/") if is_url(text) else os.path.abspath(root)
        if absolute not in indexed:
            raise ArtlensError(f"not an indexed root: {paths.display(absolute)}")
        chosen.append(absolute)
    return chosen


def load_policies(
    roots: Sequence[str], adhoc: Policy | None = None, *, strict: bool = False
) -> tuple[dict[str, Policy], list[str]]:
    """The policy of every root (``adhoc`` for all, else each root's file or the user config)
    and one line per broken policy file; ``strict`` raises the first instead.

    A root whose policy file is broken keeps everything (a source of ``INVALID_POLICY``).
    """
    policies: dict[str, Policy] = {}
    errors: list[str] = []
    for root in roots:
        if adhoc is not None:
            policies[root] = adhoc
            continue
        if is_url(root):
            policies[root] = Policy()  # a bucket's policy comes from flags: no file is read
            continue
        try:
            policies[root] = load_policy(Path(root))
        except PolicyError as exc:
            if strict:
                raise
            errors.append(" ".join(str(exc).split()))
            policies[root] = Policy(source=INVALID_POLICY)
    return policies, errors


# --- the plan -------------------------------------------------------------------------------


def expiring(plan: Plan, within: float = EXPIRING_SECONDS) -> list[Candidate]:
    """Kept items whose time protection ends within ``within`` seconds, soonest first."""
    soon = [
        item
        for item in plan.items
        if item.keep and item.expires is not None and item.expires - plan.now < within
    ]
    return sorted(soon, key=lambda item: item.expires or 0.0)


@dataclass(frozen=True)
class Planned:
    """A plan with the policy of every root and the broken policy files."""

    plan: Plan
    policies: dict[str, Policy]
    errors: tuple[str, ...] = ()
    adhoc: bool = False

    def expiring(self, within: float = EXPIRING_SECONDS) -> list[Candidate]:
        return expiring(self.plan, within)

    def to_json(self) -> dict[str, Any]:
        return plan_json(self.plan, self.policies)


def make(
    db: sqlite_utils.Database,
    roots: Sequence[str] | None = None,
    *,
    adhoc: Policy | None = None,
    strict: bool = False,
    now: float | None = None,
) -> Planned:
    """Plan ``roots`` (default: every indexed root) under their policies, with the pins.

    ``strict`` (the CLI) stops at a broken policy file; otherwise it is an error line and
    that root keeps everything.
    """
    chosen = indexed_roots(db) if roots is None else list(roots)
    policies, errors = load_policies(chosen, adhoc, strict=strict)
    related: dict[str, Policy] = {}

    def policy_of(root: str) -> Policy:
        """A chosen root's policy, or that of an indexed root holding the same files (its
        pin globs protect them here too): read when the plan meets it, never strict."""
        if root in policies:
            return policies[root]
        if root not in related:
            found, broken = load_policies([root], adhoc)
            related[root] = found[root]
            errors.extend(broken)
        return related[root]

    with UserState() as state:
        plan = make_plan(db, chosen, policy_of, now=time.time() if now is None else now, pins=state)
    return Planned(plan, policies, tuple(errors), adhoc is not None)


def usage(
    db: sqlite_utils.Database, roots: Sequence[str] | None = None
) -> tuple[tuple[RootUsage, ...], tuple[DuplicateGroup, ...]]:
    """Disk usage (on disk too: an lstat per file) and duplicates of ``roots`` (default:
    every indexed root).  Apart from ``make``: at a million files it takes seconds more
    than the plan, and a plan need not wait for it."""
    chosen = indexed_roots(db) if roots is None else list(roots)
    return tuple(disk_usage(db, chosen)), tuple(duplicates(db, chosen))


# --- acting as the index's writer, or through the filesystem only ---------------------------


@contextmanager
def as_writer(
    db_path: Path, role: str, on_busy: Callable[[WriterBusyError], None] | None = None
) -> Iterator[sqlite_utils.Database | None]:
    """The index as its writer, or None (filesystem only) when someone else writes it.

    With None the trash manifest is the record; the index's writer (a watcher) sees the
    files leave or come back like any other change.  ``on_busy`` hears who holds the lock.
    """
    from store.index.db import open_db

    lock = WriterLock(db_path, role=role)
    try:
        lock.acquire()
    except WriterBusyError as exc:
        if on_busy is not None:
            on_busy(exc)
        yield None
        return
    try:
        db = open_db(db_path)
        try:
            yield db
        finally:
            db.close()
    finally:
        lock.release()


@dataclass
class Outcome:
    """What an apply, restore or purge did, and whether this process recorded it."""

    report: Report = field(default_factory=Report)
    index_updated: bool = False
    batches: tuple[tuple[str, str], ...] = ()
    """``(bucket URL, batch id)`` of each batch an apply trashed objects in: a bucket keeps
    its trash in itself, restored by batch (``restore_buckets``)."""


OnBusy = Callable[[WriterBusyError], None]


def apply(
    plan: Plan,
    db_path: Path,
    *,
    role: str,
    progress: Progress | None = None,
    on_busy: OnBusy | None = None,
) -> Outcome:
    """Move what ``plan`` removes to each root's trash (every item re-checked first).

    The plan is checked against the index at ``db_path`` (read-only when another process
    writes it): a root it does not hold refuses the plan, a removal it does not hold as
    planned is skipped (``apply_plan``).  Removals under an object-store root go to that
    bucket's own trash, one batch per root (``bucket.apply_buckets``: each object
    re-checked against the plan, a run skipped whose kept units changed, a removal pinned
    now skipped); as the index's writer this process then re-lists those buckets, so the
    index drops what left them."""
    from store.index.db import open_db
    from store.retention.bucket import (
        apply_buckets,
        check_bucket_roots,
        refresh_buckets,
        split_buckets,
    )
    from store.retention.plan import _Nesting

    local, buckets = split_buckets(plan)
    total = len(plan.removals)

    def local_progress(done: int, _total: int, path: str) -> None:
        if progress is not None:
            progress(done, total, path)

    with as_writer(db_path, role, on_busy) as db:
        index = db if db is not None else open_db(db_path, readonly=True)
        try:
            check_bucket_roots(plan, index)  # the folder roots: apply_plan, before a move
            with UserState() as state:
                report = apply_plan(
                    local,
                    db,
                    progress=local_progress,
                    policy=f"plan {plan.id}",
                    index=index,
                    pins=state,
                )
                batches = apply_buckets(
                    buckets,
                    plan,
                    report,
                    pins=state,
                    nesting=_Nesting(index),
                    progress=progress,
                    done_before=len(local.removals),
                    index=index,
                )
            if db is not None and batches:
                refresh_buckets(db, [url for url, _ in batches])
        finally:
            if index is not db:
                index.close()
    return Outcome(report, db is not None, tuple(batches))


def restore_buckets(
    db_path: Path,
    urls: Sequence[str],
    batches: Sequence[str],
    *,
    role: str,
    on_busy: OnBusy | None = None,
) -> Outcome:
    """Restore bucket trash batches (ids an apply reported) from whichever of the bucket
    roots at ``urls`` holds each; as the index's writer, re-list those buckets after."""
    from store.retention.bucket import refresh_buckets, restore_batches

    report = restore_batches(urls, batches)
    with as_writer(db_path, role, on_busy) as db:
        if db is not None:
            refresh_buckets(db, urls)
    return Outcome(report, db is not None)


def restore_items(
    db_path: Path,
    wanted: Mapping[str, Sequence[str] | Literal["all"]],
    *,
    role: str,
    progress: Progress | None = None,
    on_busy: OnBusy | None = None,
) -> Outcome:
    """Move trashed items back, per root: the ids given, or ``"all"``."""
    total = Outcome()
    with as_writer(db_path, role, on_busy) as db:
        total.index_updated = db is not None
        for root, ids in wanted.items():
            report = restore(root, ids, db, progress=progress)
            total.report.done += report.done
            total.report.skipped += report.skipped
    return total


def purge_items(
    db_path: Path,
    roots: Sequence[str],
    older_than: float,
    *,
    role: str,
    now: float | None = None,
    on_busy: OnBusy | None = None,
) -> Outcome:
    """Delete for good what the trash of ``roots`` has held longer than ``older_than``."""
    total = Outcome()
    with as_writer(db_path, role, on_busy) as db:
        total.index_updated = db is not None
        for root in roots:
            report = purge(root, older_than, db, now=now)
            total.report.done += report.done
            total.report.skipped += report.skipped
    return total


# --- the trash ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trashes:
    """What the trash of each root holds, its audit log, and one line per problem."""

    entries: tuple[tuple[str, TrashEntry], ...] = ()
    """(root, entry), each root's oldest first."""
    audit: tuple[tuple[str, AuditRecord], ...] = ()
    """(root, record) of every root's audit log, newest last."""
    problems: tuple[str, ...] = ()
    """``root: problem``, printable: a manifest or audit line skipped, an unreadable trash."""


def read_trashes(roots: Sequence[str], *, audit: bool = False, refuse: bool = False) -> Trashes:
    """The trash of every root (with its audit log if asked); a trash that cannot be read is
    a problem line, and one refused as unsafe too unless ``refuse`` (then it raises)."""
    entries: list[tuple[str, TrashEntry]] = []
    records: list[tuple[str, AuditRecord]] = []
    problems: list[str] = []
    for root in roots:
        if is_url(root):  # a bucket keeps its trash in itself, by batch
            in_bucket, skipped = bucket_entries(root)
            entries += [(root, entry) for entry in in_bucket]
            problems += [f"{_text(root)}: {p}" for p in skipped]
            continue
        try:
            entries += [(root, entry) for entry in list_trash(root)]
            problems += [f"{_text(root)}: {_text(p)}" for p in read_manifest_checked(root)[1]]
            if audit:
                found, skipped = audit_log(root)
                records += [(root, record) for record in found]
                problems += [f"{_text(root)}: {_text(p)}" for p in skipped]
        except TrashRefused as exc:
            if refuse:
                raise
            problems.append(f"{_text(root)}: {_line(exc)}")
        except (TrashError, OSError) as exc:
            problems.append(f"{_text(root)}: {_line(exc)}")
    records.sort(key=lambda pair: pair[1].ts)
    return Trashes(tuple(entries), tuple(records), tuple(problems))


BUCKET_METHOD = "bucket"
"""``TrashEntry.method`` of an object in a bucket's trash: restored by its batch
(``restore_buckets``), never by the folder trash."""


def bucket_entries(url: str) -> tuple[list[TrashEntry], list[str]]:
    """What the trash of the bucket root at ``url`` holds, as trash entries (one per
    object still trashed, its ``batch`` the id a restore or purge takes; ``note`` why a
    restore left it, if one did), oldest first, and one printable line per problem: a
    manifest that could not be read, an item refused as not in the shape apply writes."""
    from store.retention.bucket import leftover, list_batches
    from store.root import RootError, open_root
    from store.root.objstore import ObjectRoot

    try:
        root = open_root(url)
    except (RootError, ValueError) as exc:
        return [], [_line(exc)]
    if not isinstance(root, ObjectRoot):
        return [], [f"not an object-store root: {_text(url)}"]
    batches, problems = list_batches(root)
    entries = []
    for batch in batches:
        for item in batch.items:
            if item.state == "refused":
                problems.append(
                    f"batch {_text(batch.batch)}: {_text(item.rel[:200])}: {_text(item.note)}"
                )
            if item.state != "trashed" and not leftover(item):
                continue  # a restored item's copy left in the trash is listed, to purge
            entries.append(
                TrashEntry(
                    f"{batch.batch}:{item.key}",
                    batch.batch,
                    root.url,
                    item.rel,
                    item.trash_key or f"version {item.version} (under a delete marker)",
                    False,
                    item.size,
                    batch.created,
                    "trashed",
                    method=BUCKET_METHOD,
                    note=item.note or None,
                )
            )
    return entries, [_text(p) for p in problems]


def _line(exc: BaseException) -> str:
    return _text(" ".join((str(exc) or type(exc).__name__).split())[:500])


# --- pins -----------------------------------------------------------------------------------


def locate(roots: Sequence[str], path: Path | str, *, resolve: bool = True) -> tuple[str, str]:
    """(indexed root, path relative to it) of a path on disk, named as the index names it:
    the folders on its way resolved, as the index never follows a link (a file seen
    through a linked folder is indexed, and retained, where it lies), its last name kept (a
    link is itself a file the index holds).  ``resolve=False`` takes it as written."""
    absolute = os.path.abspath(path)
    local = [root for root in roots if not is_url(root)]
    if not resolve:
        return _in_root(local, absolute, absolute, real=False)
    head, name = os.path.split(absolute)
    resolved = os.path.join(os.path.realpath(head), name)
    try:
        return _in_root(local, absolute, resolved, real=True)
    except ArtlensError:
        if resolved == absolute:
            raise
    try:  # written under a root, but a link on its way leads out of every root
        _in_root(local, absolute, absolute, real=False)
    except ArtlensError:
        pass
    else:
        raise ArtlensError(
            f"{paths.display(absolute)} is {paths.display(resolved)} (a symlinked folder on"
            " its way), outside every indexed root: the index never follows links"
        )
    raise ArtlensError(f"not under an indexed root: {paths.display(absolute)}")


def _in_root(roots: Sequence[str], asked: str, absolute: str, *, real: bool) -> tuple[str, str]:
    """The deepest root holding ``absolute`` (``real``: the roots' own links resolved)."""
    bases = {root: os.path.realpath(root) if real else root for root in roots}
    for root in sorted(roots, key=lambda r: len(bases[r]), reverse=True):
        base = bases[root]
        if absolute == base or absolute.startswith(base.rstrip("/") + "/"):
            rel = os.path.relpath(absolute, base)
            if rel == ".":
                raise ArtlensError("pin a run or a file inside a root, not the root itself")
            return root, rel
    raise ArtlensError(f"not under an indexed root: {paths.display(asked)}")


def pin_target(
    db: sqlite_utils.Database, roots: Sequence[str], path: Path | str
) -> tuple[str, str]:
    """``locate`` for a new pin, refusing a path neither on disk nor in the index: a
    mistyped pin would protect nothing and say it did."""
    root, rel = locate(roots, path)
    try:
        os.lstat(os.path.join(root, rel))
    except (FileNotFoundError, NotADirectoryError):
        if not _indexed_path(db, root, rel):
            glob = GLOB_CHARS & set(rel)
            hint = "; glob pins go in a root's .artlens.toml (pin = [...])" if glob else ""
            raise ArtlensError(
                "no such file or folder, on disk or in the index: "
                f"{paths.display(os.path.abspath(path))}{hint}"
            ) from None
    except OSError:
        pass  # it cannot be looked at (a folder on its way unreadable): it may be there
    return root, rel


def _indexed_path(db: sqlite_utils.Database, root: str, rel: str) -> bool:
    """The index holds ``rel`` under ``root``: a file, a run or a folder."""
    found = db.conn.execute("SELECT id FROM roots WHERE path = ?", [os.fsencode(root)]).fetchone()
    if found is None:
        return False
    rel_key = paths.key(rel)
    return any(
        db.conn.execute(
            f"SELECT 1 FROM {table} WHERE root_id = ? AND path = ?", [found[0], rel_key]
        ).fetchone()
        is not None
        for table in ("artifacts", "runs", "dirs")
    )


def pin(root: str, rel: str) -> None:
    """Pin ``rel`` under ``root``: retention never removes it."""
    with UserState() as state:
        state.pin(root, rel, glob=False)


def unpin(root: str, rel: str) -> bool:
    """Remove the pin of ``rel``; whether there was one."""
    with UserState() as state:
        return state.unpin(root, rel)


def unpin_path(roots: Sequence[str], path: Path | str) -> tuple[str, str, bool]:
    """Remove the pin of a path on disk, named as ``locate`` names it, else as written (a
    pin made through a linked folder before pins were resolved): (root, path relative to
    it, whether there was a pin)."""
    tried: list[tuple[str, str]] = []
    refused: ArtlensError | None = None
    for resolve in (True, False):
        try:
            found = locate(roots, path, resolve=resolve)
        except ArtlensError as exc:
            refused = refused or exc
            continue
        if found in tried:
            continue
        tried.append(found)
        if unpin(*found):
            return (*found, True)
    if not tried:
        assert refused is not None
        raise refused
    return (*tried[0], False)


def toggle_pin(root: str, rel: str) -> tuple[str, bool]:
    """Pin ``rel`` under ``root``, or unpin it if it was; (what happened, whether it did)."""
    with UserState() as state:
        if rel in state.pins(root):
            state.unpin(root, rel)
            return f"unpinned {paths.display(rel)}", True
        if state.is_pinned(root, rel):
            return f"{paths.display(rel)} is pinned by a folder or glob pin", False
        state.pin(root, rel, glob=False)
        return f"pinned {paths.display(rel)}: retention keeps it", True


def pin_entries(roots: Sequence[str]) -> list[tuple[str, Pin]]:
    """Every pin of ``roots``, as (root, pin)."""
    with UserState() as state:
        return [(root, entry) for root in roots for entry in state.pin_entries(root)]


# --- the stable JSON shapes (documented in the README) --------------------------------------


def _text(value: str) -> str:
    return paths.display(value)


def item_json(item: Candidate, shown: dict[str, str] | None = None) -> dict[str, Any]:
    """One item of a plan; ``shown`` remembers the printable roots and runs across the
    items of one plan (a run's many checkpoints name it once each)."""
    if shown is None:
        root, run = _text(item.root), _text(item.run_path)
    else:
        root = shown.get(item.root) or shown.setdefault(item.root, _text(item.root))
        run = shown.get(item.run_path) or shown.setdefault(item.run_path, _text(item.run_path))
    return {
        "root": root,
        "run": run,
        "path": _text(item.path),
        "is_dir": item.is_dir,
        "size_bytes": item.size,
        "keep": item.keep,
        "reasons": item.reasons,
        "step": item.step,
        "epoch": item.epoch,
        "metric": item.metric,
        "metric_source": item.metric_source,
        "expires": query.iso(item.expires),
    }


def item_json_writer() -> Callable[[Candidate], str]:
    """``item_json`` as JSON text, in one format call an item.  Building half a million
    dicts and encoding them took 3 s of ``retention plan --json``; printable roots, runs
    and reason lists repeat, and are written once each.  The text is what
    ``json.dumps(item_json(item), ensure_ascii=False)`` gives, to the byte."""
    written: dict[str, str] = {}
    reasons_written: dict[tuple[str, ...], str] = {}
    number, quote = jsontext.number, jsontext.quote

    def shown(value: str) -> str:
        text = written.get(value)
        if text is None:
            text = written[value] = jsontext.quote(_text(value))
        return text

    def listed(reasons: list[str]) -> str:
        text = reasons_written[tuple(reasons)] = "[" + ", ".join([quote(r) for r in reasons]) + "]"
        return text

    def expiry(expires: float) -> str:
        text = query.iso(expires)
        return "null" if text is None else quote(text)

    def write(item: Candidate) -> str:
        # each field written in place when it is of its usual type (a call a field cost
        # more than all the rest of the item); anything else goes through ``number``
        root, run, path, size = item.root, item.run_path, item.path, item.size
        is_dir, keep, step, epoch = item.is_dir, item.keep, item.step, item.epoch
        metric, source, expires = item.metric, item.metric_source, item.expires
        if not (path.isascii() and path.isprintable()):  # else it is shown as it is
            path = _text(path)
        dir_text = "true" if is_dir is True else "false" if is_dir is False else number(is_dir)
        keep_text = "true" if keep is True else "false" if keep is False else number(keep)
        step_text = "null" if step is None else step if type(step) is int else number(step)
        epoch_text = "null" if epoch is None else epoch if type(epoch) is int else number(epoch)
        return (
            f'{{"root": {written.get(root) or shown(root)}, '
            f'"run": {written.get(run) or shown(run)}, "path": {quote(path)}, '
            f'"is_dir": {dir_text}, "size_bytes": {size if type(size) is int else number(size)}, '
            f'"keep": {keep_text}, '
            f'"reasons": {reasons_written.get(tuple(item.reasons)) or listed(item.reasons)}, '
            f'"step": {step_text}, "epoch": {epoch_text}, '
            f'"metric": {"null" if metric is None else number(metric)}, '
            f'"metric_source": {"null" if source is None else quote(source)}, '
            f'"expires": {"null" if expires is None else expiry(expires)}}}'
        )

    return write


def storage_cost(root: str, nbytes: int) -> float | None:
    """What ``nbytes`` cost to store a month in a bucket root, at the S3 Standard list price
    (GCS Standard and Azure Hot are within a few per cent); None for a folder, whose disk
    has no such price.  A trash in a bucket frees it only once purged."""
    from store.retention.bucket import STORAGE_PER_GB_MONTH
    from store.root import is_url

    return round(nbytes / 1e9 * STORAGE_PER_GB_MONTH, 6) if is_url(root) else None


def plan_json(plan: Plan, policies: dict[str, Policy], *, encoded: bool = False) -> dict[str, Any]:
    """The ``retention plan --json`` shape; with ``encoded``, its items are JSON text
    already (``EncodedItems``, written by ``item_json_writer``), for ``emit_json``."""
    shown: dict[str, str] = {}
    items: Any
    soon: Any
    if encoded:
        write = item_json_writer()
        items = jsontext.EncodedItems(list(map(write, plan.items)))
        soon = jsontext.EncodedItems(list(map(write, expiring(plan))))
    else:
        items = [item_json(item, shown) for item in plan.items]
        soon = [item_json(item, shown) for item in expiring(plan)]
    return {
        "id": plan.id,
        "saved_to": str(plan.path) if plan.path else None,
        "created": query.iso(plan.created),
        "bytes_freed": plan.bytes_freed,
        "roots": [
            {
                "root": _text(r.root),
                "policy": r.policy,
                "has_rules": policies[r.root].removes_anything() if r.root in policies else None,
                "kept": r.kept,
                "removed": r.removed,
                "bytes_kept": r.bytes_kept,
                "bytes_removed": r.bytes_removed,
                "total_bytes": r.total_bytes,
                "budget_bytes": r.budget,
                "over_budget_after": r.over_budget_after,
                "storage_usd_per_month": storage_cost(r.root, r.bytes_removed),
            }
            for r in plan.roots
        ],
        "runs": [
            {
                "root": _text(r.root),
                "run": _text(r.run_path),
                "kept": r.kept,
                "removed": r.removed,
                "bytes_kept": r.bytes_kept,
                "bytes_removed": r.bytes_removed,
            }
            for r in plan.runs
        ],
        "items": items,
        "expiring_soon": soon,
        "filesystems": [
            {
                "roots": [_text(r) for r in fs.roots],
                "free_now": fs.free_now,
                "free_after_purge": fs.free_after_purge,
                "bytes_freed": fs.bytes_freed,
            }
            for fs in plan.filesystems
        ],
        "warnings": [_text(w) for w in plan.warnings],
        "links": [_text(w) for w in plan.links],
    }


def report_json(report: Report, **extra: Any) -> dict[str, Any]:
    """The shape of apply, restore and purge ``--json``."""

    def row(item: Any) -> dict[str, Any]:
        return {
            "root": _text(item.root),
            "path": _text(item.path),
            "outcome": item.outcome,
            "reason": _text(item.reason),
            "size_bytes": item.size,
            "id": item.entry_id,
        }

    return {
        **extra,
        "done": [row(i) for i in report.done],
        "skipped": [row(i) for i in report.skipped],
        "bytes_done": report.bytes_done,
    }


def entry_json(entry: TrashEntry) -> dict[str, Any]:
    """The shape of one ``trash list --json`` item."""
    return {
        "id": entry.id,
        "root": _text(entry.root),
        "path": _text(entry.path),
        "trash_path": _text(entry.trash_path),
        "is_dir": entry.is_dir,
        "size_bytes": entry.size,
        "trashed_at": query.iso(entry.trashed_at),
        "state": entry.state,
        "reasons": [_text(r) for r in entry.reasons],
        "plan": entry.plan,
        "batch": _text(entry.batch),
        "note": _text(entry.note) if entry.note else None,
    }


def usage_json(usage: Sequence[RootUsage], groups: Sequence[DuplicateGroup]) -> dict[str, Any]:
    """The ``du --json`` shape."""
    return {
        "roots": [
            {
                "root": _text(u.root),
                "size_bytes": u.size,
                "disk_bytes": u.disk,
                "files": u.files,
                "outside_runs_bytes": u.outside_runs,
                "experiments": [
                    {
                        "name": _text(e.label),
                        "size_bytes": e.size,
                        "disk_bytes": e.disk,
                        "files": e.files,
                    }
                    for e in u.experiments
                ],
                "runs": [
                    {
                        "run": _text(r.label),
                        "size_bytes": r.size,
                        "disk_bytes": r.disk,
                        "files": r.files,
                    }
                    for r in u.runs
                ],
            }
            for u in usage
        ],
        "duplicates": [
            {
                "hash": g.hash,
                "size_bytes": g.size,
                "reclaimable_bytes": g.reclaimable,
                "copies": [{"root": _text(r), "path": _text(p)} for r, p in g.copies],
            }
            for g in groups
        ],
    }
