"""Duplicate objects under a bucket prefix, saying how sure each group is.

A folder's duplicates come from content hashes in the index; an object store gives no
hash of the bytes for free.  What it does give, and what each is worth:

- the ETag: the MD5 of the bytes for a plain upload, but for a multipart upload the MD5
  of the parts' MD5s (``…-N``), and with SSE-KMS neither.  Same size and ETag is a
  *probable* duplicate, never a certain one;
- a full-object ``ChecksumSHA256`` (``ChecksumType`` ``FULL_OBJECT``, or no type and no
  ``-N`` part count, as servers that predate the field write it): the same digest is an
  *exact* duplicate, and catches copies whose ETags differ because the part sizes did;
- ``full_hash``: every object that shares its size with another is read (ranged GETs
  pinned to the ETag seen) and SHA-256 hashed: exact, at the price of those bytes.

Only objects that share a size with another one cost anything beyond the listing: a HEAD
where the listing says a SHA-256 checksum exists, or the reads of ``full_hash``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from store.root import RootError
from store.root.backend import ObjectInfo
from store.root.objstore import ObjectRoot, is_content_hash
from store.scan import IGNORED_DIR_NAMES

WORKERS = 16
"""HEADs or reads in flight at once."""

CHUNK = 8 * 1024 * 1024
"""Bytes per read while hashing an object whole (``full_hash``)."""

_IGNORED = frozenset(os.fsdecode(n) for n in IGNORED_DIR_NAMES)


@dataclass
class ObjectDupGroup:
    """Objects of one size taken to hold the same bytes, and on what evidence."""

    basis: str
    """``etag``, ``checksum-sha256`` (the store's full-object checksum) or ``sha256``
    (hashed here)."""
    digest: str
    size: int
    paths: list[str]

    @property
    def certainty(self) -> str:
        """``exact`` for a SHA-256 of the whole bytes, ``probable`` for an ETag."""
        return "probable" if self.basis == "etag" else "exact"

    @property
    def reclaimable(self) -> int:
        return self.size * (len(self.paths) - 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "certainty": self.certainty,
            "basis": self.basis,
            "digest": self.digest,
            "size": self.size,
            "copies": len(self.paths),
            "reclaimable": self.reclaimable,
            "paths": self.paths,
        }


@dataclass
class ObjectDups:
    groups: list[ObjectDupGroup] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    objects: int = 0
    seconds: float = 0.0


@dataclass
class _Obj:
    path: str
    size: int
    etag: str
    sha256: str | None = None
    """A full-object SHA-256 (from the store's checksum, or hashed here)."""


def full_object_sha256(head: dict[str, Any]) -> str | None:
    """The HEAD's ``ChecksumSHA256`` if it covers the whole object: a composite checksum
    (a checksum of part checksums, ``…-N``) does not."""
    value = head.get("ChecksumSHA256")
    if not isinstance(value, str) or not value:
        return None
    kind = head.get("ChecksumType")
    if kind is not None:
        return value if kind == "FULL_OBJECT" else None
    return None if "-" in value else value


def _hash_object(root: ObjectRoot, path: str) -> str:
    """SHA-256 of the object, read in chunks pinned to one ETag (``ChangedError`` if it
    is overwritten meanwhile)."""
    digest = hashlib.sha256()
    with root.open(path) as reader:
        offset = 0
        while offset < reader.size:
            data = reader.read_at(offset, CHUNK)
            if not data:
                raise RootError(f"{root.url}/{path}: read ended early")
            digest.update(data)
            offset += len(data)
    return "sha256:" + digest.hexdigest()


def object_duplicates(
    root: ObjectRoot, *, min_size: int = 1, full_hash: bool = False
) -> ObjectDups:
    """Groups of two or more objects under ``root`` with the same bytes (exact) or the
    same size and ETag (probable), most reclaimable first."""
    start = time.monotonic()
    result = ObjectDups()
    by_size: dict[int, list[_Obj]] = defaultdict(list)
    has_sha: set[str] = set()
    opaque: list[_Obj] = []
    for path, obj in root.objects():
        if any(part in _IGNORED for part in path.split("/")[:-1]):
            continue  # our trash
        result.objects += 1
        size = obj.size
        if size < min_size:
            continue
        if not _etag_follows_bytes(root, obj):
            # Azure's ETag, a GCS composite's: they say nothing of the bytes
            opaque.append(_Obj(path, size, obj.etag.strip('"')))
            if not full_hash:
                continue
        by_size[size].append(_Obj(path, size, obj.etag.strip('"')))
        if "SHA256" in (obj.raw.get("ChecksumAlgorithm") or []):
            has_sha.add(path)
    candidates = [o for same in by_size.values() if len(same) > 1 for o in same]

    def settle(o: _Obj) -> None:
        try:
            if full_hash:
                o.sha256 = _hash_object(root, o.path)
            elif o.path in has_sha:
                head = root.call(
                    "head_object",
                    Bucket=root.bucket,
                    Key=root.key_of(o.path),
                    ChecksumMode="ENABLED",
                )
                found = full_object_sha256(head)
                if found is not None and head.get("ETag", "").strip('"') == o.etag:
                    o.sha256 = "checksum-sha256:" + found
        except RootError as exc:
            result.warnings.append(str(exc)[:300])

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="artlens-dups") as pool:
        for _ in pool.map(settle, candidates):
            pass

    opaque_set = {id(o) for o in opaque}
    if opaque and not full_hash:
        sizes = Counter(o.size for o in opaque)
        unsure = sum(1 for o in opaque if sizes[o.size] + len(by_size.get(o.size, ())) > 1)
        if unsure:
            result.warnings.append(
                f"{unsure} object(s) share a size with another but have no digest of their "
                "bytes (their ETag follows writes, not content): not compared; "
                "--full-hash reads and compares them"
            )
    for size, same in by_size.items():
        if len(same) < 2:
            continue
        exact: dict[str, list[_Obj]] = defaultdict(list)
        by_etag: dict[str, list[_Obj]] = defaultdict(list)
        for o in same:
            if o.sha256 is not None:
                exact[o.sha256].append(o)
            by_etag[o.etag].append(o)
        for digest, objs in exact.items():
            if len(objs) > 1:
                basis, _, value = digest.partition(":")
                result.groups.append(
                    ObjectDupGroup(basis, value, size, sorted(o.path for o in objs))
                )
        for etag, objs in by_etag.items():
            objs = [o for o in objs if id(o) not in opaque_set]
            if len(objs) > 1 and any(o.sha256 is None for o in objs):
                # some of them have no digest of their bytes: the ETag is all there is
                result.groups.append(
                    ObjectDupGroup("etag", etag, size, sorted(o.path for o in objs))
                )
    result.groups.sort(key=lambda g: (-g.reclaimable, g.certainty, g.paths))
    result.seconds = time.monotonic() - start
    return result


def _etag_follows_bytes(root: ObjectRoot, obj: ObjectInfo) -> bool:
    """Whether two equal ETags say the bytes are alike: S3's (the MD5 of a plain upload,
    the parts' MD5s of a multipart one) and a GCS ``md5Hash`` do; Azure's ETag and a GCS
    composite object's (no md5Hash) change with each write, whatever was written."""
    return root.scheme == "s3" or obj.content_hash


def etag_note(etag: str) -> str:
    """Why an ETag match is only probable, for a group's line (a GCS root groups by its
    base64 ``md5Hash``, which MD5 collisions made on purpose can still fool)."""
    if is_content_hash(etag):
        return "ETag of a plain upload"
    if len(etag) == 24 and etag.endswith("=="):
        return "MD5 of the bytes (md5Hash)"
    return "multipart ETag"
