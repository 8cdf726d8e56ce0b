"""Roots by path or URL: ``open_root`` picks the implementation from the scheme.

Object-store roots import their SDKs only when used, so a local-only install (no extras)
never pays for them and gets a one-line error naming the extra to install.
"""

from __future__ import annotations

from store.root.base import (
    ChangedError,
    Entry,
    EntryKind,
    NotAFile,
    NotFound,
    Reader,
    Root,
    RootError,
    TooManyEntries,
    UnsafeRelPath,
    check_rel,
    join,
)

__all__ = [
    "OBJECT_SCHEMES",
    "ChangedError",
    "Entry",
    "EntryKind",
    "NotAFile",
    "NotFound",
    "Reader",
    "Root",
    "RootError",
    "TooManyEntries",
    "UnsafeRelPath",
    "check_rel",
    "is_url",
    "join",
    "open_root",
]

OBJECT_SCHEMES = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}
"""URL scheme -> the pip extra that brings its SDK (``pip install 'artlens[s3]'``)."""


def is_url(target: str) -> bool:
    """Whether ``target`` names an object-store root rather than a local folder."""
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.lower() in OBJECT_SCHEMES


def open_root(target: str) -> Root:
    """The root for a local folder or an object-store URL."""
    if is_url(target):
        from store.root.objstore import open_object_root

        root: Root = open_object_root(target)
        return root
    from store.root.local import LocalRoot

    local: Root = LocalRoot(target)
    return local
