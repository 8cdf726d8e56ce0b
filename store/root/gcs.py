"""The GCS backend of ``ObjectRoot`` (``gs://bucket/prefix``), through gcsfs's JSON API
session.

Identity is the object's ``generation``: GCS gives every write of an object's bytes a new
one, and only then.  The ``metageneration`` (and the JSON ``etag``, which follows it)
changes on a metadata edit as well, which changes no byte, so it is left out, as S3's
identity leaves the VersionId out: an index re-reads nothing after a label change.
Reads are pinned twice: ``generation=N`` asks for exactly those bytes and
``ifGenerationMatch=N`` for nothing if the live object is another; the answer's
``X-Goog-Generation`` is checked as well.  An object overwritten mid-read raises
``ChangedError``.  The ``md5Hash`` (absent on composite objects) is the content hash.

Credentials and endpoint are read the way Google's SDKs read them: Application Default
Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default
login``, the metadata server on Google Cloud), and ``STORAGE_EMULATOR_HOST`` for an
emulator, which, as in google-cloud-storage, is spoken to without credentials.

Retention trashes by copy (``rewriteTo`` pinned by ``ifSourceGenerationMatch`` and
``sourceGeneration``) then delete (``ifGenerationMatch``): GCS has no delete markers to
remove, so a versioned bucket is trashed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import warnings
from datetime import datetime, timezone
from typing import Any

from store.root.backend import (
    LockedError,
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
from store.safeparse import load_json

REWRITE_ROUNDS = 1000
"""A rewrite of a large object may take several calls (each resumes from a token): more
than this many is refused rather than looped on."""

CONNECT_SECONDS = 5.0
"""A connection (name lookup included) not made in this long failed: aiohttp waits 30 s
by default, and an address that drops packets would hold a root for minutes."""

CONNECT_TRIES = 2
"""Attempts at a connection refused or not made in time: nothing listening at the
endpoint fails within about a second (gcsfs's own six tries took 34 s)."""

READ_SECONDS = 30.0
"""A server silent this long in the middle of an answer has dropped the request."""

RETRY_SECONDS = 30.0
"""The most time a request spends retrying a reachable server's transient answers (408,
429, 5xx) and dropped connections before its one-line error."""

BACKOFF_FIRST = 0.5
BACKOFF_CAP = 8.0
"""Waits between attempts double from the first to the cap, each jittered down to half."""

TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
"""Answers that say "try again" (Google's retry guidance for the JSON API)."""

MAX_BODY = 65 * 1024 * 1024
"""The longest answer read: a ranged GET asks for at most 64 MiB, a listing page of
1,000 objects is about 1 MiB; a server sending more is refused, not buffered."""

LOCK_REASONS = ("retentionPolicyNotMet", "objectUnderActiveHold")
"""The ``reason`` of a 403 that a hold or a retention period answered (not a missing
permission)."""


def _mtime_ns(value: object) -> int:
    """RFC 3339 ``updated`` (``…T07:29:03.768338Z``) as ns; 0 where unreadable (Python
    3.10's ``fromisoformat`` takes neither ``Z`` nor more than 6 digits of fraction)."""
    if not isinstance(value, str) or not value:
        return 0
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        zone = rest.lstrip("0123456789")  # the fraction's digits, then +00:00 or nothing
        digits = rest[: len(rest) - len(zone)]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1_000_000_000)


def _generation(value: object, what: str) -> str:
    """An object's generation (a decimal string in the JSON API; an int taken too),
    checked: it is the identity an index keeps and the pin of every read, so a missing or
    malformed one is a ``RootError`` naming ``what``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        return value
    raise RootError(f"{what}: the store sent no usable generation ({str(value)[:40]!r})")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _header(headers: Any, name: str) -> str:
    value = headers.get(name) if headers is not None else None
    return str(value) if value is not None else ""


class GCSBackend:
    """One GCS bucket through a gcsfs filesystem (its aiohttp session and credentials)."""

    scheme = "gs"

    def __init__(self, bucket: str, stats: Stats, *, fs: Any = None) -> None:
        self.bucket = bucket
        self.stats = stats
        self._fs = fs

    @property
    def fs(self) -> Any:
        """The gcsfs filesystem, made on first use: finding credentials may ask the
        metadata server, which a root that is never read should not wait for."""
        if self._fs is None:
            self._fs = _gcsfs()
        return self._fs

    # -- requests -----------------------------------------------------------------

    def request(
        self, op: str, method: str, path: str, *args: str, **kwargs: Any
    ) -> tuple[Any, bytes]:
        """One JSON API request, counted (each attempt): ``(headers, body)``.  A 404 is
        ``NotFound``, a failed precondition (412) ``ChangedError``, a hold or retention
        refusal ``LockedError``, anything else one-line ``RootError``.

        Retries are ours, not gcsfs's (six tries over half a minute, whatever failed): a
        connection refused or not made within ``CONNECT_SECONDS`` is tried
        ``CONNECT_TRIES`` times, so an unreachable endpoint fails in seconds; a reachable
        server's transient answer (408, 429, 5xx) or a dropped connection is retried with
        backoff for at most ``RETRY_SECONDS``."""
        where = f"gs://{self.bucket}/{args[1] if len(args) > 1 else kwargs.get('prefix', '')}"
        fs = self.fs
        import aiohttp

        connect_errors: tuple[type[BaseException], ...] = (
            aiohttp.ClientConnectorError,
            *_connect_timeouts(aiohttp),
        )
        deadline = time.monotonic() + RETRY_SECONDS
        connects = waits = 0
        while True:
            self.stats.add(requests=1, op=op)
            try:
                status, headers, body = _sync(fs, method, path, args, kwargs)
            except connect_errors as exc:
                connects += 1
                error = RootError(f"{where}: {op} failed: {_one_line(exc)}")
                if connects >= CONNECT_TRIES:
                    raise error from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = RootError(f"{where}: {op} failed: {_one_line(exc)}")
            except _BodyTooLarge:
                raise RootError(f"{where}: {op}: an answer over {MAX_BODY} bytes") from None
            except Exception as exc:  # google-auth refreshing a token, gcsfs building the URL
                raise RootError(f"{where}: {op} failed: {_one_line(exc)}") from None
            else:
                if status < 300:
                    return headers, body
                error = _status_error(status, body, f"{where}: {op}")
                if status not in TRANSIENT:
                    raise error from None
            wait = min(BACKOFF_CAP, BACKOFF_FIRST * 2**waits) * random.uniform(0.5, 1.0)
            if time.monotonic() + wait > deadline:
                raise error from None
            waits += 1
            time.sleep(wait)

    def _json(self, op: str, method: str, path: str, *args: str, **kwargs: Any) -> dict[str, Any]:
        _, body = self.request(op, method, path, *args, **kwargs)
        try:
            answer = load_json(body) if body else {}
        except ValueError:
            raise RootError(f"gs://{self.bucket}: {op}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise RootError(f"gs://{self.bucket}: {op}: the answer is not an object")
        return answer

    def info(self, obj: object, *, listed: bool = False) -> ObjectInfo:
        """An ``ObjectInfo`` from an object resource (a listing item or a metadata GET);
        one without a usable name, size or generation (or, ``listed``, ``updated``) is a
        ``RootError``, never an object of size 0 or of no identity."""
        if not isinstance(obj, dict):
            raise RootError(f"gs://{self.bucket}: an object resource that is no object")
        name = text_field(obj.get("name"), f"gs://{self.bucket}: name")
        where = f"gs://{self.bucket}/{name!r}"
        generation = _generation(obj.get("generation"), f"{where}: generation")
        mtime = _mtime_ns(obj.get("updated"))
        if listed:
            mtime = listed_mtime(mtime, obj.get("updated"), f"{where}: updated")
        md5 = obj.get("md5Hash")
        return ObjectInfo(
            name,
            size_field(obj.get("size"), f"{where}: size"),
            str(md5) if md5 else str(obj.get("etag", "")),
            generation,
            generation,
            mtime,
            generation,
            bool(md5),
            obj,
        )

    # -- the backend contract ----------------------------------------------------

    def list_page(
        self, prefix: str, *, delimiter: str | None, token: str | None, max_keys: int
    ) -> Page:
        params: dict[str, Any] = {"prefix": prefix, "maxResults": max_keys}
        if delimiter:
            params["delimiter"] = delimiter
        if token:
            params["pageToken"] = token
        page = self._json("objects.list", "GET", "b/{}/o", self.bucket, **params)
        where = f"gs://{self.bucket}/{prefix}: objects.list"
        items = listed_items(page.get("items"), f"{where}: items")
        prefixes = listed_items(page.get("prefixes"), f"{where}: prefixes")
        token = page.get("nextPageToken")
        if token == "":
            token = None  # as an absent one: the last page
        return Page(
            [self.info(o, listed=True) for o in items],
            [text_field(p, f"{where}: prefix") for p in prefixes],
            text_field(token, f"{where}: nextPageToken") if token is not None else None,
        )

    def head(self, key: str, *, version: str | None = None) -> ObjectInfo:
        self._check(key)
        params = {"generation": version} if version else {}
        return self.info(self._json("objects.get", "GET", "b/{}/o/{}", self.bucket, key, **params))

    def get_range(
        self, key: str, start: int, end: int, *, pin: ObjectInfo | None
    ) -> tuple[ObjectInfo | None, int, bytes]:
        self._check(key)
        params: dict[str, Any] = {"alt": "media"}
        if pin is not None:
            params["generation"] = pin.pin
            params["ifGenerationMatch"] = pin.pin
        try:
            headers, data = self.request(
                "objects.get_media",
                "GET",
                "b/{}/o/{}",
                self.bucket,
                key,
                headers={"Range": f"bytes={start}-{end}"},
                **params,
            )
        except _EmptyRange:
            return None, 0, b""
        except (NotFound, ChangedError) as exc:
            if pin is None:
                raise
            raise ChangedError(
                f"gs://{self.bucket}/{key!r} changed mid-read (generation no longer {pin.pin})"
            ) from exc
        generation = _header(headers, "X-Goog-Generation")
        if pin is not None and generation and generation != pin.pin:
            raise ChangedError(
                f"gs://{self.bucket}/{key!r} changed mid-read (generation {generation}, "
                f"not {pin.pin})"
            )
        total = range_total(_header(headers, "Content-Range"))
        if total is not None:
            size = total
        else:  # the whole object came back (no Range honoured): keep only what was asked
            size = len(data)
            data = data[start : end + 1]
        self.stats.add(nbytes=len(data))
        if pin is not None:
            return pin, size, data
        etag = _header(headers, "ETag").strip('"')
        info = ObjectInfo(key, size, etag, generation, generation, 0, generation or None, False, {})
        return info, size, data

    def versioned(self) -> bool:
        """Always False: a GCS delete leaves no marker to remove (a versioned bucket keeps
        a noncurrent generation instead), so retention trashes by copy here."""
        return False

    def put(self, key: str, body: bytes) -> None:
        self._check(key)
        self.request(
            "objects.insert",
            "POST",
            f"{self.fs._location}/upload/storage/v1/b/{{}}/o",
            self.bucket,
            uploadType="media",
            name=key,
            data=body,
            headers={"Content-Type": "application/octet-stream"},
        )

    def copy(self, source: str, target: str, size: int, *, pin: str) -> str:
        """``rewriteTo`` of exactly generation ``pin`` while it is the live one, resumed
        until done (large objects take several calls); the copy's generation.

        Retention copies only to delete the source next, which a hold or a retention period
        refuses: such a source raises ``LockedError`` naming it before anything is copied
        (one metadata GET), so a held object comes out ``locked``, not a copy left behind."""
        self._check(source, target)
        lock = _lock_reason(self.head(source, version=pin).raw)
        if lock:
            raise LockedError(f"gs://{self.bucket}/{source!r}: {lock}")
        params: dict[str, Any] = {"sourceGeneration": pin, "ifSourceGenerationMatch": pin}
        for _ in range(REWRITE_ROUNDS):
            answer = self._json(
                "objects.rewrite",
                "POST",
                "b/{}/o/{}/rewriteTo/b/{}/o/{}",
                self.bucket,
                source,
                self.bucket,
                target,
                headers={"Content-Type": "application/json"},
                **params,
            )
            if answer.get("done"):
                resource = answer.get("resource") or {}
                return str(resource.get("generation", ""))
            token = answer.get("rewriteToken")
            if not token:
                raise RootError(f"gs://{self.bucket}/{source}: rewrite neither done nor resumable")
            params["rewriteToken"] = token
        raise RootError(f"gs://{self.bucket}/{source}: rewrite not done after {REWRITE_ROUNDS}")

    def delete(self, key: str, *, pin: str | None = None, version: str | None = None) -> str | None:
        self._check(key)
        params: dict[str, Any] = {}
        if pin is not None:
            params["ifGenerationMatch"] = pin
        if version is not None:
            params["generation"] = version
        # a 404 is done, by this delete or another: a DELETE whose answer was lost is sent
        # again (aiohttp repeats one whose connection dropped, unseen here) and answered 404;
        # taking that for "gone since the plan" would have bucket trash remove its copy
        with contextlib.suppress(NotFound):
            self.request("objects.delete", "DELETE", "b/{}/o/{}", self.bucket, key, **params)
        return None

    def unsafe_key(self, key: str) -> str | None:
        """A name GCS gives no object (empty, ``.`` or ``..``): gcsfs encodes every ``/``
        of a name in the URL, so only a whole name can be a dot part there, and aiohttp
        resolves it: ``b/B/o/..`` is the bucket itself (a DELETE of it deletes the
        bucket), ``b/B/o/.`` its listing."""
        if key in ("", ".", ".."):
            return f"GCS names no object {key!r}: its URL would name the bucket or its listing"
        return None

    def _check(self, *keys: str) -> None:
        """``RootError`` before any request for a key ``unsafe_key`` refuses."""
        for key in keys:
            why = self.unsafe_key(key)
            if why is not None:
                raise RootError(f"gs://{self.bucket}/{key!r}: {why}: not sent")

    def lock_of(self, key: str, version: str) -> str:
        """Object holds and retention, from the generation's metadata (one request)."""
        try:
            obj = self.head(key, version=version).raw
        except RootError:
            return ""
        lock = _lock_reason(obj)
        return f"{lock}: not purged" if lock else ""


def _lock_reason(obj: Any) -> str:
    """Why GCS would refuse to delete this object now (its resource's temporary or
    event-based hold, a retention time still ahead: the bucket's policy or the object's
    own), or ``""``."""
    if obj.get("temporaryHold"):
        return "temporary hold"
    if obj.get("eventBasedHold"):
        return "event-based hold"
    retention = obj.get("retention")
    until = obj.get("retentionExpirationTime") or (
        retention.get("retainUntilTime") if isinstance(retention, dict) else None
    )
    now = int(datetime.now(timezone.utc).timestamp() * 1e9)
    if isinstance(until, str) and _mtime_ns(until) > now:
        return f"retention until {until}"
    return ""


class _EmptyRange(RootError):
    """416: the object is empty, so no range of it exists."""


def _connect_timeouts(aiohttp: Any) -> tuple[type[BaseException], ...]:
    """aiohttp's connect timeout (3.10 on; before, a connect and a read timeout were one
    ``ServerTimeoutError`` and such a timeout is retried as a dropped connection)."""
    kind = getattr(aiohttp, "ConnectionTimeoutError", None)
    return (kind,) if isinstance(kind, type) else ()


def _sync(
    fs: Any, method: str, path: str, args: tuple[str, ...], kwargs: dict[str, Any]
) -> tuple[int, Any, bytes]:
    """One attempt of a request on gcsfs's event loop: ``(status, headers, body)``."""
    from fsspec.asyn import sync

    answer: tuple[int, Any, bytes] = sync(fs.loop, _send, fs, method, path, args, kwargs)
    return answer


async def _send(
    fs: Any, method: str, path: str, args: tuple[str, ...], kwargs: dict[str, Any]
) -> tuple[int, Any, bytes]:
    """One request through gcsfs's session, URL building and credentials, without its
    retries (``request`` has its own) and with a connect timeout; the body is read up to
    ``MAX_BODY``."""
    import aiohttp

    kwargs = dict(kwargs)
    headers = kwargs.pop("headers", None)
    data = kwargs.pop("data", None)
    await fs._set_session()
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS, sock_read=READ_SECONDS)
    async with fs.session.request(
        method=method,
        url=fs._format_path(path, args),
        params=fs._get_params(kwargs),
        headers=fs._get_headers(headers),
        data=data,
        timeout=timeout,
    ) as answer:
        body = bytearray()
        while chunk := await answer.content.read(1024 * 1024):
            body += chunk
            if len(body) > MAX_BODY:
                raise _BodyTooLarge
        return answer.status, answer.headers, bytes(body)


class _BodyTooLarge(Exception):
    """The answer went past ``MAX_BODY``."""


def _status_error(status: int, body: bytes, what: str) -> RootError:
    """The error an HTTP error answer means, its message from the JSON error body (one
    line): 404 ``NotFound``, 412 ``ChangedError``, 416 ``_EmptyRange``, a 403 of a hold or
    a retention period ``LockedError`` naming it, else ``RootError`` with the status."""
    message, reasons = _error_body(body)
    if status == 404:
        return NotFound(f"{what} failed: not found")
    if status == 412:
        return ChangedError(f"{what} failed: precondition failed")
    if status == 416:
        return _EmptyRange(what)
    if status == 403 and (set(reasons) & set(LOCK_REASONS) or _held(message)):
        return LockedError(f"{what} refused: {message or 'a hold or retention period'}")
    return RootError(f"{what} failed: {status} {message}".rstrip())


def _error_body(body: bytes) -> tuple[str, list[str]]:
    """``(message, reasons)`` of a JSON API error answer (``{"error": {"message": ...,
    "errors": [{"reason": ...}]}}``); a body that is not one gives its first line."""
    text = body[:4096].decode("utf-8", "replace")
    try:
        error = load_json(body).get("error") if len(body) <= 65536 else None
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str):
        return _first_line(error), []
    if not isinstance(error, dict):
        return _first_line(text), []
    items = error.get("errors")
    reasons = (
        [str(e.get("reason")) for e in items if isinstance(e, dict)]
        if isinstance(items, list)
        else []
    )
    return _first_line(str(error.get("message", ""))), reasons


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def _held(message: str) -> bool:
    """Whether a 403's message is GCS's for a hold or a retention period (``Object 'b/o'
    is under active Temporary hold ...``, ``... is subject to bucket's retention policy and
    cannot be deleted ...``), for answers whose reason says only ``forbidden``."""
    text = message.lower()
    held = "under active" in text and "hold" in text
    retained = "retention" in text and "cannot be deleted" in text
    return held or retained


_CLIENT_ENV = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")
_CLIENTS: dict[tuple[str | None, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _gcsfs() -> Any:
    """A gcsfs filesystem, one per credentials environment (see the module docstring)."""
    try:
        with warnings.catch_warnings():
            # google-api-core warns at import, on stderr, that this Python (3.10) will get
            # no more updates of theirs: a note for the user's pip, not for each command
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
            import gcsfs
    except ImportError:
        raise RootError("gs:// roots need the gcs extra: pip install 'artlens[gcs]'") from None
    # gcsfs logs a traceback for every error answer it does not retry (a 416 on an empty
    # object, a 403): with no handler of the caller's, Python would print it on stderr
    logging.getLogger("gcsfs").addHandler(logging.NullHandler())
    env = tuple(os.environ.get(name) for name in _CLIENT_ENV)
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")
    with _CLIENTS_LOCK:
        fs = _CLIENTS.get(env)
        if fs is None:
            try:
                fs = gcsfs.GCSFileSystem(
                    token="anon" if emulator else None, skip_instance_cache=True
                )
            except Exception as exc:  # google-auth's errors, a malformed key file
                raise RootError(f"gs://: no usable credentials: {_one_line(exc)}") from None
            _CLIENTS[env] = fs
        return fs
