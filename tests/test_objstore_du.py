"""``artlens du`` on a bucket URL: the sizes of its index, per run and experiment, against
a real S3 server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, s3_server

from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["s3_server"]


def test_du_on_a_bucket_url_reports_its_index(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    sizes = {"exp/run1/model.ckpt": 3000, "exp/run1/metrics.csv": 40, "loose.bin": 7}
    for key, size in sizes.items():
        body = b"step,loss\n1,0.5\n" + b"\n" * (size - 16) if key.endswith(".csv") else b"x" * size
        s3_server.put(bucket, key, body)
    s3_server.put(bucket, "exp/run1/hparams.yaml", b"lr: 0.1\n")
    url = f"s3://{bucket}"
    runner = CliRunner()
    assert runner.invoke(main, ["index", url]).exit_code == 0
    # a local folder named like the URL is never measured in its place
    monkeypatch.chdir(tmp_path)
    decoy = tmp_path / "s3:" / bucket / "exp" / "run1"
    decoy.mkdir(parents=True)
    (decoy / "model.ckpt").write_bytes(b"y" * 1_000_000)
    result = runner.invoke(main, ["du", url, "--json"])
    assert result.exit_code == 0, result.output
    [root] = json.loads(result.output)["roots"]
    total = sum(sizes.values()) + len(b"lr: 0.1\n")
    assert (root["root"], root["size_bytes"], root["files"]) == (url, total, 4)
    assert root["disk_bytes"] is None and root["outside_runs_bytes"] == 7
    assert [(r["run"], r["size_bytes"]) for r in root["runs"]] == [("exp/run1", total - 7)]
    text = runner.invoke(main, ["du", url])
    assert text.exit_code == 0 and f"  {url}  (4 files)" in text.output
    assert f"artlens bucket dups {url}" in text.output
    missing = runner.invoke(main, ["du", f"s3://{bucket}/elsewhere"])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
