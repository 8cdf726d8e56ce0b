"""``artlens bucket dups`` against a real S3 server on loopback: an ETag match is only
"probable", a full-object SHA-256 checksum or ``--hash`` makes it "exact", and copies
whose multipart ETags differ are found only by hashing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, multipart_body, s3_server

from tui.cli import main

pytestmark = pytest.mark.objstore
__all__ = ["s3_server"]


def _bucket(s3: S3Server) -> str:
    bucket: str = s3.new_bucket(versioned=False)
    s3.put(bucket, "run1/weights.bin", b"same bytes\n" * 100)
    s3.put(bucket, "run2/weights.bin", b"same bytes\n" * 100)
    for key in ("run1/ckpt.pt", "run3/ckpt.pt"):
        s3.call(
            "put_object",
            Bucket=bucket,
            Key=key,
            Body=b"checksummed\n" * 50,
            ChecksumAlgorithm="SHA256",
        )
    s3.put(bucket, "run1/other.bin", b"other bytes\n" * 100)  # same size, other bytes
    s3.put(bucket, "run1/.artlens-trash/weights.bin", b"same bytes\n" * 100)
    body = multipart_body()
    s3.put_multipart(bucket, "big/multi.bin", body)
    s3.put(bucket, "big/plain.bin", body)
    return bucket


def _dups(bucket: str, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["bucket", "dups", f"s3://{bucket}", "--json", *extra])
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.output)
    return found


def test_etag_is_probable_and_checksum_exact(s3_server: S3Server) -> None:
    bucket = _bucket(s3_server)
    found = _dups(bucket)
    groups = {tuple(g["paths"]): (g["certainty"], g["basis"]) for g in found["duplicates"]}
    assert groups == {
        ("run1/weights.bin", "run2/weights.bin"): ("probable", "etag"),
        ("run1/ckpt.pt", "run3/ckpt.pt"): ("exact", "checksum-sha256"),
    }
    assert found["hashed"] is False and found["objects"] == 7
    # a listing page and one HEAD per checksummed object; nothing read
    assert found["requests"] == 3 and found["bytes"] == 0

    text = CliRunner().invoke(main, ["bucket", "dups", f"s3://{bucket}"])
    assert text.exit_code == 0, text.output
    assert "probable" in text.output and "exact" in text.output
    assert "ETag of a plain upload" in text.output


def test_hash_makes_every_group_exact(s3_server: S3Server) -> None:
    bucket = _bucket(s3_server)
    found = _dups(bucket, "--hash")
    groups = {tuple(g["paths"]): (g["certainty"], g["basis"]) for g in found["duplicates"]}
    assert groups == {
        ("big/multi.bin", "big/plain.bin"): ("exact", "sha256"),
        ("run1/weights.bin", "run2/weights.bin"): ("exact", "sha256"),
        ("run1/ckpt.pt", "run3/ckpt.pt"): ("exact", "sha256"),
    }
    assert found["duplicates"][0]["paths"] == ["big/multi.bin", "big/plain.bin"]
    assert found["duplicates"][0]["reclaimable"] == len(multipart_body())


def test_dups_of_a_missing_bucket_is_one_line(s3_server: S3Server) -> None:
    result = CliRunner().invoke(main, ["bucket", "dups", "s3://no-such-bucket-for-dups"])
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1, result.output
