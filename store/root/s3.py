"""The S3 backend of ``ObjectRoot``, through s3fs/botocore (and any S3-compatible server
through ``AWS_ENDPOINT_URL``).

Identity is the ``ETag`` alone, from a listing and a HEAD alike.  The VersionId is not
part of it: only a versions listing gives it per key, at a page per thousand old versions
too (and moto cannot list versions of keys holding control characters); an upload of the
same bytes keeps its identity, which is what an index wants.  Reads pin the ETag
(``If-Match``) and the VersionId where there is one.  A multipart ETag (``"…-N"``) is
not a content hash: ``is_content_hash`` says which are.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from typing import Any

from store.root.backend import (
    ObjectInfo,
    Page,
    Stats,
    listed_items,
    listed_mtime,
    range_total,
    size_field,
    text_field,
)
from store.root.base import ChangedError, NotFound, RootError

COPY_PART = 5 * 1024**3
"""S3's largest single-request copy: bigger objects are copied part by part."""

PART_SIZE = 1024**3
"""Part size of a multipart server-side copy."""

CONNECT_SECONDS = 5.0
"""A connection not made in this long failed (botocore's connect timeout)."""

READ_SECONDS = 30.0
"""A server silent this long in the middle of an answer has dropped the request."""

ATTEMPTS = 3
"""Attempts per request, retries by botocore's ``standard`` mode (connection failures,
throttling, 5xx) with its jittered backoff of at most 1 s, then 2 s: an endpoint nothing
listens on fails in about 3 s, with s3fs's own retry loop (five more rounds of those)
turned off.  ``AWS_MAX_ATTEMPTS`` or ``AWS_RETRY_MODE`` in the environment win."""


def is_content_hash(etag: str) -> bool:
    """Whether an ETag is the MD5 of the bytes: a multipart ETag (``…-N``) is not, so two
    objects with one multipart ETag are only probably the same."""
    tag = etag.strip('"')
    return len(tag) == 32 and "-" not in tag


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


def _version(response: dict[str, Any]) -> str | None:
    version = response.get("VersionId")
    return str(version) if version and version != "null" else None


def _total_size(response: dict[str, Any], got: int) -> int:
    """The object's size from a ranged GET's ``Content-Range: bytes a-b/TOTAL`` (or from a
    HEAD's ``ContentLength``)."""
    total = range_total(response.get("ContentRange"))
    if total is not None:
        return total
    return size_field(response.get("ContentLength", got), "ContentLength")


def _failures() -> tuple[type[BaseException], ...]:
    """What a failed request raises: s3fs's translations (``OSError``, ``ValueError``) and
    botocore's own errors, which s3fs passes on as they are (``EndpointConnectionError``
    is neither: it was a traceback).  Called only once something was raised, so importing
    this module does not import botocore."""
    from botocore.exceptions import BotoCoreError

    return (OSError, ValueError, BotoCoreError)


def _root_error(op: str, kwargs: dict[str, Any], exc: BaseException) -> RootError:
    where = kwargs.get("Key") or kwargs.get("Prefix") or ""
    bucket = kwargs.get("Bucket", "")
    code = _error_code(exc)
    kind = NotFound if isinstance(exc, FileNotFoundError) else RootError
    if op == "head_object" and kwargs.get("VersionId") and code in ("405", "MethodNotAllowed"):
        kind = NotFound  # that version is a delete marker: no object there
    error = kind(f"s3://{bucket}/{where}: {op} failed: {code or _one_line(exc)}")
    error.__cause__ = exc
    return error


class S3Backend:
    """One S3 bucket through an s3fs filesystem (its botocore client and event loop)."""

    scheme = "s3"

    def __init__(self, bucket: str, stats: Stats, *, fs: Any = None) -> None:
        self.bucket = bucket
        self.stats = stats
        self.fs = fs if fs is not None else _s3fs()
        self._versioned: bool | None = None

    # -- requests -----------------------------------------------------------------

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 request, counted; errors become ``RootError`` (``NotFound`` for a missing
        key or bucket)."""
        self.stats.add(requests=1, op=op)
        try:
            result: dict[str, Any] = self.fs.call_s3(op, **kwargs)
        except _failures() as exc:
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
        except _failures() as exc:
            raise _root_error("get_object", kwargs, exc) from exc
        self.stats.add(nbytes=len(data))
        return response, data

    def info(
        self, key: str, response: dict[str, Any], size: int, *, listed: bool = False
    ) -> ObjectInfo:
        """An ``ObjectInfo`` from a listing entry, a HEAD or a GET of ``key``; an answer
        without a usable ETag (or, ``listed``, LastModified) is a ``RootError``."""
        where = f"s3://{self.bucket}/{key!r}"
        etag = text_field(response.get("ETag"), f"{where}: ETag")
        if not etag.strip('"'):
            raise RootError(f"{where}: ETag: the store sent no usable value ({etag!r})")
        mtime = _mtime_ns(response.get("LastModified"))
        if listed:
            mtime = listed_mtime(mtime, response.get("LastModified"), f"{where}: LastModified")
        return ObjectInfo(
            key,
            size,
            etag,
            etag.strip('"'),
            etag,
            mtime,
            _version(response),
            is_content_hash(etag),
            response,
        )

    # -- the backend contract ----------------------------------------------------

    def list_page(
        self, prefix: str, *, delimiter: str | None, token: str | None, max_keys: int
    ) -> Page:
        """A plain listing page (``ListObjectsV2``), in a versioned bucket too: listing
        versions would cost a page per thousand old versions as well."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        page = self.call("list_objects_v2", **kwargs)
        next_token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if page.get("IsTruncated") and not next_token:
            # taken for the last page, the keys after it would read as deleted
            raise RootError(
                f"s3://{self.bucket}/{prefix}: list_objects_v2 failed: the page is truncated "
                "but carries no continuation token"
            )
        where = f"s3://{self.bucket}/{prefix}: list_objects_v2"
        objects = []
        for entry in listed_items(page.get("Contents"), f"{where}: Contents"):
            if not isinstance(entry, dict):
                raise RootError(f"{where}: an entry that is no object")
            key = text_field(entry.get("Key"), f"{where}: Key")
            size = size_field(entry.get("Size"), f"s3://{self.bucket}/{key!r}: Size")
            objects.append(self.info(key, entry, size, listed=True))
        prefixes = [
            text_field(
                common.get("Prefix") if isinstance(common, dict) else None, f"{where}: Prefix"
            )
            for common in listed_items(page.get("CommonPrefixes"), f"{where}: CommonPrefixes")
        ]
        return Page(objects, prefixes, next_token)

    def head(self, key: str, *, version: str | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        head = self.call("head_object", **kwargs)
        size = size_field(head.get("ContentLength"), f"s3://{self.bucket}/{key!r}: ContentLength")
        return self.info(key, head, size)

    def get_range(
        self, key: str, start: int, end: int, *, pin: ObjectInfo | None
    ) -> tuple[ObjectInfo | None, int, bytes]:
        kwargs: dict[str, Any] = {"Key": key, "Range": f"bytes={start}-{end}"}
        if pin is not None:
            kwargs["IfMatch"] = pin.pin
            if pin.version:
                kwargs["VersionId"] = pin.version
        try:
            response, data = self.get(**kwargs)
        except NotFound:
            if pin is None:
                raise
            raise ChangedError(f"s3://{self.bucket}/{key!r} was deleted mid-read") from None
        except RootError as exc:
            code = _error_code(exc)
            if code == "InvalidRange":
                return None, 0, b""  # an empty object: no range of it exists
            if pin is not None and code in ("PreconditionFailed", "NoSuchVersion", "NoSuchKey"):
                raise ChangedError(
                    f"s3://{self.bucket}: {key!r} changed mid-read (ETag no longer {pin.etag})"
                ) from None
            raise
        size = _total_size(response, len(data))
        return self.info(key, response, size), size, data

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

    def put(self, key: str, body: bytes) -> None:
        self.call("put_object", Bucket=self.bucket, Key=key, Body=body)

    def copy(self, source: str, target: str, size: int, *, pin: str) -> str:
        """A server-side copy (in parts above 5 GiB), only while the source has ``pin``."""
        try:
            return self._copy(source, target, size, pin)
        except RootError as exc:
            if _error_code(exc) == "PreconditionFailed":
                raise ChangedError(f"s3://{self.bucket}/{source}: overwritten") from None
            raise

    def _copy(self, source: str, target: str, size: int, if_match: str) -> str:
        src = {"Bucket": self.bucket, "Key": source}
        if size <= COPY_PART:
            answer = self.call(
                "copy_object",
                Bucket=self.bucket,
                Key=target,
                CopySource=src,
                CopySourceIfMatch=if_match,
            )
            return str(answer.get("CopyObjectResult", {}).get("ETag", if_match))
        upload = self.call("create_multipart_upload", Bucket=self.bucket, Key=target)
        parts = []
        try:
            for number, start in enumerate(range(0, size, PART_SIZE), 1):
                end = min(size, start + PART_SIZE) - 1
                part = self.call(
                    "upload_part_copy",
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    CopySource=src,
                    CopySourceRange=f"bytes={start}-{end}",
                    CopySourceIfMatch=if_match,
                )
                parts.append({"ETag": part["CopyPartResult"]["ETag"], "PartNumber": number})
            answer = self.call(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=target,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
        except RootError:
            self.call(
                "abort_multipart_upload",
                Bucket=self.bucket,
                Key=target,
                UploadId=upload["UploadId"],
            )
            raise
        return str(answer.get("ETag", ""))

    def delete(self, key: str, *, pin: str | None = None, version: str | None = None) -> str | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if pin is not None:
            kwargs["IfMatch"] = pin
        if version is not None:
            kwargs["VersionId"] = version
        try:
            answer = self.call("delete_object", **kwargs)
        except RootError as exc:
            if _error_code(exc) == "PreconditionFailed":
                raise ChangedError(f"s3://{self.bucket}/{key}: overwritten") from None
            raise
        return str(answer.get("VersionId")) if answer.get("DeleteMarker") else None

    def unsafe_key(self, key: str) -> str | None:
        """Only the empty key: S3 takes a key's ``.`` and ``..`` parts as they are, and
        aiobotocore sends the request path as botocore encoded it (``URL(...,
        encoded=True)``), never resolving them, so ``a/../b`` and ``b`` stay two keys."""
        return "an empty key" if not key else None

    def lock_of(self, key: str, version: str) -> str:
        """From the lock headers a HEAD of the version carries (one request, no lock API
        calls)."""
        try:
            head = self.call("head_object", Bucket=self.bucket, Key=key, VersionId=version)
        except RootError:
            return ""  # gone already, or not allowed to ask: the delete will say
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return "legal hold: not purged"
        until = head.get("ObjectLockRetainUntilDate")
        if until is not None and until.timestamp() > time.time():
            mode = head.get("ObjectLockMode", "retention")
            return f"object lock ({mode}) until {until.isoformat()}: not purged"
        return ""


_CLIENT_ENV = (
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
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
            config: dict[str, Any] = {
                "connect_timeout": CONNECT_SECONDS,
                "read_timeout": READ_SECONDS,
            }
            if not (os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE")):
                config["retries"] = {"mode": "standard", "total_max_attempts": ATTEMPTS}
            fs = s3fs.S3FileSystem(skip_instance_cache=True, config_kwargs=config)
            fs.retries = 1  # botocore retries (above); s3fs would repeat its rounds 5 times
            _CLIENTS[env] = fs
        return fs
