"""The bar: the file a malicious pickle would create is never created, whatever is opened,
previewed, diffed or scanned.

The hostile corpus (``tests/fixtures/pickles``: every payload runs ``touch MARKER``) is
copied into a root, indexed (the hasher inspects every model file), walked file by file in
the explorer's preview, diffed pairwise and scanned with ``artlens scan``.  Run as a script
(``python tests/test_never_executes.py ROOT``), the same exercise runs under an audit hook
that fails on any process start, ``os.system`` or pickle global lookup.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from store.diff import diff_files
from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.test_tui import settle

HERE = Path(__file__).resolve().parent
PICKLES = HERE / "fixtures" / "pickles"
MODELS = HERE / "fixtures" / "models"
MARKER = Path("/tmp/artlens_inspect_PWNED")
"""What every payload in the corpus would create (see tests/fixtures/make_models.py)."""
NOW = 1_780_000_000.0
FORBIDDEN_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pickle.find_class",
        "ctypes.dlopen",
        "webbrowser.open",
    }
)
"""Audit events none of open/preview/diff/scan may raise (pickle.find_class = unpickling).

``marshal.loads`` is not here: the import system raises it for every ``.pyc``."""


def build_root(base: Path) -> tuple[Path, Path, list[Path]]:
    """The corpus in a run folder beside benign models, indexed; (root, db, hostile files)."""
    root = base / "root"
    evil = root / "evil-run"
    shutil.copytree(PICKLES, evil / "checkpoints")
    (evil / "checkpoints" / "PICKLESCAN.md").unlink()
    shutil.copytree(MODELS, root / "good-run" / "models")
    for folder, _, names in os.walk(root):
        for name in names:  # old enough for the hasher (and the fixed clock) to settle them
            os.utime(os.path.join(folder, name), (NOW - 7200, NOW - 7200))
    db_path = base / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root, clock=lambda: NOW)
            indexer.scan()
            indexer.hash_pending()
        finally:
            db.conn.close()
    return root, db_path, sorted((evil / "checkpoints").iterdir())


async def preview_every_file(root: Path, db_path: Path) -> dict[str, str]:
    """Walk every run's tree in the explorer, highlighting each file; name -> preview text."""
    from tui.app import ArtlensApp
    from tui.screens.explorer import ExplorerScreen

    seen: dict[str, str] = {}
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 3)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        for run_id in list(screen.runs):
            screen.jump_to_run(run_id)
            await settle(pilot, 3)
            tree = screen.file_tree
            await pilot.press("2")
            await settle(pilot, 3)
            for _ in range(500):
                node = tree.cursor_node
                info = node.data if node is not None else None
                if node is not None and info is not None and info.is_dir and not node.is_expanded:
                    await pilot.press("l")
                    await settle(pilot, 3)
                if info is not None and info.entry is not None and not info.is_dir:
                    seen[info.entry.name] = screen.preview_pane.plain_text(200)
                before = tree.cursor_line
                await pilot.press("j")
                await settle(pilot, 3)
                if tree.cursor_line == before:
                    break
    return seen


def diff_every_pair(files: list[Path], benign: list[Path]) -> int:
    pairs = list(itertools.combinations(files, 2)) + [(f, b) for f in files for b in benign[:3]]
    for left, right in pairs:
        result = diff_files(left, right)
        assert result.kind, (left, right)
    return len(pairs)


def scan_cli(root: Path) -> dict[str, object]:
    from tui.cli import main

    result = CliRunner().invoke(main, ["scan", "--json", str(root)])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def exercise(base: Path) -> None:
    """Index, preview, diff and scan the corpus; assert what each step must have seen."""
    root, db_path, hostile = build_root(base)
    db = open_db(db_path, readonly=True)
    try:
        verdicts = {
            name: verdict
            for path, name, verdict in db.conn.execute("SELECT path, name, verdict FROM artifacts")
            if bytes(path).startswith(b"evil-run/")
        }
    finally:
        db.conn.close()
    assert verdicts == {p.name: "dangerous" for p in hostile}
    previews = asyncio.run(preview_every_file(root, db_path))
    for path in hostile:
        assert "DANGEROUS" in previews[path.name], path.name
    assert len(previews) >= len(hostile) + len(list(MODELS.iterdir()))
    assert diff_every_pair(hostile, sorted((root / "good-run" / "models").iterdir())) > 400
    report = scan_cli(root)
    counts = report["counts"]
    assert isinstance(counts, dict) and counts["dangerous"] == len(hostile)


def test_marker_is_never_created(tmp_path: Path) -> None:
    if MARKER.exists():
        MARKER.unlink()
    exercise(tmp_path)
    assert not MARKER.exists()


def test_nothing_runs_under_an_audit_hook(tmp_path: Path) -> None:
    """The same exercise in a fresh interpreter that fails on any code-running event."""
    if MARKER.exists():
        MARKER.unlink()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "exercise passed under the audit hook" in proc.stdout
    assert not MARKER.exists()


def evasion_exercise(base: Path) -> None:
    """The evasion corpus (tests/fixtures/evasion) inspected file by file and scanned."""
    sys.path.insert(0, str(HERE / "fixtures" / "evasion"))
    import make_evasion

    from store.inspect import inspect_file
    from tui.cli import main

    cases = make_evasion.build(base / "corpus", MARKER)
    for case in cases:
        verdict = inspect_file(base / "corpus" / case.name).verdict
        assert verdict != ("safe" if case.malicious else "dangerous"), case.name
    result = CliRunner().invoke(main, ["scan", "--json", str(base / "corpus")])
    assert result.exit_code == 1, result.output
    assert len(json.loads(result.stdout)["files"]) == len(cases)


def test_evasion_corpus_runs_nothing_under_an_audit_hook(tmp_path: Path) -> None:
    if MARKER.exists():
        MARKER.unlink()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--evasion", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "exercise passed under the audit hook" in proc.stdout
    assert not MARKER.exists()


def test_the_audit_hook_catches_unpickling() -> None:
    """Not vacuous: loading even a benign in-memory pickle with a global trips the hook."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--self-check"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "FORBIDDEN: pickle.find_class ('collections', 'OrderedDict')" in proc.stderr


def _self_check() -> None:
    import collections
    import pickle

    pickle.loads(pickle.dumps(collections.OrderedDict(a=1)))


def _run_audited(base: Path | None, evasion: bool = False) -> int:
    # What importing our own modules does (watchdog loads libc with ctypes) is not caused by
    # the files under test: import first, then audit everything the files can drive.
    import tui.app
    import tui.cli

    assert tui.app.ArtlensApp is not None and tui.cli.main is not None
    fired: list[str] = []

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in FORBIDDEN_EVENTS:
            fired.append(f"{event} {args!r}"[:300])
            raise RuntimeError(f"audit: {event} is forbidden here")

    sys.addaudithook(hook)
    try:
        if base is None:
            _self_check()
        elif evasion:
            evasion_exercise(base)
        else:
            exercise(base)
    finally:
        for line in fired:
            print(f"FORBIDDEN: {line}", file=sys.stderr)
    if fired or MARKER.exists():
        return 1
    print("exercise passed under the audit hook")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--evasion":
        sys.exit(_run_audited(Path(sys.argv[2]), evasion=True))
    sys.exit(_run_audited(None if sys.argv[1] == "--self-check" else Path(sys.argv[1])))
