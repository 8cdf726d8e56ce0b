"""LocalRoot on hostile trees: nothing blocks, nothing steps out, nothing reads torn bytes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from store.root import (
    ChangedError,
    NotAFile,
    NotFound,
    Reader,
    Root,
    RootError,
    TooManyEntries,
    UnsafeRelPath,
    open_root,
)
from store.root.local import LocalRoot
from tests.conftest import descriptors_into


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"SECRET")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.txt").write_bytes(b"hello")
    (top / "blobs").mkdir()
    (top / "blobs" / "h1").write_bytes(b"blob")
    (top / "snap" / "r1").mkdir(parents=True)
    os.symlink("../../blobs/h1", top / "snap" / "r1" / "model.bin")
    os.symlink(top / "a" / "b" / "f.txt", top / "abs-inside")
    os.symlink(outside / "secret.txt", top / "abs-out")
    os.symlink("../outside/secret.txt", top / "rel-out")
    os.symlink(outside, top / "dir-out")
    os.symlink("a", top / "dir-in")
    os.symlink("loop2", top / "loop1")
    os.symlink("loop1", top / "loop2")
    os.symlink(".", top / "self")
    os.mkfifo(top / "fifo")
    return top, outside


def test_local_root_is_a_root_and_reads_regular_files(tmp_path: Path) -> None:
    top, _ = _tree(tmp_path)
    root = open_root(str(top))
    assert isinstance(root, Root) and isinstance(root, LocalRoot)
    assert (root.scheme, root.url) == ("file", str(top))
    assert root.read_capped("a/b/f.txt", 100) == (b"hello", False)
    assert root.read_capped("a/b/f.txt", 3) == (b"hel", True)
    with root.open("a/b/f.txt") as reader:
        assert isinstance(reader, Reader)
        assert reader.size == 5
        assert reader.read_at(1, 3) == b"ell"
        assert reader.read_at(3, 100) == b"lo"
        assert reader.read_at(9, 10) == b""
        st = os.stat(top / "a" / "b" / "f.txt")
        assert reader.identity == f"{st.st_dev}:{st.st_ino}:5:{st.st_mtime_ns}"


def test_links_inside_the_root_read_as_their_target(tmp_path: Path) -> None:
    top, _ = _tree(tmp_path)
    root = LocalRoot(top)
    assert root.read_capped("snap/r1/model.bin", 100) == (b"blob", False)
    assert root.read_capped("abs-inside", 100) == (b"hello", False)
    assert root.read_capped("dir-in/b/f.txt", 100) == (b"hello", False)
    assert root.read_capped("self/self/a/b/f.txt", 100) == (b"hello", False)
    assert root.stat("snap/r1/model.bin").kind == "symlink"
    assert [e.name for e in root.list_dir("dir-in")] == ["b"]
    # the root itself may be reached through a link
    os.symlink(top, tmp_path / "top-link")
    assert LocalRoot(tmp_path / "top-link").read_capped("abs-inside", 100) == (b"hello", False)


@pytest.mark.parametrize("rel", ["abs-out", "rel-out", "dir-out/secret.txt", "dir-out"])
def test_links_out_of_the_root_are_refused(tmp_path: Path, rel: str) -> None:
    top, _ = _tree(tmp_path)
    root = LocalRoot(top)
    with pytest.raises(NotAFile, match="out of the root"):
        root.open(rel)
    with pytest.raises(NotAFile):
        root.read_capped(rel, 100)
    if "/" not in rel:
        assert root.stat(rel).kind == "symlink"  # stat never follows the final link


def test_loops_fifos_folders_and_unsafe_paths_are_refused_fast(tmp_path: Path) -> None:
    top, _ = _tree(tmp_path)
    root = LocalRoot(top)
    with pytest.raises(NotAFile, match="symlinks"):
        root.open("loop1")
    with pytest.raises(NotAFile, match="symlinks"):
        root.open("self/" * 50 + "a/b/f.txt")
    with pytest.raises(NotAFile):
        root.open("fifo")  # would block forever if opened for reading without O_NONBLOCK
    assert root.stat("fifo").kind == "other"
    with pytest.raises(NotAFile):
        root.open("a")
    with pytest.raises(NotAFile):
        root.list_dir("a/b/f.txt")
    with pytest.raises(NotFound):
        root.open("a/missing.txt")
    with pytest.raises(NotFound):
        root.stat("nope/x")
    assert isinstance(NotFound("x"), FileNotFoundError)
    for bad in ("../outside/secret.txt", "a/../../x", "/etc/passwd", "a//b", "a\0b"):
        with pytest.raises(UnsafeRelPath):
            root.open(bad)


def test_listing_reports_links_as_links_and_walk_never_enters_them(tmp_path: Path) -> None:
    top, _ = _tree(tmp_path)
    root = LocalRoot(top)
    kinds = {e.name: e.kind for e in root.list_dir()}
    assert kinds["a"] == "dir" and kinds["fifo"] == "other"
    assert kinds["dir-out"] == kinds["self"] == kinds["loop1"] == "symlink"
    walked = dict(root.walk())
    assert next(iter(walked)) == ""
    assert set(walked) == {"", "a", "a/b", "blobs", "snap", "snap/r1"}
    assert [e.name for e in walked["a/b"]] == ["f.txt"]
    with pytest.raises(TooManyEntries):
        root.list_dir(limit=3)
    with pytest.raises(TooManyEntries):
        list(root.walk(limit=14))


def test_invalid_utf8_names_round_trip(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    fd = os.open(os.fsencode(top) + b"/bad\xff[red]\x1b.txt", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"data")
    os.close(fd)
    root = LocalRoot(top)
    (entry,) = root.list_dir()
    assert os.fsencode(entry.name) == b"bad\xff[red]\x1b.txt"
    assert root.read_capped(entry.name, 10) == (b"data", False)


def test_sparse_file_reports_its_disk_use_and_reads_bounded(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    with open(top / "sparse.bin", "wb") as fh:
        fh.truncate(1 << 40)
    root = LocalRoot(top)
    entry = root.stat("sparse.bin")
    assert entry.size == 1 << 40
    assert entry.disk_bytes is not None and entry.disk_bytes < 1 << 20
    assert root.read_capped("sparse.bin", 8) == (b"\0" * 8, True)
    with root.open("sparse.bin") as reader:
        assert reader.read_at((1 << 40) - 3, 1 << 30) == b"\0\0\0"


def test_a_reader_refuses_a_file_changed_under_it(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    path = top / "log.bin"
    path.write_bytes(b"x" * 1000)
    root = LocalRoot(top)
    with root.open("log.bin") as reader:
        assert reader.read_at(0, 10) == b"x" * 10
        os.truncate(path, 100)
        with pytest.raises(ChangedError):
            reader.read_at(0, 10)
    with root.open("log.bin") as reader:
        st = os.stat(path)
        path.write_bytes(b"y" * 100)  # same size, new mtime
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        with pytest.raises(ChangedError):
            reader.read_at(0, 10)
    # read_capped is a read of the file as it is now: a growing log is not an error
    assert root.read_capped("log.bin", 1000) == (b"y" * 100, False)


def test_a_file_swapped_for_a_link_between_look_and_open_never_reads_outside(
    tmp_path: Path,
) -> None:
    """Flip a name between a regular file and a link out of the root as fast as possible
    while reading it: every read gives the file's bytes or is refused, never the secret."""
    top, outside = _tree(tmp_path)
    root = LocalRoot(top)
    (top / "plain").write_bytes(b"plain")
    (top / "evil").symlink_to(outside / "secret.txt")
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            os.rename(top / "evil", top / "swap")
            os.rename(top / "plain", top / "evil")
            os.rename(top / "evil", top / "plain")
            os.rename(top / "swap", top / "evil")
            os.replace(top / "evil", top / "tmp")
            os.replace(top / "plain", top / "evil")
            os.replace(top / "evil", top / "plain")
            os.replace(top / "tmp", top / "evil")

    thread = threading.Thread(target=flip)
    thread.start()
    outcomes: set[object] = set()
    try:
        for _ in range(3000):
            for name in ("plain", "evil"):
                try:
                    outcomes.add(root.read_capped(name, 100)[0])
                except (NotAFile, NotFound) as exc:
                    outcomes.add(type(exc))
    finally:
        stop.set()
        thread.join()
    assert b"SECRET" not in outcomes
    assert b"plain" in outcomes


def test_real_path_resolves_links_inside_and_follows_a_retargeted_root(tmp_path: Path) -> None:
    top, _ = _tree(tmp_path)
    other = tmp_path / "other"
    (other / "a" / "b").mkdir(parents=True)
    (other / "a" / "b" / "f.txt").write_bytes(b"other")
    link = tmp_path / "root-link"
    link.symlink_to(top)
    root = LocalRoot(link)
    assert root.real_path("snap/r1/model.bin") == str(top / "blobs" / "h1")
    assert root.real_path("dir-in/b/f.txt") == str(top / "a" / "b" / "f.txt")
    link.unlink()
    link.symlink_to(other)
    assert root.read_capped("a/b/f.txt", 10) == (b"other", False)
    assert root.real_path("a/b/f.txt") == str(other / "a" / "b" / "f.txt")
    with pytest.raises(NotAFile):
        root.real_path("a")


def test_a_reader_stream_serves_zipfile_and_stops_at_the_pinned_size(tmp_path: Path) -> None:
    import zipfile

    from store.root.stream import buffered

    top = tmp_path / "top"
    top.mkdir()
    with zipfile.ZipFile(top / "a.zip", "w") as archive:
        archive.writestr("config.json", '{"k": 1}')
    root = LocalRoot(top)
    with buffered(root.open("a.zip")) as stream, zipfile.ZipFile(stream) as archive:
        assert archive.read("config.json") == b'{"k": 1}'
    reader = root.open("a.zip")
    stream = buffered(reader)
    stream.seek(-4, os.SEEK_END)
    assert len(stream.read(100)) == 4
    stream.close()
    with pytest.raises(RootError, match="closed"):
        reader.read_at(0, 1)


def test_list_kinds_agrees_with_list_dir(tmp_path: Path) -> None:
    top, _ = _tree(tmp_path)
    root = LocalRoot(top)
    assert root.list_kinds() == [(e.name, e.kind) for e in root.list_dir()]
    assert root.list_kinds("dir-in") == [("b", "dir")]
    with pytest.raises(TooManyEntries):
        root.list_kinds(limit=2)
    with pytest.raises(NotAFile):
        root.list_kinds("dir-out")


def test_walk_never_enters_a_folder_swapped_for_a_link_mid_walk(tmp_path: Path) -> None:
    """Between listing a folder and walking into a sub-folder, the sub-folder becomes a
    link (inside the root, or out of it): the walk neither lists the link's target as that
    folder nor stops; the folder is skipped, as one that vanished would be."""
    top, outside = _tree(tmp_path)
    (top / "z").mkdir()
    (top / "z" / "zz").mkdir()
    root = LocalRoot(top)
    walk = root.walk()
    first, _ = next(walk)
    assert first == ""
    os.rename(top / "blobs", tmp_path / "blobs-moved")
    os.symlink("a/b", top / "blobs")  # inside the root: the walk would list a/b as "blobs"
    os.rename(top / "snap", tmp_path / "snap-moved")
    os.symlink(outside, top / "snap")  # out of the root: the walk would stop on NotAFile
    os.rename(top / "z" / "zz", tmp_path / "zz-moved")
    (top / "z" / "zz").write_bytes(b"now a file")
    walked = dict(walk)
    assert "blobs" not in walked and "snap" not in walked
    assert "z/zz" not in walked and {"a", "a/b", "z"} <= set(walked)


def test_a_reader_refuses_a_rewrite_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    """A same-size rewrite in place with the mtime put back (``rsync -t --inplace``, or two
    writes within the filesystem's mtime tick) keeps dev, inode, size and mtime: the reader
    must still not hand out a mix of the old first half and the new second half."""
    top = tmp_path / "top"
    top.mkdir()
    path = top / "model.bin"
    path.write_bytes(b"a" * 100)
    root = LocalRoot(top)
    with root.open("model.bin") as reader:
        assert reader.read_at(0, 50) == b"a" * 50
        st = os.stat(path)
        with open(path, "r+b") as out:
            out.write(b"b" * 100)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(path).st_mtime_ns == st.st_mtime_ns
        with pytest.raises(ChangedError):
            reader.read_at(50, 50)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_call_leaks_a_descriptor_even_while_a_folder_on_the_way_flips(
    tmp_path: Path,
) -> None:
    """Thousands of calls, most of them failing (loops, FIFOs, links out, missing names,
    a file changed under its reader), while a thread swaps a folder on the path for a link
    out of the root and back: no descriptor is left open and nothing outside is read."""
    top, outside = _tree(tmp_path)
    (outside / "b").mkdir()
    (outside / "b" / "f.txt").write_bytes(b"SECRET")
    (top / "grow.bin").write_bytes(b"g" * 100)
    root = LocalRoot(top)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            os.rename(top / "a", top / "a-real")
            os.symlink(outside, top / "a")
            os.unlink(top / "a")
            os.rename(top / "a-real", top / "a")

    calls: list[Callable[[], object]] = [
        lambda: root.read_capped("a/b/f.txt", 100),
        lambda: root.open("a/b/f.txt").close(),
        lambda: root.stat("a/b/f.txt"),
        lambda: root.list_dir("a/b"),
        lambda: root.list_kinds("a"),
        lambda: list(root.walk()),
        lambda: root.real_path("a/b/f.txt"),
        lambda: root.open("loop1"),
        lambda: root.open("self/" * 30 + "fifo"),
        lambda: root.open("dir-out/secret.txt"),
        lambda: root.list_dir("abs-out"),
        lambda: root.stat("a/missing/x"),
        lambda: root.real_path("fifo"),
    ]
    before = descriptors_into(tmp_path)
    seen: set[object] = set()
    thread = threading.Thread(target=flip)
    thread.start()
    try:
        for _ in range(300):
            for call in calls:
                try:
                    seen.add(repr(call()))
                except RootError as exc:
                    seen.add(type(exc))
            with root.open("grow.bin") as reader:
                os.truncate(top / "grow.bin", 50)
                with pytest.raises(ChangedError):
                    reader.read_at(0, 10)
                os.truncate(top / "grow.bin", 100)
    finally:
        stop.set()
        thread.join()
    assert descriptors_into(tmp_path) == before
    assert not any("SECRET" in str(s) for s in seen)
    assert {NotAFile, NotFound} <= seen


def test_a_link_that_climbs_and_descends_again_is_refused_not_followed_for_ages(
    tmp_path: Path,
) -> None:
    """Each ``..`` through a link reopens the path from the root (a folder moved meanwhile
    must not lead out), so a 4 KiB target of ``../x/`` bounces at depth 60, chained through
    MAX_HOPS links, would cost millions of opens per read (40 s here): resolving one path
    has a budget of folder steps, past which it is refused like a loop."""
    top = tmp_path / "top"
    deep = top.joinpath(*["x"] * 60)
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"hi")
    os.symlink("../x/" * 800 + "f", deep / "bounce")
    root = LocalRoot(top)
    rel = "/".join(["x"] * 60)
    with pytest.raises(NotAFile, match="steps"):
        root.read_capped(f"{rel}/bounce", 10)
    with pytest.raises(NotAFile, match="steps"):
        root.open(f"{rel}/bounce")
    assert root.stat(f"{rel}/bounce").kind == "symlink"
    os.symlink("x/" * 60 + "f", top / "down")  # a long path without climbing is fine
    assert root.read_capped("down", 10) == (b"hi", False)


def test_a_root_that_is_no_folder_is_named_as_such(tmp_path: Path) -> None:
    """The root given as a file or a FIFO is refused at once as no folder, not reported as
    something that 'changed while being opened' (nothing changed)."""
    (tmp_path / "file").write_bytes(b"x")
    os.mkfifo(tmp_path / "pipe")
    for name in ("file", "pipe"):
        with pytest.raises(NotAFile, match="root is not a folder") as caught:
            LocalRoot(tmp_path / name).list_dir()
        assert "changed" not in str(caught.value)
