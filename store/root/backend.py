"""The seam between ``ObjectRoot`` and one object store's API (S3, GCS, Azure).

``ObjectRoot`` turns keys into root-relative paths, keeps the block cache and answers the
``Root`` contract; a ``Backend`` only speaks to its store: a listing page, a HEAD, a
ranged GET pinned to what an earlier answer said the object was, and the few writes
retention needs (put, conditional copy and delete, version markers, lock status).  Each
store names "the same object" differently (an S3 ETag, a GCS generation, an Azure ETag),
so an answer carries both the ``identity`` an index keeps and the ``pin`` conditional
requests match; callers never look inside either.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from store.root.base import RootError

MAX_SIZE_DIGITS = 20
"""An object size longer than this is not a size (2**64 has 20 digits)."""


def range_total(content_range: object) -> int | None:
    """TOTAL of a ``Content-Range: bytes a-b/TOTAL`` header; None when it says ``*`` or
    anything but ASCII decimal digits (``int`` would take ``²`` or spaces, a server must not
    get to choose)."""
    total = str(content_range or "").rpartition("/")[2].strip()
    if total.isascii() and total.isdecimal() and len(total) <= MAX_SIZE_DIGITS:
        return int(total)
    return None


def size_field(value: object, what: str) -> int:
    """A size the store sent (an int, or a decimal string in JSON APIs), checked: a
    malformed one is a ``RootError`` naming ``what``, never a ``ValueError`` traceback."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = value if isinstance(value, str) else ""
    if text.isascii() and text.isdecimal() and len(text) <= MAX_SIZE_DIGITS:
        return int(text)
    raise RootError(f"{what}: the store sent no usable size ({str(value)[:40]!r})")


def text_field(value: object, what: str) -> str:
    """A key, a name, an ETag or a generation the store sent, checked: a missing, empty or
    non-string one is a ``RootError`` naming ``what``.  An entry a listing cannot read
    whole fails the listing, never drops out of it (the index would take a shorter listing
    for deleted objects) nor gets a made-up name or identity."""
    if isinstance(value, str) and value:
        return value
    raise RootError(f"{what}: the store sent no usable value ({str(value)[:40]!r})")


def listed_items(value: object, what: str) -> list[Any]:
    """A listing's list of entries (absent is none), checked: anything but a list is a
    ``RootError`` naming ``what``, never iterated into something else."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise RootError(f"{what}: the store sent no list ({type(value).__name__})")


def listed_mtime(mtime_ns: int, value: object, what: str) -> int:
    """A listed object's modification time, checked: one the store did not send (or sent
    unreadable) is a ``RootError`` naming ``what``.  Taken for 1970 it would make the
    object the oldest of its run, the first a retention rule removes."""
    if mtime_ns > 0:
        return mtime_ns
    raise RootError(f"{what}: the store sent no usable modification time ({str(value)[:40]!r})")


class LockedError(RootError):
    """The store refused to delete or overwrite an object that a hold or a retention
    period protects (a GCS hold or retention policy, an S3 Object Lock, an Azure
    immutability policy); the message names the reason.  Retention reports the object
    ``locked`` (its ``outcome``), not ``failed``."""

    outcome = "locked"


@dataclass
class Stats:
    """Requests made (in all and by operation) and body bytes received through one root,
    thread-safe to bump."""

    requests: int = 0
    bytes: int = 0
    ops: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, requests: int = 0, nbytes: int = 0, op: str = "") -> None:
        with self._lock:
            self.requests += requests
            self.bytes += nbytes
            if op:
                self.ops[op] += requests

    def to_json(self) -> dict[str, int]:
        return {"requests": self.requests, "bytes": self.bytes}


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a listing, a HEAD or a GET described it."""

    key: str
    size: int
    etag: str
    """The store's ETag as it sent it (S3's keeps its quotes)."""
    identity: str
    """What ``Entry.identity`` holds: the same string for the same bytes."""
    pin: str
    """What a conditional request matches: S3 and Azure an ETag, GCS a generation."""
    mtime_ns: int = 0
    version: str | None = None
    """The version a read can be pinned to (S3 VersionId, GCS generation), if any."""
    content_hash: bool = False
    """Whether ``etag`` is the MD5 of the bytes (two equal ones are the same bytes)."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The store's own answer, for store-specific callers (S3 checksums, lock headers)."""


@dataclass
class Page:
    """One listing page: objects, the common prefixes of a delimiter listing (with their
    trailing delimiter) and the token of the next page (``None`` on the last)."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    token: str | None


class Backend(Protocol):
    """One bucket (or container) of one store; every request is counted in ``stats``."""

    scheme: str
    bucket: str
    stats: Stats

    def list_page(
        self, prefix: str, *, delimiter: str | None, token: str | None, max_keys: int
    ) -> Page:
        """One page of keys starting with ``prefix``."""
        ...

    def head(self, key: str, *, version: str | None = None) -> ObjectInfo:
        """One object's metadata; ``NotFound`` where there is none."""
        ...

    def get_range(
        self, key: str, start: int, end: int, *, pin: ObjectInfo | None
    ) -> tuple[ObjectInfo | None, int, bytes]:
        """Bytes ``start``..``end`` (inclusive, clamped to the object), with what was read
        and the object's total size.  Unpinned it reads the current object; pinned, an
        object that is no longer ``pin`` raises ``ChangedError``.  An empty object (where
        the store says no range of it exists) may give ``(None, 0, b"")``: ask ``head``;
        a missing one raises ``NotFound``."""
        ...

    def versioned(self) -> bool:
        """Whether a delete keeps the bytes behind a marker that restore can remove (S3
        versioning ``Enabled``); False where trash must be a copy."""
        ...

    def put(self, key: str, body: bytes) -> None: ...

    def copy(self, source: str, target: str, size: int, *, pin: str) -> str:
        """A server-side copy made only while ``source`` is still ``pin``
        (``ChangedError`` otherwise); the copy's own pin."""
        ...

    def delete(self, key: str, *, pin: str | None = None, version: str | None = None) -> str | None:
        """Delete ``key`` (only while it is ``pin``: ``ChangedError`` otherwise) or one
        ``version`` of it; the id of the delete marker the store put, if it put one."""
        ...

    def lock_of(self, key: str, version: str) -> str:
        """Why a version may not be deleted (legal hold, retention), or ``""``."""
        ...

    def unsafe_key(self, key: str) -> str | None:
        """Why ``key`` cannot be sent to this store as itself, or None.  A store that
        resolves ``.`` and ``..`` parts of the URL that carries a key (or its HTTP client
        does) would act on another object, maybe outside the root's prefix, or take two
        keys for one; such keys are refused before any request is made."""
        ...
