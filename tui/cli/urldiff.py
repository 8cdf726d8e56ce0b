"""``artlens diff`` where a side is a bucket URL: two objects, an object and a local file,
or two run prefixes, shown exactly as the local diff of the same files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from store import paths
from store.errors import ArtlensError

if TYPE_CHECKING:
    from store.diff import FileRef
    from store.root.objstore import ObjectRoot

Prefix = tuple["ObjectRoot", str]
"""A prefix of a bucket as ``(root, rel)``: the root two folders up (run detection names
the experiment after the folders around a run, as in a local index), ``rel`` "" for a
whole bucket."""


def _url_side(url: str) -> tuple[FileRef | None, Prefix | None]:
    """``(file, None)`` for an object, ``(None, prefix)`` for a prefix (a run, maybe):
    one HEAD, then one listing where the HEAD finds no object."""
    from store.root import open_root
    from store.root.objstore import ObjectRoot, key_to_rel, parse_url

    scheme, bucket, prefix = parse_url(url)
    parent, _, last = prefix.rpartition("/")
    folder = open_root(f"{scheme}://{bucket}/{parent}" if parent else f"{scheme}://{bucket}")
    if not isinstance(folder, ObjectRoot):
        raise ArtlensError(f"not an object-store root: {paths.display(url)}")
    if not prefix:
        return None, (folder, "")
    rel = key_to_rel(last)
    entry = folder.stat(rel)  # a HEAD, then a listing when no object has that key
    if entry.kind == "file" and not url.endswith("/"):
        return (folder, rel), None
    if not parent:
        return None, (folder, rel)
    above, _, name = parent.rpartition("/")
    top = open_root(f"{scheme}://{bucket}/{above}" if above else f"{scheme}://{bucket}")
    assert isinstance(top, ObjectRoot)
    return None, (top, f"{key_to_rel(name)}/{rel}")


def _side(target: str) -> tuple[FileRef | None, Prefix | None]:
    from store.root import is_url
    from tui.cli.diff import _regular_file

    if is_url(target):
        return _url_side(target)
    return _regular_file(target), None


def diff_urls(a: str, b: str, context: int, as_json: bool, max_fetch: int | None) -> int:
    """The exit status of ``artlens diff A B`` when A or B is a bucket URL."""
    from tui.cli.diff import _diff_files, print_run_diff

    file_a, prefix_a = _side(a)
    file_b, prefix_b = _side(b)
    if file_a is not None and file_b is not None:
        return _diff_files(file_a, file_b, a, b, context, as_json, max_fetch)
    if (file_a is None) != (file_b is None):
        single = a if file_a is not None else b
        raise ArtlensError(
            f"{paths.display(single)!r} is a file but the other is not: give two files or two runs"
        )
    if prefix_a is None or prefix_b is None:
        raise ArtlensError(
            "a run in a bucket is compared with another run in a bucket: give two "
            "s3:// prefixes (or index both and compare them by name or id)"
        )
    from store.objrundiff import diff_bucket_runs

    warnings: list[str] = []
    run_a, run_b, result = diff_bucket_runs(prefix_a, prefix_b, warnings)
    return print_run_diff(run_a, run_b, result, warnings, as_json)
