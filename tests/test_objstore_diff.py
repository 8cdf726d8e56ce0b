"""``artlens diff`` on bucket URLs against a real S3 server on loopback: two runs, two
objects, an object and a local file, each the same as the local diff of the same files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, s3_server

from tests.test_rundiff import Pair, make_pair
from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["s3_server"]


@pytest.fixture
def uploaded(s3_server: S3Server, tmp_path: Path) -> tuple[Pair, str]:
    """The two-run pair of the local run diff tests, on disk and in a bucket."""
    pair = make_pair(tmp_path)
    bucket = s3_server.new_bucket(versioned=False)
    for path in sorted(pair.root.rglob("*")):
        if path.is_file():
            s3_server.put(bucket, f"p/{path.relative_to(pair.root).as_posix()}", path.read_bytes())
    return pair, f"s3://{bucket}/p"


def diff(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A run diff's JSON without what names where the runs live (ids, paths, hashes)."""
    for side in ("a", "b"):
        data[side] = {k: data[side][k] for k in ("name", "framework", "experiment")}
    for kind in ("added", "removed", "changed"):
        for change in data["artifacts"][kind]:
            change.pop("old_hash")
            change.pop("new_hash")
    return data


def test_two_bucket_runs_diff_as_the_local_runs(uploaded: tuple[Pair, str]) -> None:
    pair, url = uploaded
    code, out, err = diff("version_0", "version_1", "--json", "--db", str(pair.db_path))
    assert code == 1, err
    local = json.loads(out)
    run_a, run_b = f"{url}/lightning_logs/version_0", f"{url}/lightning_logs/version_1"
    code, out, err = diff(run_a, run_b, "--json")
    assert code == 1, err
    remote = json.loads(out)
    assert remote["a"]["path"] == run_a and remote["b"]["path"] == run_b
    assert [c["old_hash"][:4] for c in remote["artifacts"]["changed"]] == ["md5:"] * 3
    assert _comparable(remote) == _comparable(local)
    changed = {c["path"]: c for c in remote["artifacts"]["changed"]}
    tensors = changed["checkpoints/last.safetensors"]["tensors"]
    assert tensors is not None and tensors["line"].startswith("1 of ")
    text_local = diff("version_0", "version_1", "--db", str(pair.db_path))[1].splitlines()
    text_remote = diff(run_a, run_b)[1].splitlines()
    assert text_remote[0].startswith("A version_0 (") and run_a in text_remote[0]
    unhashed = [re.sub(r"(\d+B) \S+", r"\1", line) for line in text_remote[2:]]
    assert unhashed == [re.sub(r"(\d+B) \S+", r"\1", line) for line in text_local[2:]]
    code, out, err = diff(run_a, run_a)
    assert code == 0, err
    assert "runs are equal" in out


def test_objects_and_local_files_diff_as_local_files(uploaded: tuple[Pair, str]) -> None:
    pair, url = uploaded
    for name in ("hparams.yaml", "checkpoints/last.safetensors", "metrics.csv"):
        local_a, local_b = pair.a / name, pair.b / name
        object_a = f"{url}/lightning_logs/version_0/{name}"
        object_b = f"{url}/lightning_logs/version_1/{name}"
        expected = diff(str(local_a), str(local_b))
        assert expected[0] == 1, expected
        got = diff(object_a, object_b)
        assert got[0] == 1, got
        assert (
            got[1].replace(object_a, str(local_a)).replace(object_b, str(local_b)) == (expected[1])
        )
        mixed = diff(object_a, str(local_b))
        assert mixed[0] == 1 and mixed[1].replace(object_a, str(local_a)) == expected[1]
    same = diff(f"{url}/lightning_logs/version_0/config.yaml", str(pair.a / "config.yaml"))
    assert same[0] == 0, same


def test_url_diff_errors_are_one_line(uploaded: tuple[Pair, str]) -> None:
    pair, url = uploaded
    code, _, err = diff(f"{url}/lightning_logs/version_0/hparams.yaml", f"{url}/lightning_logs")
    assert code == 2 and "give two files or two runs" in err and err.count("\n") == 1
    code, _, err = diff(f"{url}/lightning_logs", f"{url}/lightning_logs/version_0")
    assert code == 2 and "is not a run" in err and "version_0" in err
    code, _, err = diff(f"{url}/lightning_logs/version_0", str(pair.a))
    assert code == 2 and "two s3:// prefixes" in err
    code, _, err = diff(f"{url}/no/such/thing", f"{url}/lightning_logs/version_0")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
