"""``artlens remote``: other machines' indexes, mirrored here read-only."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from store.errors import ArtlensError
from store.safetext import visible
from tui.cli.common import count_type, db_option, emit_json, json_option, one_line

if TYPE_CHECKING:
    from store.remote.config import Remote


@click.group("remote")
def remote_group() -> None:
    """Hosts whose indexes are mirrored here (pulled over ssh or a command)."""


@remote_group.command("add")
@click.argument("name")
@click.argument("url", required=False)
@click.option("--command", "command", help="Run this command line (plus `feed ...`/`cat ...`) "
              "instead of ssh, e.g. \"ssh -J bastion gpu1 artlens\".")  # fmt: skip
def add_cmd(name: str, url: str | None, command: str | None) -> None:
    """Add remote NAME: ssh://[user@]host[:port][/path/to/index], or --command."""
    from store.remote import config

    config.check_name(name)
    if name == "local":
        raise ArtlensError("'local' names this machine's own index: pick another name")
    if (url is None) == (command is None):
        raise ArtlensError("give exactly one of an ssh:// URL and --command")
    if url is not None:
        config.parse_ssh_url(url)
    if command is not None and not command.strip():
        raise ArtlensError("--command is empty")
    remotes = config.load()
    if any(r.name == name for r in remotes):
        raise ArtlensError(f"remote {name!r} exists: `artlens remote remove {name}` first")
    config.save([*remotes, config.Remote(name, url, command)])
    click.echo(f"added {name}: pull it with `artlens remote pull {name}`")


@remote_group.command("remove")
@click.argument("name")
def remove_cmd(name: str) -> None:
    """Forget remote NAME and delete its mirror (the host is not touched)."""
    from store.remote import config

    remote = config.get(config.check_name(name))
    config.save([r for r in config.load() if r.name != name])
    for suffix in ("", "-wal", "-shm", ".lock"):
        path = remote.mirror_path.with_name(remote.mirror_path.name + suffix)
        path.unlink(missing_ok=True)
    click.echo(f"removed {name}")


def _age(ts: float | None) -> str:
    from tui.format import human_age

    return human_age(ts) if ts else "never"


@remote_group.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Each remote: online or offline (with its last error), when pulled, what it holds."""
    from store.remote import config, mirror

    statuses = [mirror.status(r) for r in config.load()]
    if as_json:
        from store.index.query import iso

        emit_json(
            [{**vars(s), "last_ok": iso(s.last_ok), "retry_at": iso(s.retry_at)} for s in statuses]
        )
        return
    if not statuses:
        click.echo("no remotes: add one with `artlens remote add NAME ssh://host`")
        return
    for s in statuses:
        line = (
            f"{s.name}\t{s.state}\t{visible(s.where)}\tpulled {_age(s.last_ok)}"
            f"\t{s.runs} runs\t{s.artifacts} files"
        )
        if s.last_error:
            line += f"\terror: {visible(one_line(ArtlensError(s.last_error)))}"
        click.echo(line)


@remote_group.command("pull")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Try hosts that are backing off too.")
@click.option("--timeout", type=click.FloatRange(1), default=900.0, show_default=True,
              help="Seconds one host may take.")  # fmt: skip
@json_option
def pull_cmd(names: tuple[str, ...], force: bool, timeout: float, as_json: bool) -> None:
    """Bring the mirrors of NAMES (default: every remote) up to date.

    Without NAMES, a host that failed recently is skipped until its back-off ends.
    Exit status 1 when any host could not be pulled.
    """
    from store.lock import WriterBusyError
    from store.remote import config, mirror
    from store.remote.transport import RemoteError

    remotes = [config.get(n) for n in names] if names else config.load()
    results: list[dict[str, object]] = []
    failed = False
    for remote in remotes:
        state = mirror.status(remote)
        if not names and not force and state.retry_at and state.retry_at > time.time():
            wait = int(state.retry_at - time.time())
            results.append({"name": remote.name, "ok": False, "skipped": True,
                            "error": f"offline, next try in {wait}s"})  # fmt: skip
            continue
        try:
            got = mirror.pull(remote, timeout=timeout)
        except (RemoteError, WriterBusyError) as exc:  # one host's failure is its own line
            failed = True
            results.append({"name": remote.name, "ok": False, "error": one_line(exc)})
            continue
        results.append({"name": remote.name, "ok": True, **vars(got)})
        for warning in got.warnings:
            click.echo(f"artlens: {remote.name}: {visible(warning)}", err=True)
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                click.echo(
                    f"{r['name']}: {r['mode']} to event {r['last_event']}: {r['runs']} runs,"
                    f" {r['artifacts']} files, {r['bytes']} bytes in {r['seconds']:.2f}s"
                )
            else:
                click.echo(f"{r['name']}: {visible(str(r['error']))}", err=True)
    if failed:
        raise SystemExit(1)


@dataclass(frozen=True)
class _FileSide:
    """One side of a file diff: a local path, or an indexed file of a remote."""

    label: str
    path: str
    size: int
    digest: str | None
    remote: Remote | None = None


def _file_side(ref: str, split: tuple[str, str] | None, local: Path | None) -> _FileSide | None:
    """The file ``ref`` names, or None when it names a run."""
    from store.remote import hosts
    from tui.cli.diff import _regular_file

    if split is None or split[0] == hosts.LOCAL:
        path = _regular_file(split[1] if split else ref)
        if path is None:
            return None
        return _FileSide(ref, path, os.path.getsize(path), None)
    found = hosts.hosts(local, [split[0]])
    if not found:
        return None
    hit = hosts.find_file(found[0], split[1])
    if hit is None:
        return None
    raw, size, digest = hit
    return _FileSide(ref, os.fsdecode(raw), size, digest, found[0].remote)


def _diff_host_files(a: _FileSide, b: _FileSide, context: int, as_json: bool) -> int:
    """Fetch the remote sides whole (bounded, with a note when large) and diff the copies;
    two files with the same hash on their hosts are equal without a fetch."""
    import tempfile

    from store.remote.fetch import fetch_file
    from store.remote.transport import RemoteError
    from tui.cli.diff import EXIT_EQUAL, _diff_files
    from tui.format import human_size

    if a.digest is not None and a.digest == b.digest and a.size == b.size:
        if as_json:
            emit_json({"kind": "files", "a": a.label, "b": b.label, "equal": True,
                       "engine": "hash", "size_a": a.size, "size_b": b.size, "error": None,
                       "notes": ["same xxh3-128 hash on both hosts: not fetched"],
                       "result": None})  # fmt: skip
        else:
            click.echo(f"files are equal (same hash {a.digest[:16]} on both hosts)")
        return EXIT_EQUAL
    with tempfile.TemporaryDirectory(prefix="artlens-fetch-") as tmp:
        local_paths = []
        for tag, side in (("a", a), ("b", b)):
            if side.remote is None:
                local_paths.append(side.path)
                continue
            if side.size > NOTE_BYTES:
                click.echo(
                    f"artlens: fetching {human_size(side.size)} of {visible(side.label)}",
                    err=True,
                )
            suffix = "".join(c for c in os.path.splitext(side.path)[1] if c.isalnum() or c == ".")
            target = os.path.join(tmp, tag + suffix[:16])
            try:
                fetch_file(side.remote, side.path, side.size, target)
            except RemoteError as exc:
                raise RemoteError(f"{side.remote.name}: {exc}") from None
            local_paths.append(target)
        return _diff_files(local_paths[0], local_paths[1], a.label, b.label, context, as_json)


NOTE_BYTES = 1 << 20
"""Remote files larger than this get a note on stderr before they are fetched."""


def diff_across_hosts(
    a: str, b: str, db_path: Path | None, as_json: bool, context: int = 3
) -> int | None:
    """``artlens diff HOST:RUN HOST:RUN`` or ``HOST:/path HOST:/path`` (either side may be
    local); None when neither side names a host, so the plain diff goes on."""
    if ":" not in a and ":" not in b:  # what split_ref says at once, without its imports
        return None
    from store.locate import resolve_db
    from store.remote import hosts

    try:
        split_a, split_b = hosts.split_ref(a), hosts.split_ref(b)
    except ArtlensError:
        return None  # no readable remotes file: nothing here names a host
    if split_a is None and split_b is None:
        return None
    from store.rundiff import diff_sides
    from tui.cli.diff import print_run_diff

    local = resolve_db(db_path)
    file_a, file_b = _file_side(a, split_a, local), _file_side(b, split_b, local)
    if file_a is not None and file_b is not None:
        return _diff_host_files(file_a, file_b, context, as_json)
    if (file_a is None) != (file_b is None):
        single = a if file_a is not None else b
        raise ArtlensError(
            f"{visible(single)!r} is a file but the other is not: give two files or two runs"
        )
    host_a, run_a = hosts.resolve(a, local)
    host_b, run_b = hosts.resolve(b, local)
    warnings: list[str] = []
    with hosts.opened(host_a) as db_a, hosts.opened(host_b) as db_b:
        result = diff_sides(db_a, run_a, db_b, run_b, warnings, host_a.reader(), host_b.reader())
    for host in (host_a, host_b):
        warnings += hosts.offline_notes([host])
    return print_run_diff(run_a, run_b, result, warnings, as_json, (host_a.name, host_b.name))


@remote_group.command("dups")
@click.argument("names", nargs=-1)
@click.option("--min-size", type=count_type(1), default=1, show_default=True,
              help="Ignore files smaller than this many bytes.")  # fmt: skip
@click.option("--top", type=count_type(1), default=20, show_default=True,
              help="Contents listed (without --json).")  # fmt: skip
@db_option
@json_option
def dups_cmd(
    names: tuple[str, ...], min_size: int, top: int, db_path: Path | None, as_json: bool
) -> None:
    """Files with the same content on two or more hosts (the local index and the mirrors
    of NAMES, default all), by full content hash and size; most bytes first."""
    from store.locate import resolve_db
    from store.remote import dups, hosts
    from tui.format import human_size

    found = hosts.hosts(resolve_db(db_path), list(names) or None)
    unpulled = hosts.unpulled_notes([n for n in names if n != hosts.LOCAL] or None)
    if len(found) < 2:
        why = "".join(f"; {note}" for note in unpulled)
        raise ArtlensError(f"fewer than two indexes to compare (pull a remote first){why}")
    result = dups.across_hosts(found, min_size=min_size)
    notes = unpulled + hosts.offline_notes(found) + result.warnings
    for note in notes:
        click.echo(f"artlens: {visible(note)}", err=True)
    if as_json:
        emit_json(
            {
                "hosts": [h.name for h in found],
                "duplicates": [g.to_json() for g in result.groups],
                "warnings": notes,
            }
        )
        return
    if not result.groups:
        click.echo("no content is on two hosts")
        return
    for group in result.groups[:top]:
        where = ", ".join(f"{h} ×{n}" for h, n in sorted(group.counts.items()))
        click.echo(f"{human_size(group.size):>8}  {group.hash[:16]}  {where}")
        for copy in group.copies[:6]:
            click.echo(f"          {visible(dups.display(copy))}")
    if len(result.groups) > top:
        click.echo(f"… {len(result.groups) - top} more (--top, --json)")


@remote_group.group("retention")
def remote_retention_group() -> None:
    """Retention on remote hosts: planned, applied, restored and purged there.

    Each host plans with its own policy and saves the plan there; apply names that plan
    (HOST:PLAN_ID) and the host re-checks every item as a local apply does.  Afterwards
    the host's mirror is pulled: the result comes back through the feed.  Nothing on
    this machine is written but the mirror."""


@remote_retention_group.command("plan")
@click.argument("names", nargs=-1)
@json_option
def remote_plan_cmd(names: tuple[str, ...], as_json: bool) -> None:
    """Plan on each host NAMES (default: every remote) with its own policy."""
    from store.remote import config
    from store.remote import retention as remote_retention
    from store.remote.transport import RemoteError
    from tui.format import human_size

    chosen = [config.get(n) for n in names] if names else config.load()
    if not chosen:
        raise ArtlensError("no remotes (see `artlens remote add`)")
    plans, failed = [], 0
    for remote in chosen:
        try:
            plans.append(remote_retention.plan(remote))
        except RemoteError as exc:
            failed += 1
            click.echo(f"artlens: {remote.name}: {one_line(exc)}", err=True)
    if as_json:
        emit_json(
            [
                {
                    "host": p.host,
                    "plan": f"{p.host}:{p.id}",
                    "bytes_freed": p.bytes_freed,
                    "removals": p.removals,
                    "kept": p.kept,
                    "warnings": list(p.warnings),
                }
                for p in plans
            ]
        )
    else:
        for p in plans:
            click.echo(
                f"{p.host}:{p.id}\t{p.removals} to remove, {human_size(p.bytes_freed)}, "
                f"{p.kept} kept"
            )
            for warning in p.warnings:
                click.echo(f"  {p.host}: {visible(warning)}")
        if plans:
            click.echo(
                "apply with `artlens remote retention apply HOST:PLAN... --yes` "
                "(each on its own host)"
            )
    if failed:
        raise SystemExit(1)


def _show_report(report: Any, as_json: bool) -> int:
    """Print a host's apply, restore or purge report; each item it skipped is one line on
    stderr, with why.  Returns how many it skipped (the command then exits 1)."""
    for row in report.skipped:
        click.echo(
            f"artlens: {visible(report.host)}: skipped {visible(row.path)}: {visible(row.reason)}",
            err=True,
        )
    if as_json:
        emit_json(
            {
                "host": report.host,
                "action": report.action,
                "applied": report.applied,
                "plan": report.plan,
                "bytes_done": report.bytes_done,
                "would": report.would,
                "done": [vars(r) for r in report.done],
                "skipped": [vars(r) for r in report.skipped],
                "mirror_last_event": report.pulled,
                "pull_error": report.pull_error,
            }
        )
        return len(report.skipped)
    from tui.format import human_size

    where = f"{report.host}:"
    for row in report.done:
        click.echo(f"{where} {report.action} {visible(row.path)}  {human_size(row.size)}")
    if not report.applied:
        click.echo(f"{where} dry run: {report.would} item(s); add --yes to do it there")
        return len(report.skipped)
    click.echo(
        f"{where} {report.action}: {len(report.done)} ({human_size(report.bytes_done)}), "
        f"skipped {len(report.skipped)}"
    )
    if report.pull_error is not None:
        click.echo(f"artlens: {report.host}: mirror not updated: {visible(report.pull_error)}",
                   err=True)  # fmt: skip
    else:
        click.echo(f"{where} mirror pulled to event {report.pulled}")
    return len(report.skipped)


def _split_host_ref(ref: str, what: str) -> tuple[Remote, str]:
    from store.remote import config

    host, sep, rest = ref.partition(":")
    if not sep or not rest:
        raise ArtlensError(f"name {what} as HOST:{what.upper()} (got {visible(ref[:100])!r})")
    return config.get(host), rest


@remote_retention_group.command("apply")
@click.argument("plans", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Apply there (else a dry run there).")
@json_option
def remote_apply_cmd(plans: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Apply each HOST:PLAN_ID (from `remote retention plan`) on its own host (exit 1 when
    a host fails, or skips an item: each named on stderr)."""
    from store.remote import retention as remote_retention
    from store.remote.transport import RemoteError

    targets = [_split_host_ref(p, "plan") for p in plans]
    failed = 0
    for remote, plan_id in targets:
        try:
            failed += _show_report(remote_retention.apply(remote, plan_id, yes=yes), as_json)
        except RemoteError as exc:
            failed += 1
            click.echo(f"artlens: {remote.name}: {one_line(exc)}", err=True)
    if failed:  # a host that failed, or an item one skipped
        raise SystemExit(1)


@remote_retention_group.command("restore")
@click.argument("host")
@click.argument("ids", nargs=-1)
@click.option("--all", "restore_all", is_flag=True, help="Restore everything in its trash.")
@json_option
def remote_restore_cmd(host: str, ids: tuple[str, ...], restore_all: bool, as_json: bool) -> None:
    """Restore trash IDS (or --all) on HOST, there (exit 1 when it skips an item)."""
    from store.remote import config
    from store.remote import retention as remote_retention

    if bool(ids) == restore_all:
        raise ArtlensError("give trash IDs (`artlens trash list` on the host) or --all")
    report = remote_retention.restore(config.get(host), ["--all"] if restore_all else list(ids))
    if _show_report(report, as_json):
        raise SystemExit(1)


@remote_retention_group.command("purge")
@click.argument("host")
@click.option("--older-than", required=True, metavar="AGE", help="Purge what was trashed AGE ago.")
@click.option("--yes", "-y", is_flag=True, help="Delete there (else a dry run there).")
@json_option
def remote_purge_cmd(host: str, older_than: str, yes: bool, as_json: bool) -> None:
    """Delete for good what has been in HOST's trash longer than AGE, there (exit 1 when it
    skips an item)."""
    from store.remote import config
    from store.remote import retention as remote_retention

    if _show_report(remote_retention.purge(config.get(host), older_than, yes=yes), as_json):
        raise SystemExit(1)


def print_host_runs(db_path: Path | None, names: list[str] | None, as_json: bool) -> None:
    """``artlens runs --all-hosts`` / ``--host NAME``: runs of the local index and of
    mirrors, with a host column; offline hosts show their last pull and a note."""
    from store.locate import resolve_db
    from store.remote import hosts

    found = hosts.hosts(resolve_db(db_path), names)
    unpulled = hosts.unpulled_notes([n for n in names if n != hosts.LOCAL] if names else None)
    if names and not found and unpulled:  # nothing to list: not "no runs found"
        raise ArtlensError("; ".join(unpulled))
    rows = hosts.runs_by_host(found)
    for note in unpulled + hosts.offline_notes(found):
        click.echo(f"artlens: {visible(note)}", err=True)
    if as_json:
        emit_json([{"host": host, **run.to_json()} for host, run in rows])
        return
    if not rows:
        click.echo("no runs found")
        return
    from store import paths
    from tui.cli.common import is_terminal
    from tui.format import UNREAD_MARK, human_size

    # look-alikes of the whole listing (café in NFC on one host, in NFD on another) spelled
    names = paths.shown_names([r.name for _, r in rows])
    if is_terminal():
        _print_host_table(rows, names)
        return

    run_paths = paths.shown_names([r.abs_path for _, r in rows])
    for (host, r), name, run_path in zip(rows, names, run_paths, strict=True):
        click.echo(
            "\t".join(
                [
                    host,
                    str(r.id),
                    name,
                    visible(r.framework),
                    r.status,
                    _age(r.last_write),
                    human_size(r.size_bytes) + (UNREAD_MARK if r.unread_places else ""),
                    str(r.n_artifacts),
                    run_path,
                ]
            )
        )


def _print_host_table(rows: list[tuple[str, Any]], names: list[str]) -> None:
    """The terminal table of ``runs --all-hosts``: ``runs``' columns after a host column;
    ``names`` the run names as shown (``paths.shown_names``)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tui.cli.tables import STATUS_STYLE
    from tui.format import UNREAD_MARK, human_age, human_size

    table = Table(box=None, header_style="bold")
    for column in ("host", "id", "name", "framework", "status", "last write", "size", "files"):
        table.add_column(column, overflow="fold")
    for (host, r), name in zip(rows, names, strict=True):
        table.add_row(
            Text(host, style="cyan"),
            str(r.id),
            Text(name),
            Text(visible(r.framework)),
            Text(r.status, style=STATUS_STYLE.get(r.status, "")),
            human_age(r.last_write),
            Text.assemble(
                human_size(r.size_bytes), (UNREAD_MARK, "bold yellow") if r.unread_places else ""
            ),
            str(r.n_artifacts),
        )
    Console().print(table)


COMMANDS = [remote_group]
