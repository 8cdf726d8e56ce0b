"""A tiny Azure Blob endpoint on loopback, for the answers Azurite never gives: a blob
under a legal hold or an immutability policy (Azurite answers "Current API is not
implemented yet" to setting a legal hold, and deletes the blob), and the 409 a delete of
one gets.

It keeps blobs in memory, answers the few requests an ``az://`` root and bucket retention
make through azure-storage-blob (list blobs in one page, get properties, put, copy from
URL, delete), lets a test rewrite a listing into one Azure should never send, ignores the shared-key
signature, and logs each request.  Error answers carry ``x-ms-error-code`` and the XML
body Azure sends.  Clients find it through ``AZURE_STORAGE_CONNECTION_STRING``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from tests.loopback import serving

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account (the fake checks no signature)."""

LEGAL_HOLD_MESSAGE = (
    "This operation is not permitted as the blob is immutable due to one or more legal holds."
)
POLICY_MESSAGE = "This operation is not permitted as the blob is immutable due to a policy."


@dataclass
class Blob:
    body: bytes
    etag: str
    headers: dict[str, str] = field(default_factory=dict)
    """Extra property headers (``x-ms-legal-hold``, ``x-ms-immutability-policy-until-date``)."""


@dataclass
class FakeAzure:
    """The endpoint's state: blobs of one container by name, the deletes refused with an
    ``(status, code, message)`` for every blob or for some, and each request seen as
    ``(method, blob name)``."""

    container: str = "held"
    blobs: dict[str, Blob] = field(default_factory=dict)
    refuse_every_delete: tuple[int, str, str] | None = None
    """A container-wide policy: every delete, new blobs' too, refused so."""
    refuse_delete: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    rewrite_listing: Callable[[str], str] | None = None
    """Applied to each List Blobs answer's XML before it is sent (a malformed entry)."""
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _etag: int = 0

    def put(self, name: str, body: bytes, **headers: str) -> Blob:
        with self.lock:
            self._etag += 1
            blob = Blob(body, f'"0x8DD{self._etag:012X}"', dict(headers))
            self.blobs[name] = blob
            return blob


def error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


def blob_name(path: str, prefix: str) -> str:
    """The blob a request path names as the Blob service reads it, or ``""`` for none of
    the container's: percent-decoded, ``\\`` read as ``/``, then its ``.`` and ``..``
    parts resolved (encoded ones too; requests resolved the literal ones already)."""
    parts = unquote(path).replace("\\", "/").split("/")
    resolved: list[str] = []
    for part in parts:
        if part == "..":
            if len(resolved) > 1:
                resolved.pop()
        elif part != ".":
            resolved.append(part)
    full = "/".join(resolved) + ("/" if parts[-1] in (".", "..") else "")
    return full[len(prefix) :] if full.startswith(prefix) else ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 2.0
    """An idle kept-alive connection ends: its thread would otherwise outlive the test
    (the client pools it), and a process with a second thread alive never forks."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``FakeAzure.seen``."""

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-version", "2025-01-05")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        headers = {"x-ms-error-code": code, "Content-Type": "application/xml"}
        self._answer(status, headers, error_xml(code, message))

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        prefix = f"/{ACCOUNT}/{fake.container}/"
        name = blob_name(url.path, prefix)
        with fake.lock:
            fake.seen.append((self.command, name))
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == f"/{ACCOUNT}/{fake.container}" and query.get("comp") == "list":
            self._answer(200, {"Content-Type": "application/xml"}, _listing(fake, query))
            return
        if not name:
            self._error(400, "InvalidUri", "not a request this fake knows")
            return
        stamp = formatdate(usegmt=True)
        if self.command == "PUT":
            source = self.headers.get("x-ms-copy-source")
            if source:
                copied = fake.blobs[blob_name(urlsplit(source).path, prefix)]
                blob = fake.put(name, copied.body)
                headers = {"ETag": blob.etag, "Last-Modified": stamp, "x-ms-copy-id": "c1"}
                self._answer(202, {**headers, "x-ms-copy-status": "success"})
            else:
                blob = fake.put(name, data)
                self._answer(201, {"ETag": blob.etag, "Last-Modified": stamp})
            return
        found = fake.blobs.get(name)
        if found is None:
            self._error(404, "BlobNotFound", "The specified blob does not exist.")
        elif self.command == "HEAD":
            headers = {"Content-Length": str(len(found.body)), "ETag": found.etag}
            headers |= {"Last-Modified": stamp, "x-ms-blob-type": "BlockBlob", **found.headers}
            self._answer(200, headers)
        elif self.command == "DELETE":
            refusal = fake.refuse_delete.get(name) or fake.refuse_every_delete or _held(found)
            if refusal is not None:
                self._error(*refusal)
                return
            with fake.lock:
                del fake.blobs[name]
            self._answer(202, {})
        elif self.command == "GET":
            self._download(found, stamp)
        else:
            self._error(400, "UnsupportedHttpVerb", "not a request this fake knows")

    def _download(self, found: Blob, stamp: str) -> None:
        """Get Blob, whole or a ``bytes=lo-hi`` range, matched against ``If-Match``."""
        pinned = self.headers.get("If-Match")
        if pinned is not None and pinned not in ("*", found.etag):
            self._error(412, "ConditionNotMet", "The condition specified was not met.")
            return
        body = found.body
        headers = {"ETag": found.etag, "Last-Modified": stamp, "x-ms-blob-type": "BlockBlob"}
        wanted = self.headers.get("x-ms-range") or self.headers.get("Range") or ""
        if not wanted.startswith("bytes="):
            self._answer(200, headers, body)
            return
        first, _, last = wanted[len("bytes=") :].partition("-")
        lo, hi = int(first), min(int(last) if last else len(body) - 1, len(body) - 1)
        if lo >= len(body):
            self._error(416, "InvalidRange", "The range specified is invalid.")
            return
        headers["Content-Range"] = f"bytes {lo}-{hi}/{len(body)}"
        self._answer(206, headers, body[lo : hi + 1])

    do_HEAD = do_PUT = do_DELETE = do_GET = _handle


MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


def _listing(fake: FakeAzure, query: dict[str, str]) -> bytes:
    """A List Blobs answer (one page, whatever ``maxresults`` says)."""
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    with fake.lock:
        blobs = dict(fake.blobs)
        rewrite = fake.rewrite_listing
    body = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<EnumerationResults ContainerName="{fake.container}">',
        f"<Prefix>{escape(prefix)}</Prefix><Blobs>",
    ]
    prefixes: set[str] = set()
    for name in sorted(n for n in blobs if n.startswith(prefix)):
        below = name[len(prefix) :]
        if delimiter and delimiter in below:
            common = prefix + below.split(delimiter)[0] + delimiter
            if common not in prefixes:
                prefixes.add(common)
                body.append(f"<BlobPrefix><Name>{escape(common)}</Name></BlobPrefix>")
            continue
        blob = blobs[name]
        body.append(
            f"<Blob><Name>{escape(name)}</Name><Properties>"
            f"<Last-Modified>{MODIFIED}</Last-Modified><Etag>{blob.etag}</Etag>"
            f"<Content-Length>{len(blob.body)}</Content-Length>"
            "<BlobType>BlockBlob</BlobType></Properties></Blob>"
        )
    body.append("</Blobs><NextMarker /></EnumerationResults>")
    text = "".join(body)
    return (rewrite(text) if rewrite is not None else text).encode()


def _held(blob: Blob) -> tuple[int, str, str] | None:
    """The 409 Azure answers a delete of this blob with, from its own hold or policy."""
    if blob.headers.get("x-ms-legal-hold") == "true":
        return 409, "BlobImmutableDueToLegalHold", LEGAL_HOLD_MESSAGE
    until = blob.headers.get("x-ms-immutability-policy-until-date")
    if until and parsedate_to_datetime(until) > datetime.now(timezone.utc):
        return 409, "BlobImmutableDueToPolicy", POLICY_MESSAGE
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeAzure


@pytest.fixture
def fake_azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    """A ``FakeAzure`` on 127.0.0.1:<free port>, ``AZURE_STORAGE_CONNECTION_STRING``
    pointing at it."""
    pytest.importorskip("azure.storage.blob", reason="pip install '.[azure]'")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeAzure()
    with serving(server) as port:
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={endpoint};"
        )
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        yield server.fake
