"""A tiny S3 endpoint on loopback, for the listings moto never gives: a ``ListObjectsV2``
page that says it is truncated but carries no continuation token, a token that comes back
again (a listing that would loop for ever), and keys outside the prefix asked for (an
S3-compatible server ignoring ``prefix``).

It keeps objects in memory and answers ``ListObjectsV2`` (paged ``page_keys`` at a time,
whatever ``max-keys`` says), HEAD and GET of an object; it checks no signature and logs
each request.  Clients find it through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from tests.loopback import serving

BUCKET = "answers"
MODIFIED = "2026-12-01T10:00:00.000Z"
HTTP_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


@dataclass
class FakeS3:
    """The endpoint's state: objects by key, how listings misbehave, and each request seen
    as ``(method, path, query)``.

    ``fault`` is ``""`` (answer right), ``"no-token"`` (a truncated page without
    ``NextContinuationToken``), ``"same-token"`` (every page the first one, with the same
    token, up to ``loop_pages`` pages; then a last page), ``"cycle"`` (tokens ``a``, ``b``,
    ``a`` ... up to ``loop_pages`` pages), ``"outside"`` (the keys of ``outside`` listed
    too, whatever the prefix), ``"empty-first"`` (a listing's first page empty but
    truncated, as S3-compatible servers and GCS may send, then the right pages) or
    ``"empty-loop"`` (every page empty, truncated, with the same token)."""

    objects: dict[str, bytes] = field(default_factory=dict)
    page_keys: int = 2
    fault: str = ""
    loop_pages: int = 20
    outside: dict[str, bytes] = field(default_factory=dict)
    rewrite: Callable[[str], str] | None = None
    """Applied to each ``ListObjectsV2`` answer's XML before it is sent (a malformed
    entry: a missing ``Key`` or ``ETag``, a ``Size`` that is no size)."""
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lists(self) -> int:
        """ListObjectsV2 requests seen."""
        return sum(1 for _, _, query in self.seen if query.get("list-type") == "2")


def _etag(body: bytes) -> str:
    return '"' + hashlib.md5(body).hexdigest() + '"'


def _listing(fake: FakeS3, query: dict[str, str]) -> bytes:
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    token = query.get("continuation-token", "")
    with fake.lock:
        objects = dict(fake.objects)
        if fake.fault == "outside":
            objects.update(fake.outside)
        fault, loop_pages, page_keys = fake.fault, fake.loop_pages, fake.page_keys
        rewrite = fake.rewrite
        lists = fake.lists()
    keys = sorted(k for k in objects if k.startswith(prefix) or fault == "outside")
    items: list[tuple[str, str]] = []  # ("key" | "prefix", name)
    for key in keys:
        below = key[len(prefix) :] if key.startswith(prefix) else key
        if delimiter and delimiter in below:
            common = key[: len(key) - len(below)] + below.split(delimiter)[0] + delimiter
            if ("prefix", common) not in items:
                items.append(("prefix", common))
        else:
            items.append(("key", key))
    start = 0  # a looping fault answers the first page every time
    if token and fault not in ("same-token", "cycle", "empty-loop"):
        start = int(token.removeprefix("next-"))
    page = items[start : start + page_keys]
    truncated = start + page_keys < len(items)
    next_token: str | None = f"next-{start + page_keys}" if truncated else None
    if (fault == "empty-first" and not token) or fault == "empty-loop":
        page, truncated = [], True
        next_token = "next-0" if fault == "empty-first" else "again"
    elif fault == "no-token" and truncated:
        next_token = None
    elif fault == "same-token":
        truncated = lists < loop_pages
        next_token = "again" if truncated else None
    elif fault == "cycle":
        truncated = lists < loop_pages
        next_token = ("b" if token == "a" else "a") if truncated else None
    body = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        f"<Name>{BUCKET}</Name><Prefix>{escape(prefix)}</Prefix>",
        f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{page_keys}</MaxKeys>",
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
    ]
    if delimiter:
        body.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
    if token:
        body.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    if next_token is not None:
        body.append(f"<NextContinuationToken>{escape(next_token)}</NextContinuationToken>")
    for kind, name in page:
        if kind == "prefix":
            body.append(f"<CommonPrefixes><Prefix>{escape(name)}</Prefix></CommonPrefixes>")
        else:
            data = objects[name]
            body.append(
                f"<Contents><Key>{escape(name)}</Key><LastModified>{MODIFIED}</LastModified>"
                f"<ETag>{escape(_etag(data))}</ETag><Size>{len(data)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
    body.append("</ListBucketResult>")
    text = "".join(body)
    return (rewrite(text) if rewrite is not None else text).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``FakeS3.seen``."""

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        body = b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"
        self._answer(404, body, {"Content-Type": "application/xml"})

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with fake.lock:
            fake.seen.append((self.command, url.path, query))
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        if bucket != BUCKET:
            self._answer(404, b"<Error><Code>NoSuchBucket</Code></Error>", {})
            return
        if not key and query.get("list-type") == "2":
            self._answer(200, _listing(fake, query), {"Content-Type": "application/xml"})
            return
        with fake.lock:
            data = fake.objects.get(key)
        if data is None:
            self._not_found()
            return
        headers = {
            "ETag": _etag(data),
            "Last-Modified": HTTP_MODIFIED,
            "Content-Type": "application/octet-stream",
        }
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and data:
            first, _, last = wanted[len("bytes=") :].partition("-")
            start, end = int(first), min(int(last or len(data) - 1), len(data) - 1)
            part = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            headers["Content-Length"] = str(len(part))
            self._answer(206, part, headers)
            return
        headers["Content-Length"] = str(len(data))
        self._answer(200, data, headers)

    do_GET = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeS3


@pytest.fixture
def fake_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeS3]:
    """A ``FakeS3`` on 127.0.0.1:<free port>, the AWS SDK environment pointing at it."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install '.[s3]')")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeS3()
    with serving(server) as port:
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }.items():
            monkeypatch.setenv(name, value)
        yield server.fake
