"""Object-store roots: a bucket prefix behind the ``Root`` contract.

The store's own API sits behind a ``Backend`` (store/root/backend.py): S3 in
store/root/s3.py, GCS in store/root/gcs.py, Azure Blob in store/root/azure.py.  What
differs from a folder, and how this module answers it:

- Identity is what the store says names the bytes (S3's and Azure's ETag, GCS's
  generation), never
  LastModified, from a listing and a HEAD alike (see each backend's docstring).
- A folder is a delimiter listing (``list_dir``); a whole subtree is prefix pages
  (``walk``), one request per 1000 keys rather than one per folder.
- A read is a ranged GET pinned to the object seen when the reader opened (S3
  ``If-Match`` and VersionId, GCS ``generation`` and ``ifGenerationMatch``, Azure
  ``If-Match``), in blocks
  kept in a small cache: an object overwritten mid-read raises ``ChangedError``, never a
  mix of old and new bytes.
- Every request and every body byte is counted (``ObjectRoot.stats``), so a caller can
  say what an index or an inspection cost.

Keys another writer made that cannot be root-relative paths (an empty, ``.`` or ``..``
part from ``a//b`` or ``a/../b``, a NUL) are kept: such a part is shown as ``%`` followed
by its percent-encoding (``a/%/b``, ``a/%../b``), and a real name starting with ``%``
is encoded the same way, so the mapping is one-to-one and no key ever becomes a path
that steps out of the prefix.  Control characters stay in names, escaped for display by
the same code that escapes hostile local file names.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote

from store.root.backend import Backend, ObjectInfo, Page, Stats
from store.root.base import (
    ChangedError,
    Entry,
    NotAFile,
    NotFound,
    RootError,
    TooManyEntries,
    check_rel,
)
from store.root.s3 import _s3fs, is_content_hash

__all__ = [
    "BLOCK_SIZE",
    "CACHE_BLOCKS",
    "Backend",
    "ObjectInfo",
    "ObjectReader",
    "ObjectRoot",
    "Stats",
    "_s3fs",
    "decode_part",
    "encode_part",
    "is_content_hash",
    "key_to_rel",
    "open_object_root",
    "parse_url",
    "rel_to_key",
]

BLOCK_SIZE = 64 * 1024
"""A ranged GET fetches whole blocks of this size: one request covers a header read."""

CACHE_BLOCKS = 64
"""Blocks kept per reader (4 MiB): re-reads of a header or an index cost no request."""

MAX_READ = 64 * 1024 * 1024
"""The largest single ``read_at`` a reader serves: a caller wanting more reads in pieces."""

PAGE_KEYS = 1000
"""Keys per listing page (S3's maximum)."""

BELOW_KEYS = 10
"""Keys per page of a listing that only asks whether a folder holds anything."""

ESCAPE = "%"
"""Marks a name part that stands for a key part which cannot be a path part."""

SCHEMES = {"s3": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az"}
"""URL scheme -> the backend's scheme (``gcs://`` and ``abfs://`` are fsspec's other names
for ``gs://`` and ``az://``)."""


def encode_part(part: str) -> str:
    """A key part as a root-relative path part (one-to-one; see the module docstring)."""
    if part in ("", ".", "..") or "\x00" in part or part.startswith(ESCAPE):
        return ESCAPE + quote(part, safe="")
    return part


def decode_part(name: str) -> str:
    """The key part a path part stands for (inverse of ``encode_part``)."""
    if name.startswith(ESCAPE):
        return unquote(name[len(ESCAPE) :])
    return name


def key_to_rel(key_rel: str) -> str:
    """A key below the root's prefix as a root-relative path."""
    return "/".join(encode_part(p) for p in key_rel.split("/"))


def rel_to_key(rel: str) -> str:
    """The key part below the prefix that a root-relative path names."""
    return "/".join(decode_part(p) for p in check_rel(rel))


def _marker(below: str, obj: ObjectInfo) -> bool:
    """Whether a listed key (``below`` the listed prefix) is a zero-byte folder marker,
    which is no entry.  A key ending in ``/`` with bytes in it is an object: its last part
    is ``%`` (the prefix's own key, ``below == ""``, is the folder's ``%``)."""
    return obj.size == 0 and (below == "" or below.endswith("/"))


def parse_url(url: str) -> tuple[str, str, str]:
    """``(scheme, bucket, prefix)`` of ``s3://bucket/prefix``; the prefix has no slashes
    at either end."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RootError(f"not an object-store URL: {url!r}")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise RootError(f"no bucket in {url!r}")
    return scheme.lower(), bucket, prefix.strip("/")


def _backend(scheme: str, bucket: str, stats: Stats, fs: Any) -> Backend:
    """The backend for ``scheme`` (its SDK imported only now)."""
    kind = SCHEMES.get(scheme)
    if kind == "s3":
        from store.root.s3 import S3Backend

        return S3Backend(bucket, stats, fs=fs)
    if kind == "gs":
        from store.root.gcs import GCSBackend

        return GCSBackend(bucket, stats, fs=fs)
    if kind == "az":
        from store.root.azure import AzureBackend

        return AzureBackend(bucket, stats, fs=fs)
    raise RootError(
        f"{scheme}:// roots are not supported (s3://, including S3-compatible servers "
        "through AWS_ENDPOINT_URL, gs:// and az://)"
    )


class ObjectRoot:
    """One ``s3://bucket/prefix`` (or ``gs://``, ``az://container/prefix``): listings,
    stats and pinned ranged readers, over the store's ``Backend``."""

    def __init__(self, url: str, *, fs: Any = None, block_size: int = BLOCK_SIZE) -> None:
        scheme, bucket, prefix = parse_url(url)
        self.stats = Stats()
        self.backend: Backend = _backend(scheme, bucket, self.stats, fs)
        self.bucket = bucket
        self.prefix = prefix
        self.block_size = block_size
        self._snapshot: dict[str, dict[str, Entry]] | None = None

    # -- the contract -------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return self.backend.scheme

    @property
    def url(self) -> str:
        base = f"{self.scheme}://{self.bucket}"
        return f"{base}/{self.prefix}" if self.prefix else base

    @property
    def fs(self) -> Any:
        """The backend's fsspec filesystem (s3fs, gcsfs)."""
        return getattr(self.backend, "fs", None)

    @property
    def name(self) -> str:
        """The prefix's last part (the bucket for a whole bucket), as a folder's name is:
        run detection names a run at the root after it."""
        return self.prefix.rpartition("/")[2] or self.bucket

    def key_of(self, rel: str) -> str:
        """The full key a root-relative path names."""
        below = rel_to_key(rel)
        if not rel or not self.prefix:
            return self.prefix or below
        # "%" (below == "") is the key "<prefix>/" itself, never "<prefix>" beside the root
        return f"{self.prefix}/{below}"

    def _dir_prefix(self, rel: str) -> str:
        key = self.key_of(rel)
        return f"{key}/" if key else ""

    @property
    def versioned(self) -> bool:
        """Whether a delete here keeps the bytes behind a marker (S3 versioning
        ``Enabled``): what bucket retention trashes by (see ``Backend.versioned``)."""
        return self.backend.versioned()

    def list_dir(self, rel: str = "", *, limit: int = 1_000_000) -> list[Entry]:
        """One folder by delimiter listing: common prefixes are folders, keys are files."""
        if self._snapshot is not None:
            check_rel(rel)
            listed = self._snapshot.get(rel)
            if listed is None:
                raise NotFound(f"{self.url}/{rel}: no such folder (in the listing held)")
            if len(listed) > limit:
                raise TooManyEntries(f"{self.url}/{rel}: more than {limit} entries")
            return list(listed.values())
        prefix = self._dir_prefix(rel)
        entries: list[Entry] = []
        dirs_seen: set[str] = set()
        for page in self._pages(prefix, delimiter="/"):
            for common in page.prefixes:
                name = encode_part(common[len(prefix) : -1])
                if name not in dirs_seen:
                    dirs_seen.add(name)
                    entries.append(Entry(name, "dir", 0, 0, ""))
            for obj in page.objects:
                part = obj.key[len(prefix) :]
                if _marker(part, obj):
                    continue  # the folder's own marker object
                entries.append(self._entry(encode_part(part), obj))
            if len(entries) > limit:
                raise TooManyEntries(f"{self.url}/{rel}: more than {limit} entries")
        if not entries and (rel or self.prefix):
            self._require_dir(rel)
        return entries

    def stat(self, rel: str) -> Entry:
        """One object by HEAD, or a folder where only keys below it exist."""
        parts = check_rel(rel)
        name = parts[-1] if parts else ""
        if not parts:
            return Entry("", "dir", 0, 0, "")
        if self._snapshot is not None:
            found = self._snapshot.get("/".join(parts[:-1]), {}).get(name)
            if found is None:
                raise NotFound(f"{self.url}/{rel}: no such object (in the listing held)")
            return found
        try:
            head = self.backend.head(self.key_of(rel))
        except FileNotFoundError:
            self._require_dir(rel)
            return Entry(name, "dir", 0, 0, "")
        return self._entry(name, head)

    def open(self, rel: str) -> ObjectReader:
        """A reader pinned to the object as its first ranged GET finds it: that GET also
        fills the first block, so a small file costs one request."""
        if not check_rel(rel):
            raise NotAFile(f"{self.url}: the root is a folder")
        key = self.key_of(rel)
        try:
            info, _, data = self.backend.get_range(key, 0, self.block_size - 1, pin=None)
            if info is None:  # an empty object: HEAD it instead
                info = self.backend.head(key)
        except FileNotFoundError:
            raise NotAFile(f"{self.url}/{rel}: no such object") from None
        reader = ObjectReader(self, info)
        if data:
            reader._keep(0, data)
        return reader

    def hold_listing(self, folders: Iterable[tuple[str, list[Entry]]]) -> None:
        """Answer ``list_dir`` and ``stat`` from ``folders`` (a walk of the whole root just
        made) until ``release_listing``: run detection and the run readers ask about names
        the walk already knows, and an index pass should not pay a request for each."""
        self._snapshot = {folder: {e.name: e for e in entries} for folder, entries in folders}

    def release_listing(self) -> None:
        """Back to asking the store for every listing and stat."""
        self._snapshot = None

    def read_capped(self, rel: str, cap: int) -> tuple[bytes, bool]:
        """The first ``cap`` bytes in one ranged GET (no HEAD), and whether there are more;
        a name the held listing lacks costs no request."""
        key = self.key_of(rel)
        if self._snapshot is not None:
            self.stat(rel)  # NotFound from the listing held
        if cap <= 0:
            entry = self.stat(rel)
            return b"", entry.size > 0
        _, size, data = self.backend.get_range(key, 0, cap, pin=None)
        return data[:cap], len(data) > cap or size > cap

    def walk(self, rel: str = "", *, limit: int = 10_000_000) -> Iterator[tuple[str, list[Entry]]]:
        """Every folder below ``rel`` from prefix pages (no delimiter): one request per
        thousand keys however deep the tree, folders yielded parent first."""
        prefix = self._dir_prefix(rel)
        folders: dict[str, list[Entry]] = {rel: []}
        subdirs: dict[str, set[str]] = {rel: set()}
        count = 0
        for page in self._pages(prefix, delimiter=None):
            for obj in page.objects:
                below = obj.key[len(prefix) :]
                if _marker(below, obj):
                    continue
                parts = [encode_part(p) for p in below.split("/")]
                folder = rel
                for part in parts[:-1]:
                    child = f"{folder}/{part}" if folder else part
                    if child not in folders:
                        folders[child] = []
                        subdirs[child] = set()
                    if part not in subdirs[folder]:
                        subdirs[folder].add(part)
                        folders[folder].append(Entry(part, "dir", 0, 0, ""))
                        count += 1
                    folder = child
                folders[folder].append(self._entry(parts[-1], obj))
                count += 1
                if count > limit:
                    raise TooManyEntries(f"{self.url}/{rel}: more than {limit} entries")
        if count == 0 and (rel or self.prefix):
            self._require_dir(rel)
        for folder in sorted(folders):
            yield folder, folders[folder]

    def objects(self, rel: str = "") -> Iterator[tuple[str, ObjectInfo]]:
        """Every object below ``rel`` as ``(root-relative path, what the listing said)``,
        from prefix pages: ``ObjectInfo.raw`` keeps what ``Entry`` drops (S3's
        ``ChecksumAlgorithm``)."""
        prefix = self._dir_prefix(rel)
        for page in self._pages(prefix, delimiter=None):
            for obj in page.objects:
                below = obj.key[len(prefix) :]
                if _marker(below, obj):
                    continue
                path = key_to_rel(below)
                yield (f"{rel}/{path}" if rel else path), obj

    # -- requests -----------------------------------------------------------------

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 request, counted (S3 roots only: what the backend seam does not cover,
        such as a HEAD asking for checksums)."""
        call = getattr(self.backend, "call", None)
        if call is None:
            raise RootError(f"{self.url}: {op} is an S3 request")
        result: dict[str, Any] = call(op, **kwargs)
        return result

    def _pages(
        self, prefix: str, *, delimiter: str | None, max_keys: int = PAGE_KEYS
    ) -> Iterator[Page]:
        """Every page of the listing of ``prefix``, each checked (``_check_page``); a
        continuation token that comes back is a ``RootError``: the listing would loop for
        ever, or list the same keys twice."""
        token: str | None = None
        tokens: set[str] = set()
        while True:
            page = self.backend.list_page(
                prefix, delimiter=delimiter, token=token, max_keys=max_keys
            )
            self._check_page(prefix, delimiter, page)
            yield page
            if not page.token:
                return
            if page.token in tokens:
                raise RootError(
                    f"{self._where(prefix)}: the listing is not whole: a continuation token "
                    "came back (the store would list the same pages again)"
                )
            tokens.add(page.token)
            token = page.token

    def _check_page(self, prefix: str, delimiter: str | None, page: Page) -> None:
        """Refuse a page naming a key or a common prefix outside ``prefix`` (a server that
        ignores the prefix): cut to a root-relative path, it would name another key."""
        for name in (*(o.key for o in page.objects), *page.prefixes):
            if not name.startswith(prefix):
                raise RootError(
                    f"{self._where(prefix)}: the store listed a key outside the prefix "
                    f"({name[:200]!r}): the listing cannot be trusted"
                )
        for common in page.prefixes:
            if not delimiter or not common.endswith(delimiter) or len(common) <= len(prefix):
                raise RootError(
                    f"{self._where(prefix)}: the store listed a common prefix that is no "
                    f"folder of the prefix ({common[:200]!r}): the listing cannot be trusted"
                )

    def _where(self, prefix: str) -> str:
        return f"{self.scheme}://{self.bucket}/{prefix}"

    def _entry(self, name: str, obj: ObjectInfo) -> Entry:
        return Entry(name, "file", obj.size, obj.mtime_ns, obj.identity, obj.size)

    def any_below(self, rel: str, *, markers: bool = True) -> bool:
        """Whether some key lies below the folder ``rel`` (a zero-byte folder marker counts
        only with ``markers``), from the first pages of its listing that say so.  They are
        the pages ``walk`` reads, checked alike (``_pages``): a key outside the prefix, a
        truncated page without a token or a token that comes back is a ``RootError``,
        never a yes; an empty page with a token (GCS sends them) is no "no": the next
        page is read."""
        prefix = self._dir_prefix(rel)
        for page in self._pages(prefix, delimiter=None, max_keys=BELOW_KEYS):
            if page.prefixes:
                return True
            for obj in page.objects:
                if markers or not _marker(obj.key[len(prefix) :], obj):
                    return True
        return False

    def _require_dir(self, rel: str) -> None:
        """Raise ``NotFound`` unless some key lies below ``rel``."""
        if not self.any_below(rel):
            where = f"{self.url}/{rel}" if rel else self.url
            raise NotFound(f"{where}: no such object or folder")


class ObjectReader:
    """Ranged GETs of one object pinned to what it was when opened, in cached blocks."""

    def __init__(self, root: ObjectRoot, info: ObjectInfo) -> None:
        self._root = root
        self._info = info
        self._key = info.key
        self._size = info.size
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return self._info.identity

    @property
    def version(self) -> str | None:
        """The version every range is pinned to (S3 VersionId in a versioned bucket, GCS
        generation)."""
        return self._info.version

    def read_at(self, offset: int, n: int) -> bytes:
        if self._closed:
            raise RootError(f"{self._root.url}: read on a closed reader")
        if offset < 0 or n < 0:
            raise ValueError("negative offset or length")
        n = min(n, MAX_READ, max(0, self._size - offset))
        if n == 0:
            return b""
        bs = self._root.block_size
        first, last = offset // bs, (offset + n - 1) // bs
        with self._lock:
            missing = [b for b in range(first, last + 1) if b not in self._blocks]
            if missing:
                # the blocks of this read already cached must outlive the fetch's eviction
                for b in range(first, last + 1):
                    if b in self._blocks:
                        self._blocks.move_to_end(b)
                self._fetch(missing[0], missing[-1], keep=last - first + 1)
            data = b"".join(self._block(b) for b in range(first, last + 1))
        start = offset - first * bs
        return data[start : start + n]

    def _keep(self, first: int, data: bytes) -> None:
        """Cache whole blocks of ``data``, which starts at block ``first``."""
        bs = self._root.block_size
        for i in range(0, len(data), bs):
            index = first + i // bs
            chunk = data[i : i + bs]
            if len(chunk) == bs or index * bs + len(chunk) == self._size:
                self._blocks[index] = chunk
                self._blocks.move_to_end(index)

    def _block(self, index: int) -> bytes:
        self._blocks.move_to_end(index)
        return self._blocks[index]

    def _fetch(self, first: int, last: int, *, keep: int = 0) -> None:
        bs = self._root.block_size
        start, end = first * bs, min(self._size, (last + 1) * bs) - 1
        try:
            _, _, data = self._root.backend.get_range(self._key, start, end, pin=self._info)
        except NotFound:
            raise ChangedError(f"{self._root.url}: {self._key!r} was deleted mid-read") from None
        if len(data) != end - start + 1:
            raise ChangedError(f"{self._root.url}: {self._key!r} changed size mid-read")
        for i, index in enumerate(range(first, last + 1)):
            self._blocks[index] = data[i * bs : (i + 1) * bs]
            self._blocks.move_to_end(index)
        while len(self._blocks) > max(CACHE_BLOCKS, last - first + 1, keep):
            self._blocks.popitem(last=False)

    def close(self) -> None:
        self._closed = True
        self._blocks.clear()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_object_root(url: str) -> ObjectRoot:
    """The root for ``s3://``, ``gs://`` or ``az://`` URLs (other schemes give a one-line
    error)."""
    return ObjectRoot(url)
