"""``artlens watch``: the headless live watcher (for tmux or systemd)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import click

from store import paths
from store.locate import remember, resolve_db
from store.watch import BatchReport, Watcher
from store.watch.watcher import DEFAULT_POLL_SECONDS
from tui.cli.common import db_option


def _batch_line(report: BatchReport) -> str:
    what = f"+{report.added} ~{report.changed} -{report.removed}"
    if report.kind == "batch":
        where = f"{report.events} events in {report.folders} folders"
    else:
        where = report.kind + (f" ({report.reason})" if report.reason else "")
    stamp = time.strftime("%H:%M:%S")
    return f"{stamp} {report.root}: {what} [{where}] {report.seconds * 1000:.0f} ms"


class _StderrNotices(logging.Handler):
    """The watcher's warnings (fallback to polling, lost events) as one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"artlens: {record.getMessage()}", err=True)


@click.command("watch")
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@click.option(
    "--poll",
    type=float,
    is_flag=False,
    flag_value=DEFAULT_POLL_SECONDS,
    default=None,
    metavar="[SECONDS]",
    help=f"Poll with rescans instead of inotify (every {DEFAULT_POLL_SECONDS:.0f}s by default).",
)
@click.option(
    "--reconcile",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Rescan every root this often anyway (events can be lost).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but warnings.")
def watch_cmd(
    roots: tuple[Path, ...],
    db_path: Path | None,
    poll: float | None,
    reconcile: float,
    quiet: bool,
) -> None:
    """Keep the index of ROOTS current while files change, until Ctrl-C or SIGTERM."""
    target = resolve_db(db_path, roots)
    assert target is not None
    notices = _StderrNotices(logging.WARNING)
    watch_log = logging.getLogger("artlens.watch")
    watch_log.addHandler(notices)
    propagated, watch_log.propagate = watch_log.propagate, False
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    def report(batch: BatchReport) -> None:
        try:
            click.echo(_batch_line(batch))
        except BrokenPipeError:  # `artlens watch ROOT | head`: the reader left, stop quietly
            done.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    watcher = Watcher(
        target,
        list(roots),
        poll=poll,
        reconcile_every=reconcile,
        on_batch=None if quiet else report,
        hash_max_bytes=_hash_cap(),
    )
    try:
        # a one-shot writer (index, retention apply) is waited for, not a reason to exit
        watcher.start(wait_for_writer=True, give_up=done.is_set)
        if db_path is None:  # a --db the user named is a one-off, not the roots' index
            remember(target, roots)
        if not quiet:
            modes = ", ".join(
                f"{paths.display(name)} ({h['mode']})" for name, h in watcher.health().items()
            )
            click.echo(f"watching {modes}; index {target}; Ctrl-C to stop")
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        watcher.stop()
        signal.signal(signal.SIGTERM, previous)
        watch_log.removeHandler(notices)
        watch_log.propagate = propagated
    if not quiet:
        click.echo("stopped")


def _hash_cap() -> int | None:
    from store.errors import ArtlensError
    from store.hashing import configured_max_bytes

    try:
        return configured_max_bytes()
    except ValueError as exc:
        raise ArtlensError(f"hash size cap: {exc}") from None


COMMANDS = [watch_cmd]
