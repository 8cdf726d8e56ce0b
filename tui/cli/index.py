"""Headless index commands: ``index``, ``runs``, ``ls``."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from store import paths
from store.errors import ArtlensError
from store.index.query import list_artifacts, list_runs, resolve_run, runs_json
from store.locate import remember, resolve_db
from store.lock import WriterBusyError, WriterLock, holder_info
from store.safetext import visible
from tui.cli.common import (
    db_option,
    emit_json,
    emit_json_lines,
    index_used,
    is_terminal,
    json_option,
    may_end_at_once,
    no_empty,
    plain_reader,
    reader,
)
from tui.format import UNREAD_MARK, human_age, human_size, metric_value

RESCAN_TIMEOUT = 600.0
"""How long ``index`` waits for a running watcher to rescan a root for it."""

if TYPE_CHECKING:
    import sqlite_utils

    from store.scan import ScanReport


def index_files(db_path: Path) -> list[Path]:
    """The index's own files, which a root that holds them must not index."""
    from store.index.db import BUILDING_SUFFIX

    suffixes = ("", "-wal", "-shm", ".lock", BUILDING_SUFFIX, BUILDING_SUFFIX + "-journal")
    return [db_path.with_name(db_path.name + suffix) for suffix in suffixes]


def index_roots(
    roots: list[Path],
    db_path: Path,
    *,
    hash_files: bool = True,
    progress: bool = False,
    ignore: list[Path] | None = None,
    hash_max_bytes: int | None = None,
    remember_db: bool = True,
) -> list[ScanReport]:
    """Scan (and hash) every root into ``db_path`` as its single writer.

    ``remember_db`` records ``db_path`` as the index of these roots, for commands run
    later without ``--db``; an index the user named with ``--db`` is a one-off and is not.
    """
    from store.index.db import discard_new, is_network_fs, open_db, open_new, publish
    from store.scan import Indexer

    for root in roots:
        if not root.is_dir():
            raise ArtlensError(f"not a folder: {paths.display(str(root))}")
    fs_type = is_network_fs(db_path.parent)
    if fs_type:
        click.echo(
            f"artlens: warning: the index {db_path} is on a network filesystem ({fs_type}); "
            "SQLite locks badly there: prefer a local --db",
            err=True,
        )
    reports = []
    with WriterLock(db_path, role="index"):
        new = open_new(db_path)
        writing = new if new is not None else open_db(db_path)
        db: sqlite_utils.Database | None = writing  # None once published and closed
        try:
            indexers = []
            for root in roots:
                indexer = Indexer(writing, root, ignore_paths=index_files(db_path))
                with _progress(progress, f"indexing {paths.display(str(root))}") as update:
                    # files and runs land in one commit; the runs' own files are read after,
                    # unless no reader can see the index before it is published anyway
                    report = indexer.scan(
                        progress=update, defer_summaries=new is None, read_ahead=True
                    )
                with _progress(progress, "reading runs"):
                    indexer.fill_summaries()
                indexers.append(indexer)
                reports.append(report)
            if new is not None:  # readers may look now: hashing takes long
                publish(new, db_path)
                new = db = None
            if hash_files:
                if db is None:  # reopened published, in WAL mode: readers may look
                    db = open_db(db_path)
                    indexers = [Indexer(db, r, ignore_paths=index_files(db_path)) for r in roots]
                for indexer in indexers:
                    with _progress(progress, "hashing") as update:
                        indexer.hash_pending(progress=update, max_bytes=hash_max_bytes)
        finally:
            if new is not None:
                discard_new(new, db_path)
            elif db is not None:
                db.close()
    if remember_db:
        remember(db_path, roots)
    return reports


def _progress(
    enabled: bool, label: str
) -> AbstractContextManager[Callable[[int, int], None] | None]:
    if not enabled:
        return nullcontext(None)
    from tui.cli.progress import rich_progress

    return rich_progress(label)


def _summary(report: ScanReport) -> str:
    line = (
        f"{report.root}: {report.files} files, {report.runs} runs "
        f"(+{report.added} ~{report.changed} -{report.removed}) in {report.seconds:.2f}s"
    )
    if report.warnings:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(report.warnings.items()))
        line += f"; skipped {report.warning_count}: {parts}"
    return line


@click.command("index")
@click.argument("roots", nargs=-1, required=True)
@click.option("--no-hash", is_flag=True, help="Index names and sizes only; hash later.")
@click.option(
    "--hash-max-size",
    metavar="SIZE",
    help="Do not hash files larger than SIZE (e.g. 200G; marked skipped). "
    "Default: [index] hash_max_size in the user config, else no cap.",
)
@db_option
@json_option
def index_cmd(
    roots: tuple[str, ...],
    no_hash: bool,
    hash_max_size: str | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Scan ROOTS into the index (incremental: unchanged files cost no work).

    A root may be a folder or an s3://bucket/prefix (read through listings and ranged
    reads; --json adds the requests and bytes it cost)."""
    from store.root import is_url

    no_empty(roots, "ROOT", "name a folder; . for the current one")
    urls = [t for t in roots if is_url(t)]
    if urls:
        if len(urls) != len(roots):
            raise ArtlensError("index folders and object-store URLs in separate commands")
        from tui.cli.objstore import index_urls

        index_urls(urls, db_path, no_hash=no_hash, as_json=as_json)
        return
    folders = [Path(t) for t in roots]
    target = resolve_db(db_path, folders)
    assert target is not None
    index_used(target)
    # without hashing the config's cap is not read (a flag given is still checked)
    cap = None if no_hash and hash_max_size is None else _hash_cap(hash_max_size)
    try:
        reports = index_roots(
            folders,
            target,
            hash_files=not no_hash,
            progress=is_terminal() and not as_json,
            hash_max_bytes=cap,
            remember_db=db_path is None,
        )
    except WriterBusyError:
        info = holder_info(target)
        if not info or info.get("role") != "watch":
            raise
        _ask_watcher(target, folders, info, as_json)
        return
    if as_json:
        emit_json({"db": str(target), "roots": [r.to_json() for r in reports]})
    else:
        for report in reports:
            click.echo(_summary(report))
            for what, samples in sorted(report.samples.items()):
                click.echo(f"  {what}: {', '.join(samples)}")
        click.echo(f"index: {target}")
    may_end_at_once()  # the index is published and closed, the lock released


def _ask_watcher(target: Path, roots: list[Path], info: dict[str, Any], as_json: bool) -> None:
    """A watcher holds the index: have it rescan the roots, and say what it found."""
    from store.watch import rescan

    for root in roots:
        if not root.is_dir():
            raise ArtlensError(f"not a folder: {paths.display(str(root))}")
    pid = info.get("pid")
    wanted = [os.path.abspath(r) for r in roots]
    request = rescan.ask(target, wanted)

    def alive() -> bool:
        now = holder_info(target)
        return now is not None and now.get("role") == "watch"

    answer = rescan.wait(target, request, alive=alive, timeout=RESCAN_TIMEOUT)
    if answer is None and not alive():
        raise ArtlensError(
            f"the watcher (pid {pid}) that writes the index ended before it answered a "
            "rescan request; run the command again"
        )
    if answer is None:
        raise ArtlensError(
            f"the index is written by a watcher (pid {pid}) that did not answer a rescan "
            f"request within {RESCAN_TIMEOUT:.0f}s; try again"
        )
    if answer.not_watched:
        names = ", ".join(paths.display(r) for r in answer.not_watched)
        raise ArtlensError(
            f"the index is written by a watcher (pid {answer.pid}) that does not watch {names}: "
            "stop it, or watch those roots too"
        )
    if as_json:
        emit_json({"db": str(target), "watcher_pid": answer.pid, "rescanned": answer.rescanned})
        return
    for where, counts in answer.rescanned.items():
        what = f"+{counts['added']} ~{counts['changed']} -{counts['removed']}"
        if not any(counts.values()):
            click.echo(f"{paths.display(where)}: already fresh (the watcher, pid {answer.pid})")
        else:
            click.echo(
                f"{paths.display(where)}: rescanned by the watcher (pid {answer.pid}): {what}"
            )
    click.echo(f"index: {target} (hashing continues in the watcher)")


def _hash_cap(flag: str | None) -> int | None:
    """The hash size cap: the flag, else the user config's ``[index] hash_max_size``."""
    from store.hashing import configured_max_bytes
    from store.retention.policy import parse_size

    try:
        return parse_size(flag) if flag is not None else configured_max_bytes()
    except ValueError as exc:
        raise ArtlensError(f"hash size cap: {exc}") from None


def _key_metrics(
    metrics: dict[str, dict[str, Any]], limit: int = 2, *, partial: bool = False
) -> str:
    """The first ``limit`` metrics' last values, losses first; each ends in ``?`` when the
    metrics were read in ``partial`` (a lone ``?`` when none was read)."""
    preferred = sorted(
        metrics,
        key=lambda n: (0 if "loss" in n.lower() else 1 if "acc" in n.lower() else 2, n),
    )
    mark = UNREAD_MARK if partial else ""
    shown = " ".join(
        f"{visible(name)}={metric_value(metrics[name].get('last'))}{mark}"
        for name in preferred[:limit]
    )
    return shown or mark


@click.command("runs")
@db_option
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="CSV with params and metrics flattened.")
@click.option("--all-hosts", is_flag=True, help="Also the runs of every remote's mirror.")
@click.option("--host", "host_names", multiple=True, help="Runs of this remote ('local': ours).")
def runs_cmd(
    db_path: Path | None,
    as_json: bool,
    as_csv: bool,
    all_hosts: bool = False,
    host_names: tuple[str, ...] = (),
) -> None:
    """List the runs in the index (with --all-hosts or --host, with a host column)."""
    if all_hosts or host_names:
        from tui.cli.remote import print_host_runs

        if as_csv:
            raise ArtlensError("--csv lists one index: use --json with --all-hosts or --host")
        print_host_runs(db_path, list(host_names) or None, as_json)
        return
    if as_json:
        with plain_reader(db_path) as conn:
            emit_json_lines(runs_json(conn))
        may_end_at_once()  # a script's call: printed, and the index closed
        return
    with reader(db_path) as db:
        runs = list_runs(db)
    if as_csv:
        _runs_csv(runs)
        return
    if not runs:
        click.echo("no runs found")
        return
    if is_terminal():
        from tui.cli.tables import print_runs

        print_runs(runs)
        return
    names = paths.shown_names([r.name for r in runs])
    run_paths = paths.shown_names([r.abs_path for r in runs])
    for r, name, run_path in zip(runs, names, run_paths, strict=True):
        click.echo(
            "\t".join(
                [
                    str(r.id),
                    name,
                    r.framework,
                    r.status,
                    human_age(r.last_write),
                    human_size(r.size_bytes) + (UNREAD_MARK if r.unread_places else ""),
                    str(r.n_artifacts),
                    _key_metrics(r.metrics, partial="metrics" in r.unread_parts),
                    run_path,
                ]
            )
        )


def _runs_csv(runs: list[Any]) -> None:
    from tui.cli.csvout import spreadsheet_cell as cell

    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    writer = csv.writer(sys.stdout)
    writer.writerow(
        ["id", "name", "framework", "experiment", "status", "path", "size_bytes", "n_artifacts"]
        + [cell(f"param.{k}") for k in param_keys]
        + [cell(f"metric.{k}.last") for k in metric_keys]
        + [cell(f"metric.{k}.best") for k in metric_keys]
    )
    for r in runs:
        writer.writerow(
            [cell(v) for v in (r.id, r.name, r.framework, r.experiment, r.status)]
            + [cell(r.display_path), r.size_bytes, r.n_artifacts]
            + [cell(r.params.get(k)) for k in param_keys]
            + [cell(r.metrics.get(k, {}).get("last")) for k in metric_keys]
            + [cell(r.metrics.get(k, {}).get("best")) for k in metric_keys]
        )


@click.command("ls")
@click.argument("run", required=False)
@db_option
@json_option
def ls_cmd(run: str | None, db_path: Path | None, as_json: bool) -> None:
    """List the artifacts of RUN (name, id or path), or every artifact."""
    no_empty([run], "RUN", "name a run by name, id or path; give none for every artifact")
    with reader(db_path) as db:
        root_paths = {r[0]: bytes(r[1]) for r in db.conn.execute("SELECT id, path FROM roots")}
        run_id = resolve_run(db, run).id if run else None
        artifacts = list_artifacts(db, run_id=run_id)
    if as_json:
        emit_json([a.to_json(root_paths[a.root_id]) for a in artifacts])
        return
    if is_terminal() and artifacts:  # a header for people; scripts read bare rows
        click.echo(click.style(f"{'kind':<10}\t{'size':>7}\tpath\t(verdict)", bold=True))
    # look-alike paths (cafe in NFC and in NFD) spelled apart; --json keeps them exact
    shown = paths.shown_names([a.path for a in artifacts])
    for a, path in zip(artifacts, shown, strict=True):
        flag = f"\t{a.verdict}" if a.verdict in ("dangerous", "corrupt") else ""
        click.echo(f"{a.kind:<10}\t{human_size(a.size):>7}\t{path}{flag}")


COMMANDS = [index_cmd, runs_cmd, ls_cmd]
