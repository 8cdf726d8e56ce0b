"""``artlens retention plan|apply|pin|unpin|pins``, ``artlens trash list|restore|purge`` and
``artlens du``: the retention engine (``store.retention``) for the shell.

Apply is the index's writer: it takes the writer lock and records every move in the index.
When a watcher (or another writer) holds the lock, apply still runs, through the
filesystem only: the trash manifest is the record, and the watcher sees the files leave
(or come back) like any other change.  Nothing here deletes except ``trash purge``.
"""

from __future__ import annotations

import itertools
import operator
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from store import paths
from store.errors import ArtlensError
from store.gcpause import collector_paused
from store.index import query
from store.lock import WriterBusyError
from store.retention import saved_plans, service
from store.retention.audit import AuditRecord
from store.retention.candidates import Candidate
from store.retention.plan import Plan, default_plan_dir, grouped_warnings, load_plan
from store.retention.policy import Policy, from_flags, parse_age
from store.retention.saving import saved_meanwhile
from store.retention.service import (
    entry_json,
    expiring,
    item_json,
    plan_json,
    report_json,
    resolve_roots,
    storage_cost,
    usage_json,
)
from store.retention.trash import (
    Report,
    TrashEntry,
    audit_log,
)
from store.retention.usage import (
    DuplicateGroup,
    RootUsage,
    UsageRow,
    across_roots,
    disk_usage,
    duplicates,
    overlap_note,
)
from tui.cli.common import (
    count_type,
    db_option,
    emit_json,
    is_terminal,
    json_option,
    need_db,
    no_empty,
    one_line,
)
from tui.format import human_age, human_size

F = TypeVar("F", bound=Callable[..., Any])

_PLAN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,80}$")


# --- shared pieces --------------------------------------------------------------------------


def policy_flags(func: F) -> F:
    """The ad-hoc policy flags of ``retention plan`` and ``retention apply``."""
    options = [
        click.option("--keep-last", type=count_type(0), help="Keep the newest N."),
        click.option("--keep-best", type=count_type(0), help="Keep the best K by --metric."),
        click.option("--metric", help="Metric for --keep-best (e.g. val_loss)."),
        click.option(
            "--mode",
            type=click.Choice(["min", "max"]),
            help="Whether lower or higher --metric is better (guessed from its name).",
        ),
        click.option("--older-than", metavar="AGE", help="Keep what is younger than AGE (7d)."),
        click.option(
            "--keep-within-budget",
            metavar="SIZE",
            help="Remove the oldest unprotected checkpoints until each root fits (500G).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _flag_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    names = ("keep_last", "keep_best", "metric", "mode", "older_than", "keep_within_budget")
    return {name: kwargs.get(name) for name in names if kwargs.get(name) is not None}


def build_plan(
    db_path: Path | None, roots: Sequence[Path | str], flags: dict[str, Any]
) -> tuple[Plan, dict[str, Policy]]:
    """The plan of the flags' policy, else each root's own (a broken policy file stops it)."""
    from store.index.db import open_db

    adhoc = from_flags(**flags) if flags else None
    db = open_db(need_db(db_path, [r for r in roots if isinstance(r, Path)]), readonly=True)
    try:
        planned = service.make(db, resolve_roots(db, roots), adhoc=adhoc, strict=True)
    finally:
        db.close()
    return planned.plan, planned.policies


def _text(value: str) -> str:
    return paths.display(value)


def _style(text: str, **kw: Any) -> str:
    return click.style(text, **kw) if is_terminal() else text


_ROOT_AND_RUN = operator.attrgetter("root", "run_path")


def print_plan(plan: Plan, policies: dict[str, Policy]) -> None:
    items_by_run: dict[tuple[str, str], list[Candidate]] = {}
    # a run's items come together: a stretch at a time, the key read in C
    for run_key, stretch in itertools.groupby(plan.items, _ROOT_AND_RUN):
        items_by_run.setdefault(run_key, []).extend(stretch)
    words = {True: _style("keep  ", fg="green"), False: _style("remove", fg="red")}
    # checkpoints of a run often share a size, and most share their reasons: each is
    # written once (half a million lines took a second)
    sizes: dict[int, str] = {}
    reasons_seen: dict[tuple[str, ...], str] = {}

    def size_text(size: int) -> str:
        text = sizes[size] = human_size(size)
        return text

    def reasons_text(reasons: list[str]) -> str:
        key = tuple(reasons)
        text = reasons_seen.get(key)
        if text is None:
            text = reasons_seen[key] = _text("; ".join(reasons))
        return text

    for root in plan.roots:
        click.echo(_style(_text(root.root), bold=True) + f"  policy: {_text(root.policy)}")
        if not policies.get(root.root, Policy()).removes_anything():
            click.echo(
                "  no policy: keeping everything (add [retention] to "
                f"{_text(os.path.join(root.root, '.artlens.toml'))} or pass --keep-last N)"
            )
        runs = [r for r in plan.runs if r.root == root.root]
        run_names = paths.shown_names([r.run_path for r in runs])  # look-alikes spelled apart
        for run, run_name in zip(runs, run_names, strict=True):
            items = items_by_run.get((run.root, run.run_path), [])
            cut = len(run.run_path) + 1 if run.run_path else 0
            names = paths.shown_names([item.path[cut:] for item in items])
            lines = [
                f"  {run_name or '.'}: keep {run.kept} "
                f"({human_size(run.bytes_kept)}), remove {run.removed} "
                f"({human_size(run.bytes_removed)})"
            ]
            lines += [
                f"    {words[item.keep]} {name}{'/' if item.is_dir else ''}  "
                f"{sizes.get(item.size) or size_text(item.size)}  "
                f"{reasons_seen.get(tuple(item.reasons)) or reasons_text(item.reasons)}"
                for item, name in zip(items, names, strict=True)
            ]
            click.echo("\n".join(lines))  # a run at a time: an echo per line cost 7 us each
        click.echo(
            f"  total: keep {root.kept}, remove {root.removed}, frees "
            f"{human_size(root.bytes_removed)} of {human_size(root.total_bytes)}"
        )
    soon = expiring(plan)
    if soon:
        click.echo("expiring soon:")
        for item, name in zip(soon, paths.shown_names([i.path for i in soon]), strict=True):
            left = human_age(plan.now, item.expires)
            click.echo(f"  in {left}: {name}")
    for fs in plan.filesystems:
        where = ", ".join(_text(r) for r in fs.roots)
        after = "unknown" if fs.free_after_purge is None else human_size(fs.free_after_purge)
        click.echo(
            f"disk free: {human_size(fs.free_now)} now, {after} after apply + purge ({where})"
        )
    for note in plan.links:
        click.echo(f"link: {_text(note)}")
    for warning in grouped_warnings(plan.warnings):
        click.echo(f"artlens: warning: {_text(warning)}", err=True)
    removals = plan.removals
    click.echo(
        f"plan {plan.id}: remove {len(removals)} item(s), {human_size(plan.bytes_freed)}"
        + (f"; apply with `artlens retention apply {plan.id} --yes`" if removals else "")
    )


def _interactive() -> bool:
    return is_terminal() and sys.stdin.isatty()


def busy(exc: WriterBusyError) -> None:
    """Say that another process writes the index, so this one moves files only."""
    click.echo(f"artlens: {one_line(exc)}; moving files only, it will see the moves", err=True)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int, str], None] | None]:
    if not enabled:
        yield None
        return
    from tui.cli.progress import rich_progress

    with rich_progress(label) as update:
        yield lambda done, total, _path: update(done, total)


def print_report(report: Report, verb: str) -> None:
    """What was done, on stdout, and the count of what was skipped (``exit_if_skipped``
    names each on stderr)."""
    shown = paths.shown_names([i.path for i in report.done])
    for item, name in zip(report.done, shown, strict=True):
        click.echo(f"{verb} {name}  {human_size(item.size)}")
    click.echo(
        f"{verb} {len(report.done)} ({human_size(report.bytes_done)}), "
        f"skipped {len(report.skipped)}"
    )


EXIT_SKIPPED = 1
"""``retention apply --yes``, ``trash restore`` or ``trash purge --yes`` left an item it was
asked to act on as it was (skipped: changed since the plan, gone, its path occupied...)."""


def exit_if_skipped(report: Report) -> None:
    """Name on stderr each item skipped, one line with why (and the trash manifest lines
    that could not be used), then exit 1 when any was: a script running ``apply && ...``
    never goes on as if everything asked for were done.  Text and ``--json`` alike."""
    for warning in report.warnings:
        click.echo(f"artlens: warning: {_text(warning)}", err=True)
    if not report.skipped:
        return
    shown = paths.shown_names([i.path for i in report.skipped])
    several = len({i.root for i in report.skipped}) > 1
    for item, name in zip(report.skipped, shown, strict=True):
        where = f" (in {_text(item.root)})" if several else ""
        click.echo(f"artlens: skipped {name}{where}: {_text(item.reason)}", err=True)
    sys.exit(EXIT_SKIPPED)


# --- retention ------------------------------------------------------------------------------


@click.group("retention")
def retention_group() -> None:
    """Plan and apply retention policies (keep last N, best K by a metric, budgets, pins)."""


@retention_group.command("plan")
@click.argument("roots", nargs=-1)
@policy_flags
@db_option
@json_option
def plan_cmd(roots: tuple[str, ...], db_path: Path | None, as_json: bool, **flags: Any) -> None:
    """What a policy keeps and removes under ROOTS (default: every indexed root), and why.

    Without flags each root's .artlens.toml (or the user config) is the policy.  The plan
    is saved; `artlens retention apply PLAN_ID` acts on exactly what it shows.  A ROOT may
    be an indexed s3:// URL (its index is the one `artlens index URL` wrote).
    """
    from store.root import is_url

    no_empty(roots, "ROOT", "name an indexed folder; . for the current one")
    urls = [r for r in roots if is_url(r)]
    if urls and len(urls) != len(roots):
        raise ArtlensError("folders and URLs are planned in separate commands")
    if urls and db_path is None:
        from tui.cli.objstore import object_db

        db_path = object_db(None, urls)
    plan, policies = build_plan(
        db_path, [r if is_url(r) else Path(r) for r in roots], _flag_values(flags)
    )
    # written on another core while this prints it; the texts of half a million units
    # make no cycle, and each collection the collector ran among them walked them all
    with saved_meanwhile(plan), collector_paused():
        if as_json:
            emit_json(plan_json(plan, policies, encoded=True))
            return
        print_plan(plan, policies)
    for totals in plan.roots:
        cost = storage_cost(totals.root, totals.bytes_removed)
        if cost is not None and totals.bytes_removed:
            click.echo(
                f"{paths.display(totals.root)}: what it removes costs about ${cost:,.2f} a month"
                " to store (S3 Standard list price); a trash frees it once purged"
            )


def _plan_path(plan_id: str) -> tuple[Path, bool]:
    """Where the plan is, and whether a symlink there is followed: a path the user names
    is, one in artlens's own plans folder (which only artlens writes) is not."""
    if plan_id.endswith(".json") and os.path.sep in plan_id:
        return Path(plan_id), True
    if not _PLAN_ID.match(plan_id):
        raise ArtlensError(f"not a plan id: {paths.display(plan_id)!r}")
    path = default_plan_dir() / f"{plan_id}.json"
    if not os.path.lexists(path):
        raise ArtlensError(
            f"no saved plan {plan_id} (run `artlens retention plan` first; the "
            f"{saved_plans.KEEP_PLANS} newest plans are kept, "
            f"{human_size(saved_plans.KEEP_BYTES)} at most)"
        )
    return path, False


def _check_roots(plan: Plan, target: Path) -> None:
    """Refuse, before even a dry run, a plan naming a folder that is no root of the index
    (``apply_plan`` checks again, and each removal, when it moves anything)."""
    from store.index.db import open_db
    from store.retention.trash import check_plan_roots

    db = open_db(target, readonly=True)
    try:
        check_plan_roots(plan, db)
    finally:
        db.close()


@retention_group.command("apply")
@click.argument("plan_id", required=False)
@policy_flags
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (else a dry run).")
@db_option
@json_option
def apply_cmd(
    plan_id: str | None,
    yes: bool,
    db_path: Path | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Move what a plan removes to each root's trash (a dry run unless --yes or confirmed).

    PLAN_ID is a plan saved by `retention plan` (or the path of its .json file); without
    it the policy (flags, or the roots' .artlens.toml) is planned now.  A plan naming a
    folder that is no root of the index is refused.  Each item is re-checked first:
    anything changed since the plan, still being written, or not in the index as planned
    is skipped, and so is every removal of a run when a checkpoint the plan keeps in it
    is gone or changed.
    """
    values = _flag_values(flags)
    if plan_id is not None and values:
        raise ArtlensError("give a PLAN_ID or policy flags, not both")
    target = need_db(db_path)
    if plan_id is not None:
        path, follow = _plan_path(plan_id)
        plan = load_plan(path, follow_symlinks=follow)
        _check_roots(plan, target)
    else:
        plan, _ = build_plan(db_path, (), values)
        plan.save()
    removals = plan.removals
    runs = {(i.root, i.run_path) for i in removals}
    roots = sorted({i.root for i in removals})
    what = (
        f"{len(removals)} item(s), {human_size(plan.bytes_freed)}, from {len(runs)} run(s) "
        f"under {', '.join(_text(r) for r in roots) or '-'}"
    )
    if not removals:
        if as_json:
            emit_json(report_json(Report(), plan=plan.id, applied=False))
        else:
            click.echo(f"plan {plan.id}: nothing to remove")
        return
    if not yes and not as_json and _interactive():
        yes = click.confirm(f"Move {what} to the trash?", default=False)
        if not yes:
            click.echo("nothing changed")
            return
    if not yes:
        if as_json:
            emit_json(
                report_json(Report(), plan=plan.id, applied=False)
                | {"would_remove": [item_json(i) for i in removals]}
            )
            return
        for item in removals:
            click.echo(f"would trash {_text(item.path)}  {human_size(item.size)}")
        click.echo(f"dry run: would move {what} to the trash; add --yes to do it")
        return
    with progress_bar("moving to the trash", is_terminal() and not as_json) as progress:
        done = service.apply(plan, target, role="retention apply", progress=progress, on_busy=busy)
    if as_json:
        emit_json(
            report_json(done.report, plan=plan.id, applied=True, index_updated=done.index_updated)
        )
        exit_if_skipped(done.report)
        return
    from store.root import is_url

    print_report(done.report, "trashed")
    if any(not is_url(item.root) for item in removals):
        click.echo(
            "restore with `artlens trash restore ID...` or `--all`; free the space with purge"
        )
    for url, batch_id in done.batches:
        click.echo(
            f"{_text(url)}: batch {batch_id}; restore with `artlens trash restore "
            f"{batch_id} --root URL`, free the space with `artlens bucket purge URL "
            f"{batch_id} --yes`"
        )
    if done.batches and not done.index_updated:
        click.echo("the index was not refreshed: run `artlens index URL`", err=True)
    exit_if_skipped(done.report)


def _indexed(db_path: Path | None) -> list[str]:
    return trash_roots(db_path, ())[1]


@retention_group.command("pin")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
def pin_cmd(targets: tuple[Path, ...], db_path: Path | None) -> None:
    """Pin runs or files (paths on disk): retention never removes them."""
    from store.index.db import open_db

    index, roots = trash_roots(db_path, ())
    db = open_db(index, readonly=True)
    try:  # every target checked before any is pinned: a typo pins nothing
        located = [service.pin_target(db, roots, target) for target in targets]
    finally:
        db.close()
    for root, rel in located:
        service.pin(root, rel)
        click.echo(f"pinned {_text(rel)} in {_text(root)}")


@retention_group.command("unpin")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
def unpin_cmd(targets: tuple[Path, ...], db_path: Path | None) -> None:
    """Remove the pins of runs or files."""
    roots = _indexed(db_path)
    for target in targets:
        _, rel, found = service.unpin_path(roots, target)
        click.echo(f"{'unpinned' if found else 'was not pinned:'} {_text(rel)}")


@retention_group.command("pins")
@db_option
@json_option
def pins_cmd(db_path: Path | None, as_json: bool) -> None:
    """List the pins of every indexed root."""
    rows = service.pin_entries(_indexed(db_path))
    if as_json:
        emit_json([{"root": _text(r), "path": _text(p.path), "glob": p.is_glob} for r, p in rows])
        return
    for root, pin in rows:
        click.echo(f"{_text(root)}\t{_text(pin.path)}{'  (glob)' if pin.is_glob else ''}")
    if not rows:
        click.echo("no pins")


# --- trash ----------------------------------------------------------------------------------


def root_option(func: F) -> F:
    return click.option(
        "--root",
        "roots",
        multiple=True,
        help="Only this root's trash (repeatable; default: every indexed root).",
    )(func)


def trash_roots(db_path: Path | None, roots: Sequence[Path | str]) -> tuple[Path, list[str]]:
    from store.index.db import open_db
    from store.root import is_url

    urls = [os.fspath(r) for r in roots if is_url(os.fspath(r))]
    if urls and db_path is None:
        from tui.cli.objstore import object_db

        db_path = object_db(None, urls)
    target = need_db(db_path, [Path(r) for r in roots if not is_url(os.fspath(r))])
    db = open_db(target, readonly=True)
    try:
        return target, resolve_roots(db, roots)
    finally:
        db.close()


def _entries(roots: Sequence[str]) -> list[tuple[str, TrashEntry]]:
    trashes = service.read_trashes(roots, refuse=True)
    for problem in trashes.problems:
        click.echo(f"artlens: warning: {problem}", err=True)
    return list(trashes.entries)


_UNFINISHED = {
    "pending": "move to the trash not finished",
    "restoring": "restore not finished",
    "purging": "purge not finished: part of it may be gone; `trash purge` finishes it",
}


def _unfinished(entry: TrashEntry) -> str:
    """What an entry an operation left half-done is, for its line; '' for the others."""
    why = _UNFINISHED.get(entry.state)
    return f"  [{why}]" if why else ""


@click.group("trash")
def trash_group() -> None:
    """What retention moved aside: list it, restore it, or purge it for good."""


@trash_group.command("list")
@root_option
@db_option
@json_option
def trash_list_cmd(roots: tuple[str, ...], db_path: Path | None, as_json: bool) -> None:
    """Everything in the trash of each root, oldest first."""
    _, chosen = trash_roots(db_path, roots)
    entries = _entries(chosen)
    if as_json:
        emit_json([entry_json(e) for _, e in entries])
        return
    if not entries:
        click.echo("the trash is empty")
        return
    shown = paths.shown_names([e.path for _, e in entries])  # look-alikes spelled apart
    for (_, entry), name in zip(entries, shown, strict=True):
        # a bucket's trash is restored and purged by batch: its id is the batch's
        ident = _text(entry.batch) if entry.method == service.BUCKET_METHOD else entry.id[:12]
        click.echo(
            f"{ident}  {human_age(entry.trashed_at):>4} ago  {human_size(entry.size):>7}"
            f"  {name}{'/' if entry.is_dir else ''}  ({_text(entry.root)})"
            f"{_unfinished(entry)}{f'  [{_text(entry.note)}]' if entry.note else ''}"
        )
    total = sum(e.size for _, e in entries)
    how = "restore with `trash restore ID`"
    if any(e.method == service.BUCKET_METHOD for _, e in entries):
        how += " (a bucket's by batch: `trash restore BATCH --root URL`)"
    click.echo(f"{len(entries)} item(s), {human_size(total)}; {how}")


@trash_group.command("restore")
@click.argument("ids", nargs=-1)
@click.option("--all", "restore_all", is_flag=True, help="Restore everything in the trash.")
@root_option
@db_option
@json_option
def trash_restore_cmd(
    ids: tuple[str, ...],
    restore_all: bool,
    roots: tuple[str, ...],
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Move trashed items back to where they were, byte-identical (IDs or a prefix of 6+).

    Exit status 1 when an item could not be restored (skipped, named on stderr with why:
    something now occupies its path, its trash copy changed), so a script never goes on as
    if it had."""
    from store.root import is_url

    if bool(ids) == restore_all:
        raise ArtlensError("give trash IDs (see `artlens trash list`) or --all")
    target, chosen = trash_roots(db_path, roots)
    urls = [r for r in chosen if is_url(r)]
    if urls:
        if len(urls) != len(chosen) or restore_all:
            raise ArtlensError(
                "a bucket's trash is restored by batch, apart from folders: "
                "`artlens trash restore BATCH --root URL`"
            )
        done = service.restore_buckets(target, urls, ids, role="trash restore", on_busy=busy)
        if as_json:
            emit_json(report_json(done.report, index_updated=done.index_updated))
        else:
            print_report(done.report, "restored")
        exit_if_skipped(done.report)
        return
    entries = _entries(chosen)
    wanted: dict[str, list[str]] = {}
    for prefix in ids:
        if len(prefix) < 6:
            raise ArtlensError(f"trash ID too short: {paths.display(prefix)!r} (6+ characters)")
        matches = [(root, e) for root, e in entries if e.id.startswith(prefix)]
        if not matches:
            raise ArtlensError(f"no trash item '{paths.display(prefix)}' (see `trash list`)")
        if len(matches) > 1:
            raise ArtlensError(f"trash ID {paths.display(prefix)!r} is ambiguous")
        root, entry = matches[0]
        wanted.setdefault(root, []).append(entry.id)
    which: dict[str, list[str] | Literal["all"]] = {}
    for root in chosen:
        if restore_all and any(r == root for r, _ in entries):
            which[root] = "all"
        elif not restore_all and root in wanted:
            which[root] = wanted[root]
    done = service.restore_items(target, which, role="trash restore", on_busy=busy)
    if as_json:
        emit_json(report_json(done.report))
    else:
        print_report(done.report, "restored")
    exit_if_skipped(done.report)


@trash_group.command("purge")
@click.option("--older-than", required=True, metavar="AGE", help="Purge what was trashed AGE ago.")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (else a dry run).")
@root_option
@db_option
@json_option
def trash_purge_cmd(
    older_than: str, yes: bool, roots: tuple[str, ...], db_path: Path | None, as_json: bool
) -> None:
    """Delete for good what has been in the trash longer than AGE (0 for everything).

    Exit status 1 when an item due could not be deleted (skipped, named on stderr with
    why)."""
    try:
        number = re.fullmatch(r"\d+(?:\.\d+)?", older_than.strip())
        age = parse_age(float(older_than) if number else older_than)
    except ValueError as exc:
        raise ArtlensError(str(exc)) from None
    target, chosen = trash_roots(db_path, roots)
    now = time.time()
    due = [
        (r, e)
        for r, e in _entries(chosen)
        if e.state == "purging" or (e.state == "trashed" and e.trashed_at <= now - age)
    ]
    size = sum(e.size for _, e in due)
    if not due:
        if as_json:
            emit_json(report_json(Report(), purged=False))
        else:
            click.echo("nothing in the trash is that old")
        return
    if not yes and not as_json and _interactive():
        yes = click.confirm(
            f"Delete {len(due)} item(s), {human_size(size)}, for good? This cannot be undone",
            default=False,
        )
    if not yes:
        if as_json:
            emit_json(report_json(Report(), purged=False) | {"would_purge": len(due)})
            return
        for _, entry in due:
            click.echo(
                f"would purge {_text(entry.path)}  {human_size(entry.size)}{_unfinished(entry)}"
            )
        click.echo(f"dry run: would delete {len(due)} item(s), {human_size(size)}; add --yes")
        return
    # a bucket's trash is purged by batch, in the bucket; a folder's by its manifest
    batches = [(r, e.batch) for r, e in due if e.method == service.BUCKET_METHOD]
    due_roots = sorted({r for r, e in due if e.method != service.BUCKET_METHOD})
    done = service.purge_items(target, due_roots, age, role="trash purge", now=now, on_busy=busy)
    if batches:
        from store.retention.bucket import purge_batches

        bucket_report = purge_batches(batches)
        done.report.done += bucket_report.done
        done.report.skipped += bucket_report.skipped
    if as_json:
        emit_json(report_json(done.report, purged=True))
    else:
        print_report(done.report, "purged")
    exit_if_skipped(done.report)


@trash_group.command("log")
@root_option
@db_option
@json_option
def trash_log_cmd(roots: tuple[str, ...], db_path: Path | None, as_json: bool) -> None:
    """Who applied, restored or purged what, and when (the audit log of each root's trash)."""
    _, chosen = trash_roots(db_path, roots)
    rows: list[tuple[str, AuditRecord]] = []
    for root in chosen:
        records, problems = audit_log(root)
        rows += [(root, r) for r in records]
        for problem in problems:
            click.echo(f"artlens: warning: {_text(root)}: {_text(problem)}", err=True)
    rows.sort(key=lambda pair: pair[1].ts)
    if as_json:
        emit_json(
            [
                {
                    "root": _text(root),
                    "at": query.iso(r.ts),
                    "op": r.op,
                    "user": _text(r.user),
                    "uid": r.uid,
                    "plan": None if r.plan is None else _text(r.plan),
                    "items": r.items,
                    "bytes": r.bytes,
                    "skipped": r.skipped,
                }
                for root, r in rows
            ]
        )
        return
    if not rows:
        click.echo("nothing applied, restored or purged yet")
        return
    for root, r in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.ts))
        plan = f" plan {_text(r.plan)}" if r.plan else ""
        click.echo(
            f"{stamp}  {_text(r.user)}  {r.op}{plan}: {r.items} item(s), "
            f"{human_size(r.bytes)}, {r.skipped} skipped  ({_text(root)})"
        )


# --- du -------------------------------------------------------------------------------------


@click.command("du")
@click.argument("roots", nargs=-1)
@click.option(
    "--top", type=count_type(0), default=10, show_default=True, help="Runs and duplicates to list."
)
@db_option
@json_option
def du_cmd(roots: tuple[str, ...], top: int, db_path: Path | None, as_json: bool) -> None:
    """Disk usage per root, experiment and run (largest first), and duplicate files.

    A root may be an indexed s3://bucket/prefix (its index is the one `artlens index URL`
    wrote): sizes from its listing, no "on disk" figure, objects not hashed.  What the
    scans could not read is named under each total that leaves it out; a file under two
    roots (one inside the other) counts once in all and is no duplicate of itself."""
    from store.index.db import open_db
    from store.root import is_url

    no_empty(roots, "ROOT", "name an indexed folder; . for the current one")
    urls = [r for r in roots if is_url(r)]
    if urls and db_path is None:
        from tui.cli.objstore import object_db

        db_path = object_db(None, urls)
    local = [Path(r) for r in roots if not is_url(r)]
    db = open_db(need_db(db_path, local), readonly=True)
    try:
        chosen = resolve_roots(db, roots)
        usage = disk_usage(db, chosen)
        groups = duplicates(db, chosen)
    finally:
        db.close()
    if as_json:
        emit_json(_du_json(usage, groups))
        return
    # names that print alike (cafe in NFC and in NFD) spelled apart in each listing
    for u, root_name in zip(usage, paths.shown_names([u.root for u in usage]), strict=True):
        unmeasured = f", {u.unmeasured} not measured" if u.unmeasured else ""
        disk = f"{_disk(u.disk)}{unmeasured}"
        click.echo(f"{human_size(u.size):>8}  {root_name}  ({u.files} files{disk})")
        for line in _du_notes(u):
            click.echo(f"          {line}")
        experiments = u.experiments[:top]
        names = paths.shown_names([e.label for e in experiments])
        for e, name in zip(experiments, names, strict=True):
            click.echo(f"{human_size(e.size):>8}    experiment {name}{_hidden(e)}")
        runs = u.runs[:top]
        for r, name in zip(runs, paths.shown_names([r.label for r in runs]), strict=True):
            click.echo(f"{human_size(r.size):>8}    {name}{_disk(r.disk, r.size)}{_hidden(r)}")
        if u.outside_runs:
            click.echo(f"{human_size(u.outside_runs):>8}    (outside any run)")
        if is_url(u.root):
            click.echo(f"          objects are not hashed: `artlens bucket dups {_text(u.root)}`")
    if len(usage) > 1:
        every = across_roots(usage)
        counted = _count(every.files, "file")
        click.echo(f"{human_size(every.size):>8}  in all ({counted}, each counted once)")
        if every.unchecked:
            unchecked = ", ".join(_text(r) for r in every.unchecked)
            click.echo(f"          files shared with {unchecked} not checked: may count twice")
    if groups:
        click.echo(f"duplicates: {human_size(sum(g.reclaimable for g in groups))} reclaimable")
        for g in groups[:top]:
            where = ", ".join(paths.shown_names([p for _, p in g.copies[:3]]))
            more = f" +{len(g.copies) - 3}" if len(g.copies) > 3 else ""
            links = f" (+{_count(len(g.links), 'other name')} of these files)" if g.links else ""
            click.echo(
                f"{human_size(g.reclaimable):>8}  {len(g.copies)} copies: {where}{more}{links}"
            )


SHOWN_UNREADABLE = 3
"""Places that could not be read named under a root's total; ``--json`` lists them all."""


def _du_notes(u: RootUsage) -> list[str]:
    """What a root's total leaves out (places not read) or shares with another root."""
    notes = []
    if u.unreadable is None:
        notes.append(
            "what the scans could not read is not recorded in this index yet: "
            f"`artlens index {_text(u.root)}` records it"
        )
    elif u.unreadable:
        folders = sum(1 for p in u.unreadable if p.kind == "folder")
        entries = len(u.unreadable) - folders
        counted = " and ".join(
            [_count(folders, "folder")] * bool(folders) + [_count(entries, "entry")] * bool(entries)
        )
        named = ", ".join(p.describe() for p in u.unreadable[:SHOWN_UNREADABLE])
        more = len(u.unreadable) - SHOWN_UNREADABLE
        named += f" +{more} more" if more > 0 else ""
        notes.append(
            f"{counted} could not be read: {named};"
            " what they hold counts as last seen, or not at all"
        )
    for other, (files, size) in u.shared.items():
        notes.append(
            f"roots overlap: {overlap_note(u.root, other)}: {_count(files, 'file')}"
            f" ({human_size(size)}) counted under both"
        )
    return notes


def _hidden(row: UsageRow) -> str:
    """`` (2 places could not be read)`` beside a run or experiment that holds them."""
    if not row.unreadable:
        return ""
    return f"  ({_count(row.unreadable, 'place')} could not be read)"


def _count(n: int, noun: str) -> str:
    """``1 folder``, ``2 folders``, ``2 entries``."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"


def _du_json(usage: Sequence[RootUsage], groups: Sequence[DuplicateGroup]) -> dict[str, Any]:
    """``usage_json``, and what it leaves out: per root the places not read (null for an
    index that does not record them) and the files shared with another root, per run and
    experiment how many places not read, the other names of duplicate files, and with
    several roots every file counted once (``all_roots``)."""
    data = usage_json(usage, groups)
    for shown, u in zip(data["roots"], usage, strict=True):
        shown["unreadable"] = (
            None
            if u.unreadable is None
            else [
                {"path": _text(paths.unkey(p.path)), "kind": p.kind, "reason": p.reason}
                for p in u.unreadable
            ]
        )
        shown["disk_unmeasured_files"] = u.unmeasured
        shown["shared"] = [
            {"root": _text(other), "files": files, "size_bytes": size}
            for other, (files, size) in u.shared.items()
        ]
        for rows, key in ((u.experiments, "experiments"), (u.runs, "runs")):
            for shown_row, row in zip(shown[key], rows, strict=True):
                shown_row["unreadable"] = row.unreadable
    for shown_group, group in zip(data["duplicates"], groups, strict=True):
        shown_group["links"] = [{"root": _text(r), "path": _text(p)} for r, p in group.links]
    every = across_roots(usage)
    data["all_roots"] = {
        "size_bytes": every.size,
        "files": every.files,
        "unchecked": [_text(r) for r in every.unchecked],
    }
    return data


def _disk(disk: int | None, size: int | None = None) -> str:
    """What the files take on disk, beside their apparent size (shown when it differs)."""
    if disk is None:
        return ""
    if size is not None and abs(disk - size) <= max(size // 10, 64 << 10):
        return ""
    return (
        f"{', ' if size is None else '  ('}{human_size(disk)} on disk{'' if size is None else ')'}"
    )


COMMANDS = [retention_group, trash_group, du_cmd]
