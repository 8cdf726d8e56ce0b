"""Filesystem changes relative to directory fds: never through a symlink, never above a root.

A path string is resolved by the kernel when it is used, so checking a path and then acting
on it is a race (a symlink swapped in between).  Everything here opens folders one
component at a time with ``O_DIRECTORY | O_NOFOLLOW`` from a folder fd the caller holds,
and acts with ``dir_fd=``: whatever an attacker swaps in, the operation stays below that fd.
Trees are removed and copied by fd, never following links and never leaving the device
they started on.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Iterator

import xxhash

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 1 << 20
MAX_DEPTH = 256
"""Folders nested deeper than this are not walked (each level holds one fd)."""


class UnsafePath(ValueError):
    """A path string that is not a clean relative path (``..``, absolute, empty parts)."""


def parts_of(rel: str) -> list[str]:
    """The components of a clean relative path; ``UnsafePath`` for anything else."""
    if not isinstance(rel, str) or not rel or len(rel) > 4096:
        raise UnsafePath("not a relative path")
    if rel.startswith("/") or "\0" in rel:
        raise UnsafePath("an absolute path" if rel.startswith("/") else "a NUL byte in the path")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePath("not a normalised relative path (empty, '.' or '..' part)")
    return parts


def open_root(path: str) -> int:
    """An fd on the root folder itself (its last component must not be a symlink)."""
    return os.open(path, O_DIR)


def open_dir(dir_fd: int, parts: list[str], *, create: bool = False) -> int:
    """An fd on ``dir_fd/parts...``, opened component by component, never following a link.

    ``create`` makes missing folders.  ELOOP or ENOTDIR means a component is a symlink or
    not a folder.  The caller closes the returned fd.
    """
    current = os.dup(dir_fd)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise OSError(errno.EINVAL, f"unsafe path component {part!r}")
            try:
                nxt = os.open(part, O_DIR, dir_fd=current)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=current)
                nxt = os.open(part, O_DIR, dir_fd=current)
            os.close(current)
            current = nxt
    except BaseException:
        os.close(current)
        raise
    return current


@contextlib.contextmanager
def opened_dir(dir_fd: int, parts: list[str], *, create: bool = False) -> Iterator[int]:
    fd = open_dir(dir_fd, parts, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def exists_at(dir_fd: int, name: str) -> bool:
    try:
        lstat_at(dir_fd, name)
    except FileNotFoundError:
        return False
    return True


RENAME_NOREPLACE = 1
"""``renameat2`` flag: fail with EEXIST instead of replacing what the target name holds."""


def _load_renameat2() -> object | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not glibc 2.28+, or not Linux
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _load_renameat2()


def rename_noreplace(src_dir: int, name: str, dst_dir: int, dst_name: str) -> None:
    """Rename between folder fds, refusing (``FileExistsError``) to replace anything.

    ``os.rename`` silently replaces a file that appeared at the target after it was checked;
    ``renameat2(RENAME_NOREPLACE)`` makes the check and the move one step.  Where the kernel
    or filesystem lacks it, the target is checked just before an ordinary rename.
    """
    if _RENAMEAT2 is not None:
        done = _RENAMEAT2(  # type: ignore[operator]
            src_dir, os.fsencode(name), dst_dir, os.fsencode(dst_name), RENAME_NOREPLACE
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), dst_name)
    if exists_at(dst_dir, dst_name):
        raise FileExistsError(errno.EEXIST, "something already occupies the target", dst_name)
    os.rename(name, dst_name, src_dir_fd=src_dir, dst_dir_fd=dst_dir)


def walk_at(dir_fd: int, prefix: str, *, limit: int = 10_000_000) -> dict[str, os.stat_result]:
    """Every file and link below the folder ``dir_fd`` by ``prefix/relative`` path, by fd.

    Pending folders are kept as names and reopened from ``dir_fd`` one component at a
    time, so a folder with many subfolders never holds many fds.
    """
    found: dict[str, os.stat_result] = {}
    stack: list[list[str]] = [[]]
    while stack:
        parts = stack.pop()
        if len(parts) > MAX_DEPTH:
            raise OSError(errno.ELOOP, "folders nested too deep to walk")
        rel_folder = "/".join([prefix, *parts] if prefix else parts)
        with opened_dir(dir_fd, parts) as fd, os.scandir(fd) as it:
            for entry in it:
                rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append([*parts, entry.name])
                else:
                    found[rel] = st
                    if len(found) > limit:
                        raise OSError(errno.EFBIG, "too many files to walk")
    return found


def remove_at(dir_fd: int, name: str) -> None:
    """Delete ``name`` in ``dir_fd`` (file, link or whole folder) without following links.

    A folder is walked by fd and never left for another device or mount (a bind mount of
    a folder outside is not emptied); a read-only folder inside it is made writable for
    its owner first.  Absent is fine.
    """
    try:
        st = lstat_at(dir_fd, name)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = os.open(name, O_DIR, dir_fd=dir_fd)
    try:
        top_st = os.fstat(top)
        if (top_st.st_dev, top_st.st_ino) != (st.st_dev, st.st_ino):
            raise OSError(errno.EAGAIN, f"{name!r} changed while being removed")
        mount = mount_id(dir_fd)
        _same_mount(top, mount, name)
        _empty_tree(top, st.st_dev, mount)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)


def mount_id(fd: int) -> int | None:
    """The id of the mount ``fd`` was opened on (Linux ``/proc/self/fdinfo``), or None
    where that cannot be read.  A bind mount of the same filesystem has the same
    ``st_dev``: only this tells that a folder is another place mounted here."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as info:
            for line in info.read(4096).splitlines():
                if line.startswith(b"mnt_id:"):
                    return int(line.split(b":", 1)[1])
    except (OSError, ValueError):
        return None
    return None


def _same_mount(fd: int, mount: int | None, name: str) -> None:
    """Raise ``EXDEV`` when the folder ``fd`` is on another mount than ``mount``."""
    if mount is not None and mount_id(fd) not in (mount, None):
        raise OSError(errno.EXDEV, f"{name!r} is another mount (a bind mount?): not entered")


def _empty_tree(top: int, dev: int, mount: int | None = None) -> None:
    """Remove everything inside the folder ``top`` (iteratively: deep trees are fine),
    never entering another filesystem or mount (``mount``: the mount id of ``top``)."""
    stack: list[tuple[int, str]] = [(top, "")]
    try:
        while stack:
            fd, _ = stack[-1]
            child: tuple[int, str] | None = None
            with os.scandir(fd) as it:
                for entry in it:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        if st.st_dev != dev:
                            raise OSError(errno.EXDEV, f"{entry.name!r} is another filesystem")
                        if len(stack) >= MAX_DEPTH:
                            raise OSError(errno.ELOOP, "folders nested too deep to remove")
                        child = (os.open(entry.name, O_DIR, dir_fd=fd), entry.name)
                        if os.fstat(child[0]).st_ino != st.st_ino:
                            os.close(child[0])
                            raise OSError(errno.EAGAIN, f"{entry.name!r} changed while removed")
                        try:
                            _same_mount(child[0], mount, entry.name)
                        except OSError:
                            os.close(child[0])
                            raise
                        break
                    _unlink_writable(fd, entry.name)
            if child is not None:
                stack.append(child)
                continue
            fd, done_name = stack.pop()
            if not stack:
                break  # the top folder: the caller owns its fd and removes it
            parent = stack[-1][0]
            try:
                os.rmdir(done_name, dir_fd=parent)
            except PermissionError:
                _make_writable(parent)
                os.rmdir(done_name, dir_fd=parent)
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack[1:]:
            os.close(fd)


def _unlink_writable(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except PermissionError:
        _make_writable(dir_fd)
        os.unlink(name, dir_fd=dir_fd)


def _make_writable(dir_fd: int) -> None:
    mode = stat.S_IMODE(os.fstat(dir_fd).st_mode)
    os.fchmod(dir_fd, mode | stat.S_IRWXU)


def rmdir_empty_below(dir_fd: int) -> None:
    """Remove the empty folders below ``dir_fd`` (bottom-up, by fd, links never followed)."""
    with os.scandir(dir_fd) as it:
        folders = [e.name for e in it if e.is_dir(follow_symlinks=False)]
    for name in folders:
        try:
            with opened_dir(dir_fd, [name]) as sub:
                rmdir_empty_below(sub)
            os.rmdir(name, dir_fd=dir_fd)
        except OSError:
            continue


def copy_at(src_dir: int, name: str, dst_dir: int, dst_name: str, *, depth: int = 0) -> None:
    """Copy a file, link or folder by fds (links copied as links), fsynced."""
    if depth > MAX_DEPTH:
        raise OSError(errno.ELOOP, "folders nested too deep to copy")
    st = lstat_at(src_dir, name)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), dst_name, dir_fd=dst_dir)
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src_dir, name, dst_dir, dst_name, st)
    elif stat.S_ISDIR(st.st_mode):
        os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
        with opened_dir(src_dir, [name]) as src, opened_dir(dst_dir, [dst_name]) as dst:
            with os.scandir(src) as it:
                names = [e.name for e in it]
            for child in names:
                copy_at(src, child, dst, child, depth=depth + 1)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
    else:
        raise OSError(errno.EINVAL, f"{name!r} is not a file, link or folder")


def _copy_file(src_dir: int, name: str, dst_dir: int, dst_name: str, st: os.stat_result) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=src_dir)
    try:
        opened = os.fstat(src)
        if not stat.S_ISREG(opened.st_mode) or opened.st_ino != st.st_ino:
            raise OSError(errno.EAGAIN, f"{name!r} changed while being copied")
        dst = os.open(
            dst_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dst_dir,
        )
        try:
            remaining = os.fstat(src).st_size
            while remaining > 0:
                chunk = os.read(src, min(CHUNK, remaining))
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view) :]
                remaining -= len(chunk)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def digest_at(dir_fd: int, name: str, *, depth: int = 0) -> str:
    """xxh3-128 of a regular file, a link's target text, or a folder's names and contents."""
    if depth > MAX_DEPTH:
        raise OSError(errno.ELOOP, "folders nested too deep to compare")
    st = lstat_at(dir_fd, name)
    if stat.S_ISLNK(st.st_mode):
        return "link:" + xxhash.xxh3_128_hexdigest(os.fsencode(os.readlink(name, dir_fd=dir_fd)))
    if stat.S_ISDIR(st.st_mode):
        hasher = xxhash.xxh3_128()
        with opened_dir(dir_fd, [name]) as sub:
            with os.scandir(sub) as it:
                names = sorted(e.name for e in it)
            for child in names:
                digest = digest_at(sub, child, depth=depth + 1)
                hasher.update(os.fsencode(child) + b"\0" + digest.encode() + b"\0")
        return "dir:" + hasher.hexdigest()
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"{name!r} is not a file, link or folder")
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        hasher = xxhash.xxh3_128()
        remaining = os.fstat(fd).st_size
        while remaining > 0:
            chunk = os.read(fd, min(CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
        return "file:" + hasher.hexdigest()
    finally:
        os.close(fd)


def remove_path(path: str) -> None:
    """Delete ``path`` (file, link or folder) by fd from its parent; the parent is trusted,
    nothing below it is followed.  Absent is fine."""
    parent, name = os.path.split(os.path.abspath(path))
    if not name:
        raise OSError(errno.EINVAL, "cannot remove a filesystem root")
    fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_at(fd, name)
    finally:
        os.close(fd)
