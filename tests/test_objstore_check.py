"""``artlens check`` on a bucket's index: the bucket's own ``.artlens.toml`` is read through
the root (one ranged GET), never as a local path that happens to look like the URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, fresh_bucket, s3_server

from tui.cli import main

pytestmark = pytest.mark.objstore
__all__ = ["fresh_bucket", "s3_server"]


def check(db_path: Path) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(main, ["check", "--db", str(db_path), "--json"])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(result.output) if result.exit_code < 2 else []


def test_check_reads_the_buckets_own_checklist(
    s3_server: S3Server,
    fresh_bucket: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a local "s3:/bucket/.artlens.toml" must not be read
    bucket = fresh_bucket(versioned=False)
    decoy = tmp_path / "s3:" / bucket / ".artlens.toml"
    decoy.parent.mkdir(parents=True)
    decoy.write_text('[checklist]\nrequired = ["decoy.txt"]\n')
    url = f"s3://{bucket}"
    db_path = tmp_path / "bucket.db"
    assert CliRunner().invoke(main, ["index", url, "--db", str(db_path)]).exit_code == 0

    code, rows = check(db_path)
    assert rows and all("decoy.txt" not in r["missing"] for r in rows), rows  # type: ignore[operator]

    s3_server.put(bucket, ".artlens.toml", b'[checklist]\nrequired = ["model.safetensors"]\n')
    code, rows = check(db_path)
    assert code == 1
    assert rows and all(r["missing"] == ["model.safetensors"] for r in rows), rows

    s3_server.put(bucket, ".artlens.toml", b"[checklist\n")
    bad = CliRunner().invoke(main, ["check", "--db", str(db_path)])
    assert bad.exit_code == 2 and f"s3://{bucket}/.artlens.toml" in bad.output, bad.output
    assert "Traceback" not in bad.output
