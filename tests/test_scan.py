"""The scanner against real trees: hostile names, special files, incremental rescans."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from store import paths
from store.hashing import hash_file
from store.index.db import open_db
from store.scan import Indexer, RootGoneError
from tests.conftest import HOSTILE_NAMES, ground_truth, unprivileged_python


def index_rows(db: sqlite_utils.Database) -> dict[bytes, int]:
    return {bytes(p): s for p, s in db.execute("SELECT path, size FROM artifacts")}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def test_hostile_tree_indexes_completely_with_counted_warnings(
    hostile_tree: Path, db: sqlite_utils.Database
) -> None:
    report = Indexer(db, hostile_tree).scan()
    assert index_rows(db) == ground_truth(hostile_tree)
    assert report.warnings["skipped FIFO"] == 1
    assert report.warnings["skipped socket"] == 1
    names = {row[0] for row in db.execute("SELECT name FROM artifacts")}
    assert "caf\\xe9-\\xff.txt" in names
    assert "red\\e[31mtext.log" in names
    assert "new\\nline.txt" in names
    assert all("\x1b" not in n and "\n" not in n for n in names)
    for hostile in HOSTILE_NAMES:
        assert paths.key(f"run-a/{hostile}") in index_rows(db)


def test_symlinks_are_recorded_not_followed(hostile_tree: Path, db: sqlite_utils.Database) -> None:
    Indexer(db, hostile_tree).scan()
    links = {
        bytes(p): (t, target)
        for p, t, target in db.execute("SELECT path, ftype, link_target FROM artifacts")
        if t == "symlink"
    }
    assert links[b"run-a/outside"] == ("symlink", "/etc")
    assert links[b"run-a/dangling.ckpt"][1] == "missing.ckpt"
    assert b"run-a/dirlink" in links
    # nothing from /etc or through the self-link made it in
    assert not any(
        p.startswith(b"run-a/outside/") or p.startswith(b"run-a/dirlink/") for p in index_rows(db)
    )


def test_warm_rescan_writes_nothing(hostile_tree: Path, db: sqlite_utils.Database) -> None:
    indexer = Indexer(db, hostile_tree)
    indexer.scan()
    indexer.hash_pending()
    before_changes = db.execute("SELECT total_changes()").fetchone()[0]
    events_before = db.execute("SELECT count(*) FROM events").fetchone()[0]
    report = indexer.scan()
    assert report.added == report.changed == report.removed == 0
    assert report.unchanged == report.files
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events_before
    # only the roots row (last_full_scan) was touched
    assert db.execute("SELECT total_changes()").fetchone()[0] - before_changes <= 1


def test_incremental_changes_converge(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    (root / "exp" / "run1").mkdir(parents=True)
    log = root / "exp" / "run1" / "train.log"
    log.write_text("epoch 1\n")
    (root / "exp" / "run1" / "old.pt").write_bytes(b"x" * 100)
    indexer = Indexer(db, root)
    indexer.scan()
    with log.open("a") as f:
        f.write("epoch 2\n")
    (root / "exp" / "run1" / "old.pt").unlink()
    (root / "exp" / "run2" / "a" / "b").mkdir(parents=True)
    (root / "exp" / "run2" / "a" / "b" / "x.bin").write_bytes(b"y")
    report = indexer.scan()
    assert (report.added, report.changed, report.removed) == (1, 1, 1)
    assert index_rows(db) == ground_truth(root)
    kinds = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    assert kinds["removed"] == 1 and kinds["changed"] == 1


def test_scan_folders_handles_new_and_vanished_subtrees(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    (root / "r" / "old" / "deep").mkdir(parents=True)
    (root / "r" / "old" / "deep" / "f.txt").write_text("1")
    (root / "r" / "keep.txt").write_text("k")
    indexer = Indexer(db, root)
    indexer.scan()
    shutil.rmtree(root / "r" / "old")
    (root / "r" / "new" / "a" / "b").mkdir(parents=True)
    (root / "r" / "new" / "a" / "b" / "g.txt").write_text("2")
    (root / "r" / "keep.txt").write_text("changed")
    report = indexer.scan_folders([b"r"])
    assert index_rows(db) == ground_truth(root)
    assert (report.added, report.changed, report.removed) == (1, 1, 1)
    dirs = {bytes(p) for (p,) in db.execute("SELECT path FROM dirs")}
    assert b"r/old" not in dirs and b"r/old/deep" not in dirs and b"r/new/a/b" in dirs


def test_scan_folders_on_a_removed_folder(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    (root / "gone" / "x").mkdir(parents=True)
    (root / "gone" / "x" / "a.txt").write_text("a")
    indexer = Indexer(db, root)
    indexer.scan()
    shutil.rmtree(root / "gone")
    indexer.scan_folders([b"gone", b"gone/x"])
    assert index_rows(db) == {}


def test_renamed_file_reuses_its_hash(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "model.pt").write_bytes(os.urandom(4096))
    old = time.time() - 60
    os.utime(root / "model.pt", (old, old))
    indexer = Indexer(db, root)
    indexer.scan()
    assert indexer.hash_pending() == 1
    digest = db.execute("SELECT hash FROM artifacts").fetchone()[0]
    (root / "model.pt").rename(root / "renamed.pt")
    indexer.scan()
    row = db.execute("SELECT hash, hash_state FROM artifacts").fetchone()
    assert row == (digest, "done")


def test_overwritten_file_keeps_its_history(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    root.mkdir()
    target = root / "last.ckpt"
    indexer = Indexer(db, root)
    hashes = []
    for version in range(3):
        target.write_bytes(f"version {version}".encode() * 100)
        old = time.time() - 60 + version
        os.utime(target, (old, old))
        indexer.scan()
        indexer.hash_pending()
        hashes.append(db.execute("SELECT hash FROM artifacts").fetchone()[0])
    history = [h for (h,) in db.execute("SELECT hash FROM artifact_history ORDER BY id")]
    assert history == hashes[:2]
    assert len(set(hashes)) == 3


def test_a_run_live_at_one_pass_is_not_live_at_a_later_quiet_one(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """'live' means written in the last two minutes: a later pass over an unchanged tree
    (``artlens index`` again, no watcher) must not keep saying it."""
    root = tmp_path / "root"
    run = root / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 1\n")
    (run / "metrics.csv").write_text("step,loss\n1,0.5\n")
    written = time.time()
    Indexer(db, root, clock=lambda: written + 5).scan()
    status = "SELECT status FROM runs"
    assert db.conn.execute(status).fetchall() == [("live",)]
    report = Indexer(db, root, clock=lambda: written + 3600).scan()
    assert report.added == report.changed == report.removed == 0
    assert db.conn.execute(status).fetchall() == [("unknown",)]


def test_recent_files_stay_pending_until_quiet(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "writing.log").write_text("still going")
    indexer = Indexer(db, root)
    indexer.scan()
    indexer.hash_pending()
    assert db.execute("SELECT hash_state FROM artifacts").fetchone()[0] == "pending"
    later = Indexer(db, root, clock=lambda: time.time() + 10)
    later.hash_pending()
    assert db.execute("SELECT hash_state FROM artifacts").fetchone()[0] == "done"


def test_a_file_dated_in_the_future_is_hashed_once_its_version_rested(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """A future mtime (a skewed NFS server, ``touch -d tomorrow``, a tar from elsewhere)
    is 'just written' for as long as the clock is behind it: quiet is proved by when the
    index recorded the version instead, and never for a version that changed since."""
    root = tmp_path / "root"
    root.mkdir()
    target = root / "model.pt"
    target.write_bytes(b"first" * 100)
    tomorrow = time.time() + 86400
    os.utime(target, (tomorrow, tomorrow))
    Indexer(db, root).scan()
    state = "SELECT hash_state FROM artifacts"
    Indexer(db, root).hash_pending()
    assert db.execute(state).fetchone()[0] == "pending"  # just recorded: not quiet yet
    target.write_bytes(b"second" * 100)  # written again, still in the future
    os.utime(target, (tomorrow + 5, tomorrow + 5))
    Indexer(db, root, clock=lambda: time.time() + 10).hash_pending()
    assert db.execute(state).fetchone()[0] == "pending"  # not the version recorded
    seen = time.time() + 20
    Indexer(db, root, clock=lambda: seen).scan()
    Indexer(db, root, clock=lambda: seen + 1).hash_pending()
    assert db.execute(state).fetchone()[0] == "pending"
    Indexer(db, root, clock=lambda: seen + 10).hash_pending()
    row = db.execute("SELECT hash_state, hash FROM artifacts").fetchone()
    assert row == ("done", hash_file(str(target)).digest)


def test_sparse_huge_file_is_not_read_beyond_the_cap(
    hostile_tree: Path, db: sqlite_utils.Database
) -> None:
    indexer = Indexer(db, hostile_tree, clock=lambda: time.time() + 10)
    indexer.scan()
    indexer.hash_pending(max_bytes=1 << 30)
    state = db.execute(
        "SELECT hash_state, size FROM artifacts WHERE path = ?", [b"run-a/sparse.bin"]
    ).fetchone()
    assert state == ("skipped", 1 << 34)


def test_vanishing_entries_mid_scan_are_counted(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.txt").write_text("x")
    (root / "b").mkdir()
    real_open = os.open

    def flaky_open(path: bytes, flags: int, *args: object, **kwargs: object) -> int:
        if isinstance(path, bytes) and path.endswith(b"/b") and flags & os.O_DIRECTORY:
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", flaky_open)
    report = Indexer(db, root).scan()
    assert report.warnings["vanished"] == 1
    assert index_rows(db) == {b"a/f.txt": 1}


def test_unreadable_folder_is_skipped_and_its_rows_are_kept() -> None:
    # pytest's tmp_path sits below a 0700 folder the unprivileged user cannot enter
    tmp_path = Path(tempfile.mkdtemp(prefix="artlens-perm-"))
    tmp_path.chmod(0o755)
    try:
        _check_unreadable_folder(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _check_unreadable_folder(tmp_path: Path) -> None:
    unprivileged = unprivileged_python()
    root = tmp_path / "root"
    (root / "open").mkdir(parents=True)
    (root / "open" / "a.txt").write_text("a")
    (root / "closed").mkdir()
    (root / "closed" / "secret.txt").write_text("s")
    db_path = tmp_path / "db" / "index.db"
    db = open_db(db_path)
    Indexer(db, root).scan()
    db.close()
    (root / "closed").chmod(0o000)
    for p in (tmp_path, root, root / "open", db_path.parent):
        p.chmod(0o777)
    for f in db_path.parent.iterdir():
        f.chmod(0o666)
    script = (
        "import json, sys; from store.index.db import open_db; from store.scan import Indexer;"
        f"r = Indexer(open_db({str(db_path)!r}), {str(root)!r}).scan();"
        "print(json.dumps(r.to_json()['warnings']))"
    )
    try:
        out = subprocess.run(
            [*unprivileged, "-c", script],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=60,
        )
    finally:
        (root / "closed").chmod(0o755)
    assert out.returncode == 0, out.stderr
    assert '"unreadable folder": 1' in out.stdout
    db = open_db(db_path, readonly=True)
    try:
        assert b"closed/secret.txt" in index_rows(db)  # unknown is not deleted
    finally:
        db.close()


def test_a_folder_that_cannot_be_looked_at_keeps_its_rows_in_a_rescan() -> None:
    """``a`` loses its search bit: a rescan of ``a/b`` (what the watcher asks) could not
    ``lstat`` the folder, took it for vanished and deleted its rows; a scan of the root
    whose own folder could not be looked at would delete every row.  Both are unknown,
    not gone: the rows stay, and the scan says why."""
    tmp_path = Path(tempfile.mkdtemp(prefix="artlens-perm-"))
    tmp_path.chmod(0o777)
    try:
        unprivileged = unprivileged_python()
        script = (
            "import json, os, sys\n"
            "from store.index.db import open_db\n"
            "from store.scan import Indexer\n"
            "base = sys.argv[1]; root = os.path.join(base, 'root')\n"
            "os.makedirs(os.path.join(root, 'a', 'b'))\n"
            "open(os.path.join(root, 'a', 'b', 'f.txt'), 'w').write('x')\n"
            "open(os.path.join(root, 'top.txt'), 'w').write('y')\n"
            "db = open_db(sys.argv[2]); ix = Indexer(db, root); ix.scan()\n"
            "rows = lambda: sorted(bytes(p).decode() for (p,) in"
            " db.conn.execute('SELECT path FROM artifacts'))\n"
            "out = {'before': rows()}\n"
            "os.chmod(os.path.join(root, 'a'), 0o600)\n"
            "out['folders'] = dict(ix.scan_folders([b'a/b']).warnings); out['after'] = rows()\n"
            "os.chmod(os.path.join(root, 'a'), 0o700); os.chmod(base, 0o600)\n"
            "whole = Indexer(db, root).scan(); os.chmod(base, 0o700)\n"
            "out['root'] = dict(whole.warnings); out['whole'] = rows()\n"
            "print(json.dumps(out))\n"
        )
        done = subprocess.run(
            [*unprivileged, "-c", script, str(tmp_path / "base"), str(tmp_path / "i.db")],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        both = ["a/b/f.txt", "top.txt"]
        assert found["before"] == both
        assert found["folders"] == {"unreadable folder": 1} and found["after"] == both
        assert found["root"] == {"unreadable folder": 1} and found["whole"] == both
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(tmp_path)], check=False)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_root_given_as_a_symlink_is_scanned(tmp_path: Path, db: sqlite_utils.Database) -> None:
    real = tmp_path / "data" / "outputs"
    (real / "run").mkdir(parents=True)
    (real / "run" / "model.pt").write_bytes(b"x")
    link = tmp_path / "outputs"
    link.symlink_to(real)
    Indexer(db, link).scan()
    assert index_rows(db) == {b"run/model.pt": 1}


def test_a_listing_cut_short_keeps_the_folders_rows(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    for i in range(5):
        (root / "run" / f"ckpt-{i}.pt").write_bytes(b"x")
    indexer = Indexer(db, root)
    indexer.scan()
    real_scandir = os.scandir

    class CutShort:
        """A listing that fails with EIO after its first entry."""

        def __init__(self, path: bytes | int) -> None:
            self.inner: Iterator[os.DirEntry[Any]] = real_scandir(path)

        def __enter__(self) -> CutShort:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()  # type: ignore[attr-defined]

        def __iter__(self) -> CutShort:
            self.first = True
            return self

        def __next__(self) -> os.DirEntry[Any]:
            if not self.first:
                raise OSError(5, "Input/output error")
            self.first = False
            return next(self.inner)

    monkeypatch.setattr(
        os,
        "scandir",
        lambda p: CutShort(p) if listed_path(p).endswith(b"/run") else real_scandir(p),
    )
    report = indexer.scan()
    assert report.warnings["I/O error"] == 1
    assert report.removed == 0
    assert len(index_rows(db)) == 5


def test_a_run_found_by_a_folder_rescan_gets_its_files(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """The watcher's path: runs are detected after the batch's files are written."""
    root = tmp_path / "root"
    first = root / "lightning_logs" / "version_0"
    first.mkdir(parents=True)
    (first / "hparams.yaml").write_text("lr: 0.1\n")
    (first / "metrics.csv").write_text("step,loss\n1,0.5\n")
    indexer = Indexer(db, root)
    indexer.scan()
    second = root / "lightning_logs" / "version_1"
    (second / "checkpoints").mkdir(parents=True)
    (second / "hparams.yaml").write_text("lr: 0.2\n")
    (second / "metrics.csv").write_text("step,loss\n1,0.4\n")
    (second / "checkpoints" / "last.ckpt").write_bytes(b"x" * 10)
    indexer.scan_folders([b"lightning_logs"])
    counts = dict(db.execute("SELECT name, n_artifacts FROM runs").fetchall())
    assert counts == {"version_0": 2, "version_1": 3}
    orphans = db.execute("SELECT count(*) FROM artifacts WHERE run_id IS NULL").fetchone()[0]
    assert orphans == 0


def test_a_dangerous_verdict_reaches_the_change_feed(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    (root / "run" / "model.pkl").write_bytes(evil)
    (root / "run" / "notes.txt").write_text("fine")
    indexer = Indexer(db, root, clock=lambda: time.time() + 10)
    indexer.scan()
    before = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    indexer.hash_pending()
    news = db.execute("SELECT kind, path FROM events WHERE id > ?", [before]).fetchall()
    assert news == [("verdict", b"run/model.pkl")]
    assert not (root / "true").exists()


def test_runs_read_ahead_match_runs_read_in_the_scan(tmp_path: Path) -> None:
    """``artlens index`` reads the runs' files on a helper thread while rows are written
    (a cold load past BULK_ROWS): the runs come out as a scan that reads them itself."""
    from store.scan import BULK_ROWS

    root = tmp_path / "root"
    for r in range(4):
        run = root / "lightning_logs" / f"version_{r}"
        (run / "checkpoints").mkdir(parents=True)
        (run / "hparams.yaml").write_text(f"lr: 0.{r + 1}\nseed: {r}\n")
        (run / "metrics.csv").write_text(f"epoch,step,loss\n0,1,0.{r + 5}\n1,2,0.{r + 3}\n")
        (run / "checkpoints" / "epoch=1.ckpt").write_bytes(b"x")
    (root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt").symlink_to("gone.ckpt")
    bulk = root / "lightning_logs" / "version_1" / "samples"
    bulk.mkdir()
    for i in range(BULK_ROWS + 10):
        (bulk / f"s{i}.png").write_bytes(b"")

    def runs_of(db_path: Path, *, ahead: bool) -> list[tuple[object, ...]]:
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root, clock=lambda: 1000.0)
            indexer.scan(defer_summaries=ahead, read_ahead=ahead)
            if ahead:
                indexer.fill_summaries()
            return db.conn.execute(
                "SELECT path, name, status, params, metrics, meta, size_bytes, n_artifacts"
                " FROM runs ORDER BY path"
            ).fetchall()
        finally:
            db.close()

    plain = runs_of(tmp_path / "a.db", ahead=False)
    ahead = runs_of(tmp_path / "b.db", ahead=True)
    assert len(plain) == 4
    assert ahead == plain
    assert '"lr": 0.2' in str(ahead[1][3]) and "last.ckpt" in str(ahead[0][5])


def test_a_rescan_reads_ahead_only_the_runs_it_will_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``artlens index`` reads the runs' files ahead on a thread, for the summaries it
    refreshes.  Again over an unchanged root it reads none (it read every run's, in vain,
    and kept the process from ending at once); after one changed metrics.csv it reads that
    run alone (it read them all, and the refresh waited for every one), and the run's
    metrics are the new ones."""
    from store.runs import RunSync

    root = tmp_path / "root"
    for r in range(3):
        run = root / "lightning_logs" / f"version_{r}"
        run.mkdir(parents=True)
        (run / "hparams.yaml").write_text(f"lr: 0.{r + 1}\n")
        (run / "metrics.csv").write_text(f"epoch,step,loss\n0,1,0.{r + 5}\n")
    read: list[list[bytes]] = []
    read_ahead = RunSync.read_ahead

    def recorded(self: RunSync, *, keys: list[bytes] | None = None, workers: int = 1) -> None:
        read.append(sorted(self._specs) if keys is None else sorted(keys))
        read_ahead(self, keys=keys, workers=workers)

    monkeypatch.setattr(RunSync, "read_ahead", recorded)
    db = open_db(tmp_path / "index.db")
    try:
        Indexer(db, root).scan()
        for _ in range(2):
            indexer = Indexer(db, root)
            indexer.scan(defer_summaries=True, read_ahead=True)
            indexer.fill_summaries()
        assert read == []
        (root / "lightning_logs" / "version_1" / "metrics.csv").write_text(
            "epoch,step,loss\n0,1,0.5\n1,2,0.125\n"
        )
        indexer = Indexer(db, root)
        report = indexer.scan(defer_summaries=True, read_ahead=True)
        assert indexer.fill_summaries() == 1
        assert report.changed == 1 and read == [[b"lightning_logs/version_1"]]
        (metrics,) = db.conn.execute(
            "SELECT metrics FROM runs WHERE path = ?", (b"lightning_logs/version_1",)
        ).fetchone()
        assert "0.125" in metrics
    finally:
        db.close()


def test_a_file_changed_while_its_batch_was_hashed_keeps_waiting(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """Between hashing's read of a row and its write, the watcher indexed a new version
    of the file (and the file went back to the bytes and mtime hashed): the row keeps its
    new size and stays pending, and nothing is cached for it."""
    root = tmp_path / "root"
    root.mkdir()
    small, target = root / "a.bin", root / "b.bin"
    small.write_bytes(b"a" * 10)
    target.write_bytes(b"b" * 20)
    old_ns = time.time_ns() - 60 * 10**9
    for path in (small, target):
        os.utime(path, ns=(old_ns, old_ns))
    indexer = Indexer(db, root)
    indexer.scan()
    hashed = os.stat(target)
    watcher_db = open_db(tmp_path / "index.db")
    calls = []

    def meanwhile() -> bool:
        calls.append(1)
        if len(calls) == 2:  # a.bin is settled, b.bin read but not hashed yet
            target.write_bytes(b"c" * 30)
            os.utime(target, ns=(old_ns + 10**9, old_ns + 10**9))
            Indexer(watcher_db, root).scan_folders([b""])
            target.write_bytes(b"b" * 20)
            os.utime(target, ns=(hashed.st_atime_ns, hashed.st_mtime_ns))
        return False

    try:
        assert indexer.hash_pending(batch=1, should_stop=meanwhile) == 2
    finally:
        watcher_db.close()
    assert len(calls) == 2
    rows = {
        bytes(p): (size, state, digest)
        for p, size, state, digest in db.execute(
            "SELECT path, size, hash_state, hash FROM artifacts"
        )
    }
    assert rows[b"b.bin"] == (30, "pending", None)
    assert rows[b"a.bin"][:2] == (10, "done")
    cached = {size for (size,) in db.execute("SELECT size FROM hash_cache")}
    assert cached == {10}


def test_pending_files_are_read_a_window_at_a_time_and_hashed_a_batch_at_a_time(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store import scan

    monkeypatch.setattr(scan, "HASH_WINDOW", 3)
    root = tmp_path / "root"
    root.mkdir()
    old = time.time() - 60
    for size in range(1, 8):
        (root / f"f{size}.bin").write_bytes(b"x" * size)
        os.utime(root / f"f{size}.bin", (old, old))
    indexer = Indexer(db, root)
    indexer.scan()
    seen: list[int] = []
    assert indexer.hash_pending(batch=2, progress=lambda done, _total: seen.append(done)) == 7
    assert seen == [2, 3, 5, 6, 7]
    assert {s for (s,) in db.execute("SELECT DISTINCT hash_state FROM artifacts")} == {"done"}


def listed_path(path: bytes | int) -> bytes:
    """The folder ``os.scandir`` was given: a path, or a descriptor (the walk lists each
    folder through one)."""
    return path if isinstance(path, bytes) else os.fsencode(os.readlink(f"/proc/self/fd/{path}"))


def deny_listing(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """``os.scandir`` refuses ``folders`` as it does a user without read permission on
    them (tests run as root, who reads everything)."""
    real_scandir = os.scandir
    denied = {os.fsencode(f) for f in folders}

    def scandir(path: bytes | int) -> object:
        if listed_path(path) in denied:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def unreadable_rows(db: sqlite_utils.Database) -> list[tuple[bytes, str, str]]:
    return [
        (bytes(p), k, r)
        for p, k, r in db.execute("SELECT path, kind, reason FROM unreadable ORDER BY path")
    ]


def run_tree(root: Path) -> Path:
    """A generic run whose ``out`` folder holds its requirements and model."""
    run = root / "runD"
    (run / "out").mkdir(parents=True)
    (run / "out" / "requirements.txt").write_text("torch\n")
    (run / "out" / "model.ckpt").write_bytes(b"x")
    (run / "config.yaml").write_text("lr: 1\n")
    (run / "metrics.csv").write_text("step,loss\n0,1\n")
    return run


def run_warnings(db: sqlite_utils.Database) -> list[str]:
    (text,) = db.execute("SELECT json_extract(meta, '$.warnings') FROM runs").fetchone()
    return list(json.loads(text or "[]"))


def test_an_unreadable_folder_is_recorded_until_a_scan_reads_it(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_tree(tmp_path / "root")
    indexer = Indexer(db, tmp_path / "root")
    with monkeypatch.context() as denied:
        deny_listing(denied, run / "out")
        indexer.scan()
    assert unreadable_rows(db) == [(b"runD/out", "folder", "permission denied")]
    assert run_warnings(db) == [
        "folder out could not be read (permission denied): size_bytes and n_artifacts"
        " count what it holds as last seen, or not at all"
    ]
    indexer.scan()
    assert unreadable_rows(db) == []
    assert run_warnings(db) == []
    assert b"runD/out/model.ckpt" in index_rows(db)


def test_every_scan_path_keeps_the_unreadable_record_current(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_tree(tmp_path / "root")
    indexer = Indexer(db, tmp_path / "root")
    indexer.scan()
    out = [(b"runD/out", "folder", "permission denied")]
    with monkeypatch.context() as denied:
        deny_listing(denied, run / "out")
        indexer.scan("runD")  # a subtree scan
        assert unreadable_rows(db) == out
        indexer.scan_folders(["runD"])  # the watcher: lists runD, does not enter out
        assert unreadable_rows(db) == out
        indexer.scan_folders(["runD/out"])  # enters it, refused again
        assert unreadable_rows(db) == out
        assert any("folder out could not be read" in w for w in run_warnings(db))
    indexer.scan_folders(["runD/out"])
    assert unreadable_rows(db) == []
    assert run_warnings(db) == []
    with monkeypatch.context() as denied:
        deny_listing(denied, run / "out")
        indexer.scan_folders(["runD/out"])
    assert unreadable_rows(db) == out
    shutil.rmtree(run / "out")
    indexer.scan_folders(["runD"])  # gone: nothing left to read
    assert unreadable_rows(db) == []
    assert run_warnings(db) == []


def test_a_first_scan_in_pieces_records_what_it_could_not_read(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store.progressive import first_scan

    root = tmp_path / "root"
    run = run_tree(root)
    for i in range(20):
        (root / f"other{i}").mkdir()
        (root / f"other{i}" / "f.txt").write_text("x")
    deny_listing(monkeypatch, run / "out", root / "other3")
    first_scan(Indexer(db, root), budget=60.0)
    assert unreadable_rows(db) == [
        (b"other3", "folder", "permission denied"),
        (b"runD/out", "folder", "permission denied"),
    ]
    assert any("folder out could not be read" in w for w in run_warnings(db))


def test_an_entry_that_cannot_be_examined_is_kept_and_recorded() -> None:
    """As an unprivileged user: a folder it may list but not search (r--) names entries
    it cannot stat; their rows stay, and the index says they could not be examined."""
    tmp_path = Path(tempfile.mkdtemp(prefix="artlens-perm-"))
    tmp_path.chmod(0o755)
    try:
        _check_unexaminable_entry(tmp_path)
    finally:
        for folder in (tmp_path / "root" / "closed", tmp_path / "root" / "listed"):
            if folder.exists():
                folder.chmod(0o755)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _check_unexaminable_entry(tmp_path: Path) -> None:
    unprivileged = unprivileged_python()
    root = tmp_path / "root"
    for folder in ("open", "closed", "listed"):
        (root / folder).mkdir(parents=True)
        (root / folder / "a.txt").write_text("a")
    db_path = tmp_path / "db" / "index.db"
    db = open_db(db_path)
    Indexer(db, root).scan()
    db.close()
    (root / "closed").chmod(0o000)
    (root / "listed").chmod(0o644)  # names readable, entries not
    for p in (tmp_path, root, root / "open", db_path.parent):
        p.chmod(0o777)
    for f in db_path.parent.iterdir():
        f.chmod(0o666)
    script = (
        "from store.index.db import open_db; from store.scan import Indexer;"
        f"Indexer(open_db({str(db_path)!r}), {str(root)!r}).scan()"
    )
    out = subprocess.run(
        [*unprivileged, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    db = open_db(db_path, readonly=True)
    try:
        assert unreadable_rows(db) == [
            (b"closed", "folder", "permission denied"),
            (b"listed/a.txt", "entry", "permission denied"),
        ]
        assert {b"closed/a.txt", b"listed/a.txt", b"open/a.txt"} <= set(index_rows(db))
    finally:
        db.close()


def _lightning_run(root: Path, version: int, checkpoints: int = 1) -> None:
    run = root / "lightning_logs" / f"version_{version}"
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    for i in range(checkpoints):
        (run / "checkpoints" / f"epoch={i}.ckpt").write_bytes(b"x" * 100)


def test_a_write_that_rolls_back_leaves_the_runs_to_the_next(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """A full disk fails the transaction that drops a run and adds another: the scan after
    it must still drop and add them, and later writes must not fail on the runs' paths."""
    root = tmp_path / "root"
    for version in range(3):
        _lightning_run(root, version)
    indexer = Indexer(db, root)
    indexer.scan()
    shutil.rmtree(root / "lightning_logs" / "version_0")
    _lightning_run(root, 3, checkpoints=300)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    with pytest.raises(sqlite3.OperationalError, match="full"):
        indexer.scan()
    db.execute("PRAGMA max_page_count = 1073741823")
    indexer.scan()
    runs = {
        bytes(p): (n, s) for p, n, s in db.execute("SELECT path, n_artifacts, size_bytes FROM runs")
    }
    assert set(runs) == {
        b"lightning_logs/version_1",
        b"lightning_logs/version_2",
        b"lightning_logs/version_3",
    }
    assert runs[b"lightning_logs/version_3"][0] == 302
    orphans = "SELECT count(*) FROM artifacts WHERE run_id NOT IN (SELECT id FROM runs)"
    assert db.execute(orphans).fetchone()[0] == 0
    (root / "lightning_logs" / "version_1" / "metrics.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    indexer.scan_folders([b"lightning_logs/version_1"])
    assert index_rows(db) == ground_truth(root)


@pytest.mark.parametrize("how", ["scan", "scan_folders"])
def test_a_subtree_whose_parent_became_a_link_is_not_walked_through_it(
    tmp_path: Path, db: sqlite_utils.Database, how: str
) -> None:
    """A rescan of ``run/a/b`` (the watcher's retry of a place once unreadable, an event
    under it) after ``run/a`` was replaced by a link to a folder outside the root indexed
    that folder's files as the root's own (``run/a/b/secret.txt``)."""
    root = tmp_path / "root"
    (root / "run" / "a" / "b").mkdir(parents=True)
    (root / "run" / "a" / "b" / "f.txt").write_text("1")
    outside = tmp_path / "outside"
    (outside / "b").mkdir(parents=True)
    (outside / "b" / "secret.txt").write_text("not the root's")
    indexer = Indexer(db, root)
    indexer.scan()
    shutil.rmtree(root / "run" / "a")
    (root / "run" / "a").symlink_to(outside)
    if how == "scan":
        indexer.scan(b"run/a/b")
    else:
        indexer.scan_folders([b"run/a/b"])
    assert b"run/a/b/secret.txt" not in index_rows(db)
    assert index_rows(db) == ground_truth(root)


def runs_and_owners(
    db: sqlite_utils.Database,
) -> tuple[set[tuple[bytes, str, int]], dict[bytes, bytes | None]]:
    """Every run (path, framework, files) and the run path each file belongs to."""
    runs = {
        (bytes(p), f, n) for p, f, n in db.execute("SELECT path, framework, n_artifacts FROM runs")
    }
    owners = {
        bytes(p): None if r is None else bytes(r)
        for p, r in db.execute(
            "SELECT a.path, r.path FROM artifacts a LEFT JOIN runs r ON r.id = a.run_id"
        )
    }
    return runs, owners


def fresh_runs(
    root: Path, where: Path
) -> tuple[set[tuple[bytes, str, int]], dict[bytes, bytes | None]]:
    """What a fresh index of ``root`` says of its runs."""
    fresh = open_db(where)
    try:
        Indexer(fresh, root).scan()
        return runs_and_owners(fresh)
    finally:
        fresh.close()


@pytest.mark.parametrize("how", ["scan", "scan_folders"])
def test_a_first_artifact_in_a_folder_makes_it_a_run_and_its_last_unmakes_it(
    tmp_path: Path, db: sqlite_utils.Database, how: str
) -> None:
    """A generic run is a top folder holding an artifact-looking file (model.pt,
    config.yaml): no marker file.  A folder made first and given its model later (the way
    training writes) became a run in a fresh index only: a rescan, or the watcher's
    folder rescan, kept the runs it had, since no marker came or went.  So did taking the
    last artifact away (renamed to .txt)."""
    root = tmp_path / "root"
    (root / "exp").mkdir(parents=True)
    (root / "exp" / "notes.txt").write_text("started\n")
    indexer = Indexer(db, root)
    indexer.scan()
    assert runs_and_owners(db)[0] == set()

    def rescan() -> None:
        if how == "scan":
            indexer.scan()
        else:
            indexer.scan_folders([b"exp"])

    (root / "exp" / "model.pt").write_bytes(b"w" * 10)
    rescan()
    assert runs_and_owners(db) == fresh_runs(root, tmp_path / "fresh1.db")
    assert runs_and_owners(db)[0] == {(b"exp", "generic", 2)}
    os.rename(root / "exp" / "model.pt", root / "exp" / "model.txt")
    rescan()
    assert runs_and_owners(db) == fresh_runs(root, tmp_path / "fresh2.db")
    assert runs_and_owners(db)[0] == set()


@pytest.mark.parametrize("how", ["scan", "scan_folders"])
def test_a_root_that_is_away_keeps_its_rows(
    tmp_path: Path, db: sqlite_utils.Database, how: str
) -> None:
    """A root whose parent was renamed (or that was unmounted, or renamed and put back)
    is away for a while: every folder of it reads as deleted.  A scan then says so and
    writes nothing; it emptied the index, and nothing brought the rows back."""
    parent = tmp_path / "team"
    root = parent / "root"
    (root / "run1" / "checkpoints").mkdir(parents=True)
    (root / "run1" / "checkpoints" / "epoch=0.ckpt").write_bytes(b"w" * 9)
    (root / "top.txt").write_text("top")
    indexer = Indexer(db, root)
    indexer.scan()
    before = index_rows(db)
    assert before == ground_truth(root)
    parent.rename(tmp_path / "team2")
    with pytest.raises(RootGoneError, match="missing or was replaced"):
        if how == "scan":
            indexer.scan()
        else:
            indexer.scan_folders([b"", b"run1", b"run1/checkpoints"])
    assert index_rows(db) == before
    (tmp_path / "team2").rename(parent)
    indexer.scan()
    assert index_rows(db) == ground_truth(root) == before
