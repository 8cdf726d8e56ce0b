"""Folder-fd operations: removing and walking trees never follows a link out of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from store import fsops


def _tree_with_links(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep.bin").write_bytes(b"keep")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.bin").write_bytes(b"x")
    os.symlink(outside, top / "a" / "to-outside")
    os.symlink(outside / "sub" / "keep.bin", top / "a" / "b" / "file-link")
    os.symlink("nowhere", top / "dangling")
    (top / "ro").mkdir()
    (top / "ro" / "inside.bin").write_bytes(b"y")
    (top / "ro").chmod(0o500)
    return top, outside


def test_remove_at_never_follows_a_link(tmp_path: Path) -> None:
    top, outside = _tree_with_links(tmp_path)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsops.remove_at(fd, "top")
        fsops.remove_at(fd, "top")  # absent is fine
    finally:
        os.close(fd)
    assert not top.exists()
    assert (outside / "sub" / "keep.bin").read_bytes() == b"keep"


def test_walk_at_lists_links_as_links_and_many_folders_hold_few_fds(tmp_path: Path) -> None:
    top, _ = _tree_with_links(tmp_path)
    for n in range(3000):
        (top / "many" / f"d{n}").mkdir(parents=True)
    (top / "many" / "d7" / "leaf").write_bytes(b"z")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        found = fsops.walk_at(fd, "run")
    finally:
        os.close(fd)
        (top / "ro").chmod(0o700)
    assert set(found) == {
        "run/a/b/f.bin",
        "run/a/to-outside",
        "run/a/b/file-link",
        "run/dangling",
        "run/ro/inside.bin",
        "run/many/d7/leaf",
    }


def test_open_dir_refuses_a_symlinked_component(tmp_path: Path) -> None:
    top, _ = _tree_with_links(tmp_path)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            fsops.open_dir(fd, ["a", "to-outside", "sub"])
        with pytest.raises(OSError):
            fsops.open_dir(fd, [".."])
    finally:
        os.close(fd)
        (top / "ro").chmod(0o700)


@pytest.mark.parametrize("rel", ["", "/etc", "a//b", "a/./b", "../x", "a/..", "a\0b", "x/" * 3000])
def test_parts_of_refuses_unclean_paths(rel: str) -> None:
    with pytest.raises(fsops.UnsafePath):
        fsops.parts_of(rel)


def test_rename_noreplace_never_replaces_and_moves_otherwise(tmp_path: Path) -> None:
    """The check and the move are one step: a file that appeared at the target is kept."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a.ckpt").write_bytes(b"trashed")
    (dst / "a.ckpt").write_bytes(b"appeared meanwhile")
    root = fsops.open_root(str(tmp_path))
    try:
        with fsops.opened_dir(root, ["src"]) as s_fd, fsops.opened_dir(root, ["dst"]) as d_fd:
            with pytest.raises(FileExistsError):
                fsops.rename_noreplace(s_fd, "a.ckpt", d_fd, "a.ckpt")
            assert (dst / "a.ckpt").read_bytes() == b"appeared meanwhile"
            assert (src / "a.ckpt").read_bytes() == b"trashed"
            fsops.rename_noreplace(s_fd, "a.ckpt", d_fd, "b.ckpt")
    finally:
        os.close(root)
    assert not (src / "a.ckpt").exists() and (dst / "b.ckpt").read_bytes() == b"trashed"


@pytest.fixture
def bind_mount(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``outside`` bind-mounted at ``inside`` (same filesystem, same st_dev); skipped where
    this user cannot mount."""
    import shutil
    import subprocess

    outside, inside = tmp_path / "outside", tmp_path / "root" / "run" / "ckpt" / "extra"
    outside.mkdir()
    (outside / "precious.bin").write_bytes(b"keep me")
    inside.mkdir(parents=True)
    (inside.parent / "w.bin").write_bytes(b"w")
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("needs root and mount(8) for a bind mount")
    done = subprocess.run([mount, "--bind", str(outside), str(inside)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield outside, inside
    finally:
        subprocess.run(["umount", str(inside)], check=False)


def test_remove_at_never_empties_a_bind_mount_of_a_folder_outside(bind_mount) -> None:  # type: ignore[no-untyped-def]
    """A bind mount of the same filesystem has the same st_dev: a purge emptied the folder
    mounted there, outside the root."""
    outside, inside = bind_mount
    assert os.stat(outside).st_dev == os.stat(inside).st_dev
    run = inside.parent.parent
    fd = os.open(run, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match="another mount"):
            fsops.remove_at(fd, "ckpt")
        # the mount named itself
        with pytest.raises(OSError, match="another mount"), fsops.opened_dir(fd, ["ckpt"]) as ckpt:
            fsops.remove_at(ckpt, "extra")
    finally:
        os.close(fd)
    assert (outside / "precious.bin").read_bytes() == b"keep me"
