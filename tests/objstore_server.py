"""A real S3 server on loopback for the object-store tests: moto's ThreadedMotoServer.

Import this module's fixtures into a test module (``from objstore_server import
s3_server, ...``); the module skips, with the reason, where moto or s3fs is not installed (they come
with ``.[dev]``).  The server listens on 127.0.0.1 on a free port; clients find it the way
every AWS SDK does, through ``AWS_ENDPOINT_URL`` (set for the session, then restored).

The seeded buckets hold the real-framework fixtures (MLflow's file store, Lightning's
logs), a malicious pickle, keys no local file could have (control characters, markup,
``//``, ``..``, a leading ``%``) and a multipart object.  S3 keys are UTF-8 by definition,
so invalid UTF-8 cannot be seeded; a newline in a key is refused by moto itself.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install '.[dev]')")
pytest.importorskip("s3fs", reason="s3fs is not installed (pip install '.[s3]' or '.[dev]')")

from moto.server import ThreadedMotoServer

from tests import seed
from tests.seed import SEED_TREES as SEED_TREES

HOSTILE_KEYS = {
    "hostile/ctl\x1b[31mred.txt": b"escape codes in a key\n",
    "hostile/[bold]x.txt": b"markup in a key\n",
    "hostile/osc\x1b]52;c;aGVsbG8=\x07.txt": b"an OSC sequence in a key\n",
    "hostile//double.txt": b"an empty part\n",
    "hostile/../up.txt": b"a dot-dot part\n",
    "hostile/%41.txt": b"a name that looks escaped\n",
    "hostile/\x01\x7f.bin": b"C0 and DEL\n",
}

MULTIPART_KEY = "models/multipart.bin"
PART = 5 * 1024 * 1024
"""S3's smallest non-final part."""

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def multipart_body() -> bytes:
    return bytes(range(256)) * (PART // 256) + b"tail of the last part"


def seed_files() -> dict[str, bytes]:
    """Every key the seeded buckets hold, with its bytes."""
    return seed.seed_files(HOSTILE_KEYS)


class S3Server:
    """The running server and an s3fs client on it."""

    def __init__(self, endpoint: str) -> None:
        import s3fs

        self.endpoint = endpoint
        self.fs: Any = s3fs.S3FileSystem(skip_instance_cache=True)

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.fs.call_s3(op, **kwargs)
        return result

    def new_bucket(self, *, versioned: bool) -> str:
        # unique across servers: moto keeps one in-process backend for all of them
        name = f"artlens-{'v' if versioned else 'p'}-{uuid.uuid4().hex[:12]}"
        self.call("create_bucket", Bucket=name)
        if versioned:
            self.call(
                "put_bucket_versioning",
                Bucket=name,
                VersioningConfiguration={"Status": "Enabled"},
            )
        return name

    def put(self, bucket: str, key: str, body: bytes) -> dict[str, Any]:
        return self.call("put_object", Bucket=bucket, Key=key, Body=body)

    def put_multipart(self, bucket: str, key: str, body: bytes) -> None:
        upload = self.call("create_multipart_upload", Bucket=bucket, Key=key)
        parts = []
        for number, start in enumerate(range(0, len(body), PART), 1):
            part = self.call(
                "upload_part",
                Bucket=bucket,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=body[start : start + PART],
            )
            parts.append({"ETag": part["ETag"], "PartNumber": number})
        self.call(
            "complete_multipart_upload",
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )

    def seed(self, bucket: str) -> dict[str, bytes]:
        files = seed_files()
        for key, body in files.items():
            self.put(bucket, key, body)
        body = multipart_body()
        self.put_multipart(bucket, MULTIPART_KEY, body)
        files[MULTIPART_KEY] = body
        return files

    def contents(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every live key under ``prefix`` with its bytes (the round-trip oracle)."""
        found: dict[str, bytes] = {}
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = self.call("list_objects_v2", **kwargs)
            for obj in page.get("Contents", []):
                found[obj["Key"]] = self.fs.cat_file(f"{bucket}/{obj['Key']}")
            if not page.get("IsTruncated"):
                return found
            kwargs["ContinuationToken"] = page["NextContinuationToken"]


_SHARED: dict[str, Any] = {}
"""The one server and seed of the session: each test module that imports these fixtures
gets its own fixture instance, and they all hand out the same server."""


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto on 127.0.0.1:<free port>, with the SDK environment pointing at it."""
    if "server" in _SHARED:
        yield _SHARED["server"]
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {name: os.environ.get(name) for name in [*env, "AWS_PROFILE"]}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env)
    _SHARED["server"] = S3Server(env["AWS_ENDPOINT_URL"])
    try:
        yield _SHARED["server"]
    finally:
        _SHARED.clear()
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def seeded(s3_server: S3Server) -> dict[str, Any]:
    """A versioned and an unversioned bucket with the same seed (read-only: tests that
    change a bucket make their own with ``fresh_bucket``)."""
    if "seeded" not in _SHARED:
        versioned = s3_server.new_bucket(versioned=True)
        plain = s3_server.new_bucket(versioned=False)
        files = s3_server.seed(versioned)
        s3_server.seed(plain)
        _SHARED["seeded"] = {"versioned": versioned, "plain": plain, "files": files}
    seed: dict[str, Any] = _SHARED["seeded"]
    return seed


@pytest.fixture
def fresh_bucket(s3_server: S3Server) -> Callable[..., str]:
    """A new seeded bucket for a test that changes it."""

    def make(*, versioned: bool) -> str:
        bucket = s3_server.new_bucket(versioned=versioned)
        s3_server.seed(bucket)
        return bucket

    return make
