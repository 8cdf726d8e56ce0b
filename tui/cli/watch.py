"""``artlens watch``: the headless live watcher (for tmux or systemd)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from store import paths
from store.errors import ArtlensError
from store.locate import remember, resolve_db
from store.watch import BatchReport, Watcher
from store.watch.watcher import DEFAULT_POLL_SECONDS
from tui.cli.common import Seconds, db_option, no_empty

if TYPE_CHECKING:
    from store.objpoll import PollReport


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
@click.argument("roots", nargs=-1, required=True)
@db_option
@click.option(
    "--poll",
    type=Seconds(),
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
    roots: tuple[str, ...],
    db_path: Path | None,
    poll: float | None,
    reconcile: float,
    quiet: bool,
) -> None:
    """Keep the index of ROOTS current while files change, until Ctrl-C or SIGTERM.

    Bucket URLs (s3://bucket/prefix) are polled: live run prefixes every --poll seconds
    (30 by default), the whole root every --reconcile seconds.  Folders and URLs together
    are one index (the folders' one, or --db): the buckets are polled beside the folders'
    watcher."""
    from store.root import is_url

    no_empty(roots, "ROOT", "name a folder; . for the current one")
    urls = [r for r in roots if is_url(r)]
    folders = tuple(Path(r) for r in roots if not is_url(r))
    if not folders:
        _poll_buckets(urls, db_path, poll, reconcile, quiet)
        return
    _watch_folders(folders, db_path, poll, reconcile, quiet, urls)


def _watch_folders(
    roots: tuple[Path, ...],
    db_path: Path | None,
    poll: float | None,
    reconcile: float,
    quiet: bool,
    urls: list[str] | None = None,
) -> None:
    target = resolve_db(db_path, roots)
    assert target is not None
    buckets: _Buckets | None = None
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
        if urls:  # beside the watcher, which holds the writer lock for both
            buckets = _Buckets(target, urls, poll, reconcile, quiet, done, hold_lock=False)
        if not quiet:
            modes = ", ".join(
                f"{paths.display(name)} ({h['mode']})" for name, h in watcher.health().items()
            )
            if buckets is not None:
                modes += f"; polling {buckets.describe()}"
            click.echo(f"watching {modes}; index {target}; Ctrl-C to stop")
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        if buckets is not None:
            buckets.stop()
        watcher.stop()
        signal.signal(signal.SIGTERM, previous)
        watch_log.removeHandler(notices)
        watch_log.propagate = propagated
    if buckets is not None:
        buckets.raise_failure()
    if not quiet:
        click.echo("stopped")


class _Buckets:
    """A ``BucketPoller`` on its own thread, one line per pass that changed something or
    failed; ``done`` is set when it ends (a failure is kept for ``raise_failure``)."""

    def __init__(
        self,
        target: Path,
        urls: list[str],
        poll: float | None,
        reconcile: float,
        quiet: bool,
        done: threading.Event,
        *,
        hold_lock: bool = True,
    ) -> None:
        from store.objpoll import LIVE_EVERY, BucketPoller

        self.urls = urls
        self.quiet = quiet
        self.done = done
        self.failed: list[BaseException] = []
        self.poller = BucketPoller(
            target,
            urls,
            live_every=poll or LIVE_EVERY,
            reconcile_every=reconcile,
            on_pass=self._report,
            hold_lock=hold_lock,
        )
        self.thread = threading.Thread(target=self._run, name="artlens-bucket-poll", daemon=True)
        self.thread.start()

    def describe(self) -> str:
        return f"{', '.join(map(paths.display, self.urls))} ({self.poller.schedule_text()})"

    def _report(self, batch: PollReport) -> None:
        from tui.format import human_size

        if self.quiet or not (batch.added or batch.changed or batch.removed or batch.error):
            return
        line = (
            f"{time.strftime('%H:%M:%S')} {paths.display(batch.url)}: "
            f"+{batch.added} ~{batch.changed} -{batch.removed} [{batch.kind}] "
            f"{batch.requests} requests, {human_size(batch.nbytes)}; "
            f"~${self.poller.monthly_cost():.2f}/month"
        )
        if batch.error:
            line += f"; {batch.error}"
        try:
            click.echo(line)
        except BrokenPipeError:
            self.done.set()

    def _run(self) -> None:
        try:
            self.poller.run()
        except BaseException as exc:  # shown by the command, as one line
            self.failed.append(exc)
        finally:
            self.done.set()

    def stop(self) -> None:
        self.poller.stop()
        self.thread.join(60)

    def raise_failure(self) -> None:
        if self.failed:
            error = self.failed[0]
            raise ArtlensError(" ".join(str(error).split())[:300] or type(error).__name__)


def _poll_buckets(
    urls: list[str], db_path: Path | None, poll: float | None, reconcile: float, quiet: bool
) -> None:
    """Poll bucket roots into their index (the one ``artlens index URL`` fills) until
    Ctrl-C or SIGTERM, one line per pass that changed something or failed."""
    from tui.cli.objstore import object_db
    from tui.format import human_size

    target = object_db(db_path, urls)
    target.parent.mkdir(parents=True, exist_ok=True)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    buckets = _Buckets(target, urls, poll, reconcile, quiet, done)
    if not quiet:
        click.echo(f"polling {buckets.describe()}; index {target}; Ctrl-C to stop")
    try:
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        buckets.stop()
        signal.signal(signal.SIGTERM, previous)
    buckets.raise_failure()
    if not quiet:
        poller = buckets.poller
        click.echo(f"stopped: {poller.requests} requests, {human_size(poller.nbytes)}")


def _hash_cap() -> int | None:
    from store.errors import ArtlensError
    from store.hashing import configured_max_bytes

    try:
        return configured_max_bytes()
    except ValueError as exc:
        raise ArtlensError(f"hash size cap: {exc}") from None


COMMANDS = [watch_cmd]
