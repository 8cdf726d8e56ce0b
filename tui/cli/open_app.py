"""Commands that open the explorer: ``artlens [ROOT...]`` and ``artlens demo [DIR]``."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from store import paths
from store.errors import ArtlensError
from store.locate import cache_dir, resolve_db
from tui.cli.common import NonEmptyPath, Seconds, db_option, is_terminal
from tui.cli.index import index_roots


def _launch(db_path: Path, roots: list[Path], *, watch: bool, writer: str | None = None) -> None:
    from tui.app import run_app

    run_app(db_path, roots, watch=watch, writer=writer)


def no_terminal() -> str | None:
    """Why the explorer cannot run here, or None: it draws on standard output and reads
    keys from standard input, and with either redirected it drew into a file and waited
    for keys that never came, a core busy all the while."""
    import sys

    for name, stream in (("standard input", sys.stdin), ("standard output", sys.stdout)):
        if stream is None or not stream.isatty():
            return f"{name} is not a terminal"
    return None


NO_TERMINAL_HINT = "`artlens index`, `runs`, `ls` and `diff` work without one"


def index_or_follow(roots: list[Path], db_path: Path, *, remember_db: bool = True) -> str | None:
    """Index ``roots`` as the writer, or, when another process already writes the index
    (``artlens watch ROOT`` beside ``artlens ROOT``), return who it is: the explorer then
    opens as a reader that follows that writer.  A root the index does not hold yet cannot
    be followed (the writer does not watch it): that is an error naming the writer."""
    import os

    from store.index import query
    from store.index.db import open_db
    from store.lock import WriterBusyError, holder

    busy = holder(db_path) if db_path.exists() else None
    if busy is None:
        try:
            index_roots(
                roots, db_path, progress=is_terminal(), hash_files=False, remember_db=remember_db
            )
            return None
        except WriterBusyError:  # a writer started between the check and the lock
            busy = holder(db_path) or "another process"
    db = open_db(db_path, readonly=True)
    try:
        indexed = {bytes(path) for _, path, _ in query.roots(db)}
    finally:
        db.conn.close()
    for root in roots:
        if os.fsencode(os.path.abspath(root)) not in indexed:
            raise ArtlensError(
                f"{root} is not in the index {db_path}, which {busy} writes: "
                "stop that process to index it, or pass another --db"
            )
    return busy


def open_first(roots: list[Path], db_path: Path, *, remember_db: bool = True) -> bool:
    """Whether the explorer can open at once and index ``roots`` itself (its watcher scans
    a new root piece by piece, so the first runs show within a second): true when no
    other process writes the index and some root is not in it yet.  The index is created
    here, empty, so the explorer has something to read from its first frame."""
    import os

    from store.index import query
    from store.index.db import open_db
    from store.locate import remember
    from store.lock import WriterBusyError, WriterLock, holder

    for root in roots:
        if not root.is_dir():
            raise ArtlensError(f"not a folder: {paths.display(str(root))}")
    if db_path.exists() and holder(db_path) is not None:
        return False
    try:
        with WriterLock(db_path, role="index"):
            db = open_db(db_path)
            try:
                indexed = {bytes(path) for _, path, _ in query.roots(db)}
            finally:
                db.close()
    except WriterBusyError:
        return False
    if all(os.fsencode(os.path.abspath(root)) in indexed for root in roots):
        return False
    if remember_db:
        remember(db_path, roots)
    return True


@click.command("open")
@click.argument("roots", nargs=-1, type=NonEmptyPath(path_type=Path))
@click.option("--no-watch", is_flag=True, help="Do not start a watcher when none runs.")
@db_option
def open_cmd(roots: tuple[Path, ...], no_watch: bool, db_path: Path | None) -> None:
    """Open the explorer on ROOTS (indexing them first when new), or on the last index."""
    target = resolve_db(db_path, roots)
    if target is None:
        raise ArtlensError(
            "nothing to show yet: run `artlens ROOT` on a training output folder, "
            "or `artlens demo` to try it on a generated tree"
        )
    from store.frameworks.generic import rules

    for root in roots:
        if not root.is_dir():
            raise ArtlensError(f"not a folder: {paths.display(str(root))}")
        rules(root)  # a [runs] that cannot be used: its one line, not an index of other runs
    missing = no_terminal()
    if missing is not None:  # before any indexing: it would be done for nothing
        raise ArtlensError(f"the explorer needs a terminal ({missing}): {NO_TERMINAL_HINT}")
    writer = None
    if roots:
        remember_db = db_path is None
        # a new root is indexed by the explorer's own watcher, in pieces, while it shows
        if no_watch or not open_first(list(roots), target, remember_db=remember_db):
            writer = index_or_follow(list(roots), target, remember_db=remember_db)
    elif not target.exists():
        raise ArtlensError(f"no index at {target}: run `artlens ROOT` first")
    _launch(target, list(roots), watch=not no_watch, writer=writer)


@click.command("demo")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-open", is_flag=True, help="Write and index the demo tree, then exit.")
@click.option(
    "--live/--no-live", default=True, help="Keep a simulated training run writing (default on)."
)
@click.option(
    "--duration",
    type=Seconds(),
    default=180.0,
    show_default=True,
    help="Seconds the live run writes.",
)
@db_option
def demo_cmd(
    dest: Path | None, no_open: bool, live: bool, duration: float, db_path: Path | None
) -> None:
    """Write a realistic demo tree to DEST (default: the cache folder) and open it."""
    import shutil

    from store.demo import simulate_training, write_demo

    dest = dest or cache_dir() / "demo"
    if dest.exists() and any(dest.iterdir()):
        if not (dest / ".artlens-demo").exists():
            raise ArtlensError(f"{dest} is not empty and not an artlens demo: choose another DIR")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    info = write_demo(dest)
    (dest / ".artlens-demo").write_text("written by `artlens demo`; safe to delete\n")
    target = resolve_db(db_path, [dest])
    assert target is not None
    if target.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
    reports = index_roots([dest], target, progress=is_terminal(), remember_db=db_path is None)
    missing = None if no_open else no_terminal()
    if no_open or missing is not None:
        click.echo(f"demo written to {dest}: {reports[0].files} files, {reports[0].runs} runs")
        click.echo(f"index: {target}")
        if missing is not None:
            raise ArtlensError(
                f"not opened: the explorer needs a terminal ({missing}); pass --no-open in scripts"
            )
        return
    stop = threading.Event()
    writer = None
    if live:
        writer = threading.Thread(
            target=simulate_training,
            args=(info.live_run,),
            kwargs={"duration": duration, "stop": stop},
            name="artlens-demo-writer",
            daemon=True,
        )
        writer.start()
    try:
        _launch(target, [dest], watch=True)
    finally:
        stop.set()
        if writer is not None:
            writer.join(timeout=5)


COMMANDS = [open_cmd, demo_cmd]
