"""The Azure Blob backend of ``ObjectRoot`` (``az://container/prefix``), through
azure-storage-blob (which the ``[azure]`` extra brings with adlfs).

Identity is the blob's ETag: Azure gives a blob a new one on every write (and on a
metadata edit).  The version id, where blob versioning is on, is pinned on reads but not
part of the identity, as on S3.  Reads are ranged GETs with ``If-Match`` on that ETag: an
overwritten blob answers 412 and the reader raises ``ChangedError``.

Credentials are read the way the SDK's users set them: ``AZURE_STORAGE_CONNECTION_STRING``
(Azurite's included), else the account (``AZURE_STORAGE_ACCOUNT_NAME``, or
``az://container@account/prefix``) with ``AZURE_STORAGE_ACCOUNT_KEY``, or
``AZURE_STORAGE_SAS_TOKEN``, or else azure-identity's ``DefaultAzureCredential`` (the
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET`` variables, a managed
identity, ``az login``).

Retention trashes by copy (``start_copy_from_url`` with ``If-Match`` on the source) then
delete (``If-Match``): a delete in a versioned account leaves a previous version, not a
marker to remove.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from store.root.backend import (
    LockedError,
    ObjectInfo,
    Page,
    Stats,
    listed_mtime,
    range_total,
    size_field,
    text_field,
)
from store.root.base import ChangedError, NotFound, RootError

COPY_WAIT = 600.0
"""Seconds a pending server-side copy is waited for (same-account copies of small blobs
finish at once)."""

MAX_GET = 64 * 1024 * 1024 + 1
"""The SDK fetches a range up to this in one request (ObjectRoot reads at most 64 MiB)."""

CONNECT_SECONDS = 5.0
"""A connection not made in this long failed (the SDK waits 20 s)."""

READ_SECONDS = 30.0
"""A server silent this long in the middle of an answer has dropped the request."""

RETRIES = 3
"""Retries of a reachable server's transient answers (408, 429, 5xx) and dropped
connections, after 1, 3 and 5 s (jittered by half a second); a connection refused or not
made is retried once.  The SDK's default, 15 s then 18 and 24 s, took 86 s to say that
nothing listens at the endpoint."""


LOCK_CODES = frozenset({"BlobImmutableDueToPolicy", "BlobImmutableDueToLegalHold"})
"""The error codes (409) of a delete or overwrite that an immutability policy or a legal
hold refused."""


def _mtime_ns(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000_000)
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


class AzureBackend:
    """One blob container through azure-storage-blob's (sync) container client."""

    scheme = "az"

    def __init__(self, bucket: str, stats: Stats, *, fs: Any = None) -> None:
        self.bucket = bucket
        self.stats = stats
        container, _, account = bucket.partition("@")
        self.container_name = container
        self.account = account.split(".")[0] if account else ""
        self._client = fs

    @property
    def client(self) -> Any:
        """The container client, made on first use (DefaultAzureCredential may probe)."""
        if self._client is None:
            self._client = _service(self.account).get_container_client(self.container_name)
        return self._client

    def _call(self, op: str, where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One request, counted; 404 is ``NotFound``, 412 ``ChangedError``, 416 (an empty
        blob has no range) ``_EmptyRange``, anything else a one-line ``RootError``."""
        from azure.core.exceptions import (
            AzureError,
            HttpResponseError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        self.stats.add(requests=1, op=op)
        place = f"az://{self.bucket}/{where}"
        try:
            return fn(*args, **kwargs)
        except RootError:
            raise  # no client could be made: its own one line
        except ResourceNotFoundError as exc:
            raise NotFound(f"{place}: {op} failed: not found") from exc
        except ResourceModifiedError as exc:
            raise ChangedError(f"{place}: {op} failed: the blob changed (412)") from exc
        except HttpResponseError as exc:
            code = str(getattr(exc, "error_code", "") or "")
            if exc.status_code == 416 or code == "InvalidRange":
                raise _EmptyRange(place) from exc
            if code in LOCK_CODES:
                raise LockedError(f"{place}: {op} refused: {_one_line(exc)}") from exc
            raise RootError(f"{place}: {op} failed: {_one_line(exc)}") from exc
        except (AzureError, OSError, ValueError) as exc:
            raise RootError(f"{place}: {op} failed: {_one_line(exc)}") from exc

    def unsafe_key(self, key: str) -> str | None:
        """Why Azure would take ``key`` for another blob's name, or None.  The SDK puts a
        name in the URL with its ``/`` and ``.`` as they are; requests resolves ``.`` and
        ``..`` parts there, and the Blob service resolves them again (percent-encoded ones
        too), reads ``\\`` as ``/`` and advises against a part ending in ``.`` or a name
        ending in ``/``: ``p/../x`` is the blob ``x``, outside the prefix ``p``, and
        ``p/./x`` is ``p/x``.  Checked as sent and once percent-decoded; ``a//b`` is kept
        (the service keeps empty parts)."""
        if not key:
            return "an empty name"
        for form in dict.fromkeys((key, unquote(key))):
            if "\\" in form:
                return "a backslash in the name (Azure reads it as '/')"
            if form.endswith("/"):
                return "a name ending in '/' (Azure advises against it)"
            if any(part.endswith(".") for part in form.split("/")):
                return "a '.' or '..' part, or one ending in '.' (Azure resolves or trims those)"
        return None

    def _blob(self, key: str) -> Any:
        """The blob client of ``key``; ``RootError`` before any request where
        ``unsafe_key`` refuses it."""
        why = self.unsafe_key(key)
        if why is not None:
            raise RootError(f"az://{self.bucket}/{key!r}: {why}: not sent")
        return self.client.get_blob_client(key)

    def info(self, props: Any, *, size: int | None = None, listed: bool = False) -> ObjectInfo:
        """An ``ObjectInfo`` from a listing item's or a GET's ``BlobProperties``; one
        without a usable name, size or ETag (or, ``listed``, last-modified time) is a
        ``RootError``, never a blob named ``None`` or of no identity."""
        name = text_field(getattr(props, "name", None), f"az://{self.bucket}: name")
        where = f"az://{self.bucket}/{name!r}"
        etag = text_field(getattr(props, "etag", None), f"{where}: ETag")
        if not etag.strip('"'):
            raise RootError(f"{where}: ETag: the store sent no usable value ({etag!r})")
        mtime = _mtime_ns(getattr(props, "last_modified", None))
        if listed:
            mtime = listed_mtime(
                mtime, getattr(props, "last_modified", None), f"{where}: Last-Modified"
            )
        return ObjectInfo(
            name,
            size_field(getattr(props, "size", None), f"{where}: size") if size is None else size,
            etag,
            etag.strip('"'),
            etag,
            mtime,
            getattr(props, "version_id", None) or None,
            False,
            {
                "legal_hold": bool(getattr(props, "has_legal_hold", False)),
                "retain_until": getattr(
                    getattr(props, "immutability_policy", None), "expiry_time", None
                ),
            },
        )

    # -- the backend contract ----------------------------------------------------

    def list_page(
        self, prefix: str, *, delimiter: str | None, token: str | None, max_keys: int
    ) -> Page:
        from azure.storage.blob import BlobPrefix

        def page() -> tuple[list[Any], str | None]:
            if delimiter:
                pager = self.client.walk_blobs(
                    name_starts_with=prefix or None,
                    delimiter=delimiter,
                    results_per_page=max_keys,
                ).by_page(continuation_token=token)
            else:
                pager = self.client.list_blobs(
                    name_starts_with=prefix or None, results_per_page=max_keys
                ).by_page(continuation_token=token)
            try:
                items = list(next(pager, []))
            except (AttributeError, TypeError, KeyError, IndexError) as exc:
                # the SDK building its items from an answer missing what it assumes (a
                # blob without a name): a page that cannot be read whole fails the listing
                raise RootError(
                    f"az://{self.bucket}/{prefix}: list_blobs: a page the SDK cannot read "
                    f"({type(exc).__name__}: {_one_line(exc)})"
                ) from exc
            return items, pager.continuation_token or None

        items, next_token = self._call("list_blobs", prefix, page)
        objects, prefixes = [], []
        for item in items:
            if isinstance(item, BlobPrefix):
                prefixes.append(text_field(item.name, f"az://{self.bucket}/{prefix}: BlobPrefix"))
            else:
                objects.append(self.info(item, listed=True))
        return Page(objects, prefixes, next_token)

    def head(self, key: str, *, version: str | None = None) -> ObjectInfo:
        blob = self._blob(key)
        props = self._call("get_blob_properties", key, blob.get_blob_properties, version_id=version)
        return self.info(props)

    def get_range(
        self, key: str, start: int, end: int, *, pin: ObjectInfo | None
    ) -> tuple[ObjectInfo | None, int, bytes]:
        from azure.core import MatchConditions

        kwargs: dict[str, Any] = {"offset": start, "length": end - start + 1}
        if pin is not None:
            kwargs["etag"] = pin.pin
            kwargs["match_condition"] = MatchConditions.IfNotModified
            if pin.version:
                kwargs["version_id"] = pin.version
        blob = self._blob(key)

        def fetch() -> tuple[Any, bytes]:
            stream = blob.download_blob(**kwargs)
            return stream.properties, bytes(stream.readall())

        try:
            props, data = self._call("download_blob", key, fetch)
        except _EmptyRange:
            return None, 0, b""
        except (NotFound, ChangedError) as exc:
            if pin is None:
                raise
            raise ChangedError(
                f"az://{self.bucket}/{key!r} changed mid-read (ETag no longer {pin.etag})"
            ) from exc
        self.stats.add(nbytes=len(data))
        total = range_total(getattr(props, "content_range", ""))
        size = total if total is not None else size_field(props.size, f"az://{self.bucket}")
        if pin is not None:
            return pin, size, data
        return self.info(props, size=size), size, data

    def versioned(self) -> bool:
        """Always False: a delete leaves no marker to remove, so trash is a copy."""
        return False

    def put(self, key: str, body: bytes) -> None:
        blob = self._blob(key)
        self._call("upload_blob", key, blob.upload_blob, body, overwrite=True)

    def copy(self, source: str, target: str, size: int, *, pin: str) -> str:
        """A server-side copy of ``source`` while its ETag is ``pin``, waited for; the
        copy's ETag.

        Retention copies only to delete the source next, which a legal hold or an
        immutability policy on the blob refuses: such a source raises ``LockedError``
        naming it before anything is copied (one properties request).  A container-wide
        policy does not show in a blob's properties: there the delete's 409 says it."""
        from azure.core import MatchConditions

        now = self.head(source)
        lock = _lock_reason(now.raw) if now.pin == pin else ""  # else the copy says changed
        if lock:
            raise LockedError(f"az://{self.bucket}/{source!r}: {lock}")
        src = self._blob(source)
        dst = self._blob(target)
        answer = self._call(
            "start_copy_from_url",
            source,
            dst.start_copy_from_url,
            src.url,
            source_etag=pin,
            source_match_condition=MatchConditions.IfNotModified,
        )
        deadline = time.monotonic() + COPY_WAIT
        status = str(answer.get("copy_status") or "")
        etag = str(answer.get("etag") or "")
        while status == "pending":
            if time.monotonic() > deadline:
                raise RootError(f"az://{self.bucket}/{target}: copy still pending")
            time.sleep(0.5)
            props = self._call("get_blob_properties", target, dst.get_blob_properties)
            status, etag = str(props.copy.status or ""), str(props.etag)
        if status != "success":
            raise RootError(f"az://{self.bucket}/{target}: copy {status or 'failed'}")
        return etag

    def delete(self, key: str, *, pin: str | None = None, version: str | None = None) -> str | None:
        from azure.core import MatchConditions

        kwargs: dict[str, Any] = {}
        if pin is not None:
            kwargs["etag"] = pin
            kwargs["match_condition"] = MatchConditions.IfNotModified
        if version is not None:
            kwargs["version_id"] = version
        blob = self._blob(key)
        self._call("delete_blob", key, blob.delete_blob, **kwargs)
        return None

    def lock_of(self, key: str, version: str) -> str:
        """A legal hold or an immutability policy, from the version's properties."""
        try:
            raw = self.head(key, version=version).raw
        except RootError:
            return ""
        lock = _lock_reason(raw)
        return f"{lock}: not purged" if lock else ""


def _lock_reason(raw: Any) -> str:
    """Why Azure would refuse to delete this blob now (a legal hold, an immutability
    policy not yet expired), from its properties, or ``""``."""
    if raw.get("legal_hold"):
        return "legal hold"
    until = raw.get("retain_until")
    if isinstance(until, datetime) and until > datetime.now(timezone.utc):
        return f"immutability policy until {until.isoformat()}"
    return ""


class _EmptyRange(RootError):
    """416: the blob is empty, so no range of it exists."""


_CLIENT_ENV = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)
_CLIENTS: dict[tuple[str | None, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _service(account: str) -> Any:
    """A ``BlobServiceClient``, one per credentials environment (module docstring)."""
    try:
        from azure.storage.blob import BlobServiceClient, ExponentialRetry
    except ImportError:
        raise RootError("az:// roots need the azure extra: pip install 'artlens[azure]'") from None
    # the SDK logs each failed request at WARNING: with no handler of the caller's,
    # Python would print it on stderr beside the one-line error
    logging.getLogger("azure").addHandler(logging.NullHandler())
    env = (account, *(os.environ.get(name) for name in _CLIENT_ENV))
    options: dict[str, Any] = {
        "max_single_get_size": MAX_GET,
        "max_chunk_get_size": MAX_GET,
        "connection_timeout": CONNECT_SECONDS,
        "read_timeout": READ_SECONDS,
        "retry_policy": ExponentialRetry(
            initial_backoff=1,
            increment_base=2,
            retry_total=RETRIES,
            random_jitter_range=0.5,  # type: ignore[arg-type]  # typed int, used as a float
            retry_connect=1,
            retry_read=RETRIES,
            retry_status=RETRIES,
        ),
    }
    with _CLIENTS_LOCK:
        service = _CLIENTS.get(env)
        if service is not None:
            return service
        try:
            connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            name = account or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "")
            if connection and (not account or f"AccountName={account};" in connection):
                service = BlobServiceClient.from_connection_string(connection, **options)
            elif name:
                credential: Any = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY") or os.environ.get(
                    "AZURE_STORAGE_SAS_TOKEN"
                )
                if not credential:
                    from azure.identity import DefaultAzureCredential

                    credential = DefaultAzureCredential()
                url = f"https://{name}.blob.core.windows.net"
                service = BlobServiceClient(url, credential=credential, **options)
            else:
                raise RootError(
                    "az:// roots need AZURE_STORAGE_CONNECTION_STRING or an account "
                    "(AZURE_STORAGE_ACCOUNT_NAME, or az://container@account/prefix)"
                )
        except RootError:
            raise
        except Exception as exc:  # a malformed connection string, azure-identity missing
            raise RootError(f"az://: no usable credentials: {_one_line(exc)}") from None
        _CLIENTS[env] = service
        return service
