"""Object-store roots: an S3 bucket prefix behind the ``Root`` contract, through s3fs.

What differs from a folder, and how this module answers it:

- Identity is the ``ETag``, never LastModified, from a listing and a HEAD alike.  The
  VersionId is not part of it: only a versions listing gives it per key, at a page per
  thousand old versions too (and moto cannot list versions of keys holding control
  characters); an upload of the same bytes keeps its identity, which is what an index
  wants.  Readers pin the VersionId all the same.  A multipart ETag (``"…-N"``) is not a
  content hash: ``is_content_hash`` says which are.
- A folder is a delimiter listing (``list_dir``); a whole subtree is prefix pages
  (``walk``), one request per 1000 keys rather than one per folder.
- A read is a ranged GET pinned to the ETag seen when the reader opened (``If-Match``,
  and the VersionId where there is one), in blocks kept in a small cache: an object
  overwritten mid-read raises ``ChangedError``, never a mix of old and new bytes.
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

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from store.root.base import (
    ChangedError,
    Entry,
    NotAFile,
    NotFound,
    RootError,
    TooManyEntries,
    check_rel,
)

BLOCK_SIZE = 64 * 1024
"""A ranged GET fetches whole blocks of this size: one request covers a header read."""

CACHE_BLOCKS = 64
"""Blocks kept per reader (4 MiB): re-reads of a header or an index cost no request."""

MAX_READ = 64 * 1024 * 1024
"""The largest single ``read_at`` a reader serves: a caller wanting more reads in pieces."""

PAGE_KEYS = 1000
"""Keys per listing page (S3's maximum)."""

ESCAPE = "%"
"""Marks a name part that stands for a key part which cannot be a path part."""


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


def is_content_hash(etag: str) -> bool:
    """Whether an ETag is the MD5 of the bytes: a multipart ETag (``…-N``) is not, so two
    objects with one multipart ETag are only probably the same."""
    tag = etag.strip('"')
    return len(tag) == 32 and "-" not in tag


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


def _mtime_ns(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000_000)
    return 0


def _error_code(exc: BaseException) -> str:
    """The S3 error code behind an s3fs error (s3fs wraps botocore's ClientError)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        seen = seen.__cause__ or seen.__context__
    return ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ObjectRoot:
    """One ``s3://bucket/prefix``: listings, stats and pinned ranged readers."""

    def __init__(self, url: str, *, fs: Any = None, block_size: int = BLOCK_SIZE) -> None:
        scheme, bucket, prefix = parse_url(url)
        if scheme != "s3":
            raise RootError(
                f"{scheme}:// roots are not supported yet (only s3://, including S3-compatible "
                "servers through AWS_ENDPOINT_URL)"
            )
        if fs is None:
            fs = _s3fs()
        self.fs = fs
        self.bucket = bucket
        self.prefix = prefix
        self.block_size = block_size
        self.stats = Stats()
        self._versioned: bool | None = None
        self._snapshot: dict[str, dict[str, Entry]] | None = None

    # -- the contract -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def scheme(self) -> str:
        return "s3"

    @property
    def name(self) -> str:
        """The prefix's last part (the bucket for a whole bucket), as a folder's name is:
        run detection names a run at the root after it."""
        return self.prefix.rpartition("/")[2] or self.bucket

    def key_of(self, rel: str) -> str:
        """The full key a root-relative path names."""
        below = rel_to_key(rel)
        return f"{self.prefix}/{below}" if self.prefix and below else (self.prefix or below)

    def _dir_prefix(self, rel: str) -> str:
        key = self.key_of(rel)
        return f"{key}/" if key else ""

    @property
    def versioned(self) -> bool:
        """Whether the bucket keeps every version now (``Enabled``).  ``Suspended`` is
        False: a delete there writes its marker over the ``null`` version, so a delete
        marker is no trash.  False too where the caller may not ask."""
        if self._versioned is None:
            try:
                answer = self.call("get_bucket_versioning", Bucket=self.bucket)
            except RootError:
                answer = {}
            self._versioned = answer.get("Status") == "Enabled"
        return self._versioned

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
            for common in page.get("CommonPrefixes", []):
                name = encode_part(common["Prefix"][len(prefix) : -1])
                if name not in dirs_seen:
                    dirs_seen.add(name)
                    entries.append(Entry(name, "dir", 0, 0, ""))
            for obj in page.get("Contents", []):
                part = obj["Key"][len(prefix) :]
                if part == "" and obj["Size"] == 0:
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
            head = self.call("head_object", Bucket=self.bucket, Key=self.key_of(rel))
        except FileNotFoundError:
            self._require_dir(rel)
            return Entry(name, "dir", 0, 0, "")
        return Entry(
            name,
            "file",
            int(head["ContentLength"]),
            _mtime_ns(head.get("LastModified")),
            self._identity(head["ETag"]),
            int(head["ContentLength"]),
        )

    def open(self, rel: str) -> ObjectReader:
        """A reader pinned to the object's ETag (and VersionId) as its first ranged GET
        finds them: that GET also fills the first block, so a small file costs one request."""
        if not check_rel(rel):
            raise NotAFile(f"{self.url}: the root is a folder")
        key = self.key_of(rel)
        try:
            response, data = self.get(Key=key, Range=f"bytes=0-{self.block_size - 1}")
        except FileNotFoundError:
            raise NotAFile(f"{self.url}/{rel}: no such object") from None
        except RootError as exc:
            if _error_code(exc) != "InvalidRange":
                raise
            # an empty object has no range: HEAD it instead
            try:
                response = self.call("head_object", Bucket=self.bucket, Key=key)
            except FileNotFoundError:
                raise NotAFile(f"{self.url}/{rel}: no such object") from None
            data = b""
        size = _total_size(response, len(data))
        version = response.get("VersionId")
        if version == "null":
            version = None
        reader = ObjectReader(self, key, size, response["ETag"], version)
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
        try:
            _, data = self.get(Key=key, Range=f"bytes=0-{cap}")
        except RootError as exc:
            if _error_code(exc) != "InvalidRange":
                raise
            return b"", False  # an empty object: no range of it exists
        return data[:cap], len(data) > cap

    def walk(self, rel: str = "", *, limit: int = 10_000_000) -> Iterator[tuple[str, list[Entry]]]:
        """Every folder below ``rel`` from prefix pages (no delimiter): one request per
        thousand keys however deep the tree, folders yielded parent first."""
        prefix = self._dir_prefix(rel)
        folders: dict[str, list[Entry]] = {rel: []}
        subdirs: dict[str, set[str]] = {rel: set()}
        count = 0
        for page in self._pages(prefix, delimiter=None):
            for obj in page.get("Contents", []):
                below = obj["Key"][len(prefix) :]
                if below == "" or (below.endswith("/") and obj["Size"] == 0):
                    continue  # folder marker objects
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

    def objects(self, rel: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """Every object below ``rel`` as ``(root-relative path, listing entry)``, from
        prefix pages: the entry keeps what ``Entry`` drops (``ChecksumAlgorithm``)."""
        prefix = self._dir_prefix(rel)
        for page in self._pages(prefix, delimiter=None):
            for obj in page.get("Contents", []):
                below = obj["Key"][len(prefix) :]
                if below == "" or (below.endswith("/") and obj["Size"] == 0):
                    continue  # folder marker objects
                path = key_to_rel(below)
                yield (f"{rel}/{path}" if rel else path), obj

    # -- requests -----------------------------------------------------------------

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 request, counted; errors become ``RootError`` (``NotFound`` for a missing
        key or bucket)."""
        self.stats.add(requests=1, op=op)
        try:
            result: dict[str, Any] = self.fs.call_s3(op, **kwargs)
        except (OSError, ValueError) as exc:
            raise _root_error(op, kwargs, exc) from exc
        return result

    def get(self, **kwargs: Any) -> tuple[dict[str, Any], bytes]:
        """A GET whose body is read in full (callers always pass a bounded Range)."""
        from fsspec.asyn import sync

        async def fetch() -> tuple[dict[str, Any], bytes]:
            response = await self.fs._call_s3("get_object", Bucket=self.bucket, **kwargs)
            body = response["Body"]
            try:
                data: bytes = await body.read()
            finally:
                body.close()
            return response, data

        self.stats.add(requests=1, op="get_object")
        try:
            response, data = sync(self.fs.loop, fetch)
        except (OSError, ValueError) as exc:
            raise _root_error("get_object", kwargs, exc) from exc
        self.stats.add(nbytes=len(data))
        return response, data

    def _pages(self, prefix: str, *, delimiter: str | None) -> Iterator[dict[str, Any]]:
        """Plain listing pages (``ListObjectsV2``), in a versioned bucket too: listing
        versions would cost a page per thousand old versions as well."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": PAGE_KEYS}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        while True:
            page = self.call("list_objects_v2", **kwargs)
            yield page
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _entry(self, name: str, obj: dict[str, Any]) -> Entry:
        size = int(obj["Size"])
        return Entry(
            name,
            "file",
            size,
            _mtime_ns(obj.get("LastModified")),
            self._identity(obj["ETag"]),
            size,
        )

    def _identity(self, etag: str) -> str:
        """The ETag alone, from a listing and a HEAD alike (see the module docstring)."""
        return etag.strip('"')

    def _require_dir(self, rel: str) -> None:
        """Raise ``NotFound`` unless some key lies below ``rel``."""
        page = self.call(
            "list_objects_v2", Bucket=self.bucket, Prefix=self._dir_prefix(rel), MaxKeys=1
        )
        if not page.get("KeyCount"):
            where = f"{self.url}/{rel}" if rel else self.url
            raise NotFound(f"{where}: no such object or folder")


class ObjectReader:
    """Ranged GETs of one object pinned to its ETag and VersionId, in cached blocks."""

    def __init__(
        self, root: ObjectRoot, key: str, size: int, etag: str, version: str | None
    ) -> None:
        self._root = root
        self._key = key
        self._size = size
        self._etag = etag
        self._version = version
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return self._root._identity(self._etag)

    @property
    def version(self) -> str | None:
        """The VersionId every range is pinned to, in a versioned bucket."""
        return self._version

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
        kwargs: dict[str, Any] = {
            "Key": self._key,
            "Range": f"bytes={start}-{end}",
            "IfMatch": self._etag,
        }
        if self._version:
            kwargs["VersionId"] = self._version
        try:
            _, data = self._root.get(**kwargs)
        except FileNotFoundError:
            raise ChangedError(f"{self._root.url}: {self._key!r} was deleted mid-read") from None
        except RootError as exc:
            if _error_code(exc) in ("PreconditionFailed", "NoSuchVersion", "NoSuchKey"):
                raise ChangedError(
                    f"{self._root.url}: {self._key!r} changed mid-read (ETag no longer "
                    f"{self._etag})"
                ) from None
            raise
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


def _total_size(response: dict[str, Any], got: int) -> int:
    """The object's size from a ranged GET's ``Content-Range: bytes a-b/TOTAL`` (or from a
    HEAD's ``ContentLength``)."""
    content_range = str(response.get("ContentRange") or "")
    total = content_range.rpartition("/")[2].strip()
    if total.isascii() and total.isdecimal() and len(total) <= 20:  # not "²", not "*"
        return int(total)
    length = response.get("ContentLength", got)
    if isinstance(length, int) and not isinstance(length, bool) and length >= 0:
        return length
    raise RootError(f"the server sent no usable object size ({content_range[:80]!r})")


def _root_error(op: str, kwargs: dict[str, Any], exc: BaseException) -> RootError:
    where = kwargs.get("Key") or kwargs.get("Prefix") or ""
    bucket = kwargs.get("Bucket", "")
    code = _error_code(exc)
    kind = NotFound if isinstance(exc, FileNotFoundError) else RootError
    error = kind(f"s3://{bucket}/{where}: {op} failed: {code or _one_line(exc)}")
    error.__cause__ = exc
    return error


_CLIENT_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
_CLIENTS: dict[tuple[str | None, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _s3fs() -> Any:
    """An s3fs filesystem reading credentials and endpoint as botocore does
    (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ~/.aws/config); one per
    such environment, since building a client loads the whole S3 service model."""
    try:
        import s3fs
    except ImportError:
        raise RootError("s3:// roots need the s3 extra: pip install 'artlens[s3]'") from None
    env = tuple(os.environ.get(name) for name in _CLIENT_ENV)
    with _CLIENTS_LOCK:
        fs = _CLIENTS.get(env)
        if fs is None:
            fs = _CLIENTS[env] = s3fs.S3FileSystem(skip_instance_cache=True)
        return fs


def open_object_root(url: str) -> ObjectRoot:
    """The root for ``s3://bucket/prefix`` (``gs://`` and ``az://`` give a one-line error)."""
    return ObjectRoot(url)
