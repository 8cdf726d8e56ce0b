"""A tiny GCS JSON API on loopback, for the answers fake-gcs-server never gives: transient
errors (429, 503) before a good answer, and the 403 of an object under a hold or a
retention period (fake-gcs-server stores neither ``temporaryHold`` nor a retention policy:
a PATCH setting one is answered without it, and the object deletes).

It keeps objects in memory, answers the few requests a ``gs://`` root and bucket retention
make (objects.list, objects.get and its media, rewriteTo, delete, a media upload) and logs
each one; a test may rewrite a listing page into one GCS should never send.
Error bodies are shaped as real GCS sends them (``{"error": {"code", "message",
"errors": [{"reason", ...}]}}``).  Clients find it through ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.loopback import serving

HOLD_MESSAGE = (
    "Object '{bucket}/{name}' is under active {kind} hold and cannot be deleted, "
    "overwritten or archived until hold is removed."
)
RETENTION_MESSAGE = (
    "Object '{bucket}/{name}' is subject to bucket's retention policy and cannot be deleted, "
    "overwritten or archived until {until}"
)


def error_body(code: int, message: str, reason: str) -> bytes:
    """An error answer as GCS's JSON API words it."""
    item = {"message": message, "domain": "global", "reason": reason}
    return json.dumps({"error": {"code": code, "message": message, "errors": [item]}}).encode()


@dataclass
class FakeGCS:
    """The server's state: objects by name (resource and bytes), the statuses to answer
    the next requests with, and every request seen as ``(method, path)``."""

    bucket: str = "held"
    objects: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    refuse_delete: dict[str, bytes] = field(default_factory=dict)
    """Names whose DELETE is answered 403 with this body, whatever their metadata says."""
    drop_answers: int = 0
    """The next requests are carried out but answered by closing the connection (an answer
    lost on the way back)."""
    page_keys: int = 1000
    """Objects (and prefixes) per ``objects.list`` page."""
    rewrite_page: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Applied to each ``objects.list`` answer before it is sent (a malformed item)."""
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _generation: int = 1000

    def put(self, name: str, body: bytes, **meta: Any) -> dict[str, Any]:
        with self.lock:
            self._generation += 1
            resource = {
                "kind": "storage#object",
                "bucket": self.bucket,
                "name": name,
                "size": str(len(body)),
                "generation": str(self._generation),
                "metageneration": "1",
                "etag": f"e{self._generation}",
                "updated": "2026-12-01T10:00:00.000Z",
                **meta,
            }
            self.objects[name] = (resource, body)
            return resource

    def refusal(self, resource: dict[str, Any]) -> bytes | None:
        """The 403 body a delete of this object gets from GCS, or None."""
        name = resource["name"]
        if name in self.refuse_delete:
            return self.refuse_delete[name]
        for field_name, kind in (("temporaryHold", "Temporary"), ("eventBasedHold", "Event-Based")):
            if resource.get(field_name):
                message = HOLD_MESSAGE.format(bucket=self.bucket, name=name, kind=kind)
                return error_body(403, message, "retentionPolicyNotMet")
        until = resource.get("retentionExpirationTime")
        if until:
            message = RETENTION_MESSAGE.format(bucket=self.bucket, name=name, until=until)
            return error_body(403, message, "forbidden")
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``FakeGCS.seen``."""

    def _answer(self, status: int, body: bytes = b"", kind: str = "application/json") -> None:
        with self.server.fake.lock:
            drop = self.server.fake.drop_answers > 0
            self.server.fake.drop_answers -= drop
        if drop:
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        with fake.lock:
            fake.seen.append((self.command, url.path))
            status = fake.fail_next.pop(0) if fake.fail_next else 0
        if status:
            self._answer(status, error_body(status, "try again later", "backendError"))
            return
        parts = [unquote(p) for p in url.path.split("/")]
        if self.command == "GET" and len(parts) == 6 and parts[1:4] == ["storage", "v1", "b"]:
            self._answer(200, json.dumps(_listing(fake, query)).encode())
            return
        # /storage/v1/b/{bucket}/o/{name}[/rewriteTo/b/{bucket}/o/{target}]
        if parts[1:3] == ["upload", "storage"] and self.command == "POST":
            self._answer(200, json.dumps(fake.put(query["name"], data)).encode())
            return
        if len(parts) < 7 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o":
            self._answer(400, error_body(400, "not a request this fake knows", "invalid"))
            return
        name = parts[6]
        with fake.lock:
            found = fake.objects.get(name)
        if found is None:
            self._answer(404, error_body(404, "No such object", "notFound"))
            return
        resource, body = found
        generation = query.get("generation") or query.get("sourceGeneration")
        if generation and generation != resource["generation"]:
            self._answer(404, error_body(404, "No such object", "notFound"))
            return
        if self.command == "GET" and query.get("alt") == "media":
            self._answer(200, body, "application/octet-stream")
        elif self.command == "GET":
            self._answer(200, json.dumps(resource).encode())
        elif self.command == "POST" and len(parts) == 12 and parts[7] == "rewriteTo":
            copied = fake.put(parts[11], body)
            answer = {"done": True, "resource": copied}
            self._answer(200, json.dumps(answer).encode())
        elif self.command == "DELETE":
            refusal = fake.refusal(resource)
            if refusal is not None:
                self._answer(403, refusal)
                return
            with fake.lock:
                del fake.objects[name]
            self._answer(204)
        else:
            self._answer(400, error_body(400, "not a request this fake knows", "invalid"))

    do_GET = do_POST = do_DELETE = _handle


def _listing(fake: FakeGCS, query: dict[str, str]) -> dict[str, Any]:
    """An ``objects.list`` page: ``page_keys`` items and prefixes, in name order."""
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    start = int(query.get("pageToken") or 0)
    with fake.lock:
        resources = {name: dict(resource) for name, (resource, _) in fake.objects.items()}
        page_keys, rewrite = fake.page_keys, fake.rewrite_page
    entries: dict[str, dict[str, Any] | None] = {}  # name -> resource, None for a prefix
    for name in sorted(n for n in resources if n.startswith(prefix)):
        below = name[len(prefix) :]
        if delimiter and delimiter in below:
            entries.setdefault(prefix + below.split(delimiter)[0] + delimiter, None)
        else:
            entries[name] = resources[name]
    page = list(entries.items())[start : start + page_keys]
    answer: dict[str, Any] = {"kind": "storage#objects"}
    items = [resource for _, resource in page if resource is not None]
    prefixes = [name for name, resource in page if resource is None]
    if items:
        answer["items"] = items
    if prefixes:
        answer["prefixes"] = prefixes
    if start + page_keys < len(entries):
        answer["nextPageToken"] = str(start + page_keys)
    return rewrite(answer) if rewrite is not None else answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGCS


@pytest.fixture
def fake_gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGCS]:
    """A ``FakeGCS`` on 127.0.0.1:<free port>, ``STORAGE_EMULATOR_HOST`` pointing at it."""
    pytest.importorskip("gcsfs", reason="gcsfs is not installed (pip install '.[gcs]')")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeGCS()
    with serving(server) as port:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        yield server.fake
