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
from tests.test_tui import sync
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
        shown = got[1].replace(object_a, str(local_a)).replace(object_b, str(local_b))
        # a tensor diff of objects adds one note: what it fetches (said on stderr first)
        fetching = [line for line in shown.splitlines(True) if line.startswith("fetching ")]
        assert len(fetching) == name.endswith(".safetensors")
        assert got[2] == "".join(f"artlens: {line}" for line in fetching)
        assert shown.replace("".join(fetching), "") == expected[1]
        mixed = diff(object_a, str(local_b))
        shown = mixed[1].replace(object_a, str(local_a))
        kept = [line for line in shown.splitlines(True) if not line.startswith("fetching ")]
        assert mixed[0] == 1 and "".join(kept) == expected[1]
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


def two_checkpoints(s3_server: S3Server, tmp_path: Path) -> str:
    """A bucket with ``a/`` and ``b/model.safetensors`` (256 KiB ``w`` changed in one row,
    ``b`` equal, one tensor gone, one added); ``new.safetensors`` in tmp_path is ``b``'s."""
    from tests.test_diff_formats import f32, write_safetensors

    weights = [float(i % 97) for i in range(256 * 256)]  # 256 KiB of F32
    changed = [v + (1.0 if 200 * 256 <= i < 201 * 256 else 0.0) for i, v in enumerate(weights)]
    zeros = f32(*[0.0] * 16)
    write_safetensors(
        tmp_path / "old.safetensors",
        {"w": ("F32", [256, 256], f32(*weights)), "b": ("F32", [16], zeros),
         "gone": ("F32", [4], f32(1, 1, 1, 1))},
    )  # fmt: skip
    write_safetensors(
        tmp_path / "new.safetensors",
        {"w": ("F32", [256, 256], f32(*changed)), "b": ("F32", [16], zeros),
         "added": ("F32", [2], f32(1, 1))},
    )  # fmt: skip
    bucket: str = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "a/model.safetensors", (tmp_path / "old.safetensors").read_bytes())
    s3_server.put(bucket, "b/model.safetensors", (tmp_path / "new.safetensors").read_bytes())
    return bucket


def test_a_tensor_diff_says_what_it_fetches_first_and_keeps_to_the_bound(
    s3_server: S3Server, tmp_path: Path
) -> None:
    from store.diff import FetchBudget, FetchPlan, diff_files
    from store.root.objstore import ObjectRoot

    bucket = two_checkpoints(s3_server, tmp_path)
    compared = 256 * 256 * 4 + 16 * 4  # "w" and "b": the tensors on both sides

    root = ObjectRoot(f"s3://{bucket}")
    heard: list[tuple[FetchPlan, int]] = []
    budget = FetchBudget(None, lambda plan: heard.append((plan, root.stats.bytes)))
    result = diff_files((root, "a/model.safetensors"), (root, "b/model.safetensors"), budget=budget)
    assert result.kind == "tensors" and result.error is None and not result.equal
    [(plan, before)] = heard
    assert (plan.bytes_a, plan.bytes_b) == (compared, compared)
    # said once the headers were read (five opens, one 64 KiB block each), before the tensors
    assert before <= 5 * 64 * 1024 < plan.total
    assert plan.total <= root.stats.bytes <= plan.most + 5 * 64 * 1024
    assert result.notes[0] == plan.line() and plan.line().startswith("fetching 512.1 KiB")

    url_a, url_b = f"s3://{bucket}/a/model.safetensors", f"s3://{bucket}/b/model.safetensors"
    code, out, err = diff(url_a, url_b, "--json")
    assert code == 1, err
    assert err.splitlines() == [f"artlens: {plan.line()}"]
    data = json.loads(out)
    assert data["fetch"] == {**plan.to_json(), "max": 1 << 30}
    assert [t["name"] for t in data["result"]["tensors"] if t["status"] != "unchanged"] == [
        "added",
        "gone",
        "w",
    ]
    mixed = diff(url_a, str(tmp_path / "new.safetensors"), "--json")
    assert mixed[0] == 1 and json.loads(mixed[1])["fetch"]["b"] == 0  # the local side is read
    assert json.loads(mixed[1])["fetch"]["a"] == compared

    code, out, err = diff(url_a, url_b, "--max-fetch", "100K")
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == f"artlens: {plan.line()}" and len(lines) == 2
    assert "over the 100.0 KiB allowed (`artlens diff --max-fetch SIZE` allows more)" in lines[1]
    assert diff(url_a, url_b, "--max-fetch", "none")[0] == 1
    code, _, err = diff(url_a, url_b, "--max-fetch", "lots")
    assert code == 2 and "--max-fetch" in err and err.count("\n") == 1


@sync
async def test_the_tui_file_diff_of_two_objects_says_what_it_fetches_first(
    s3_server: S3Server, tmp_path: Path
) -> None:
    from tests.test_objstore_explorer import index_bucket, until
    from tests.test_tui import settle
    from tui.app import ArtlensApp
    from tui.screens.file_diff import FileDiffScreen

    bucket = two_checkpoints(s3_server, tmp_path)
    db_path = tmp_path / "bucket.db"
    index_bucket(f"s3://{bucket}", db_path)
    app = ArtlensApp(db_path, [], watch=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        screen = FileDiffScreen(
            f"s3://{bucket}/a/model.safetensors".encode(),
            f"s3://{bucket}/b/model.safetensors".encode(),
        )
        app.push_screen(screen)
        await until(pilot, lambda: screen.diff is not None, "the diff")
        assert screen.diff is not None and screen.diff.kind == "tensors"
        assert screen.diff.notes[0].startswith("fetching 512.1 KiB of tensors (A 256.1 KiB")
        notes = screen.query_one("#file-diff-notes").render()
        assert str(notes).splitlines()[1] == screen.diff.notes[0]


def test_a_url_with_a_slash_is_a_prefix(uploaded: tuple[Pair, str]) -> None:
    _, url = uploaded
    code, _, err = diff(f"{url}/lightning_logs/version_0/hparams.yaml/", f"{url}/lightning_logs")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    run_a = f"{url}/lightning_logs/version_0/"
    code, out, err = diff(run_a, f"{url}/lightning_logs/version_1", "--json")
    assert code == 1, err
    assert json.loads(out)["a"]["name"] == "version_0"


@sync
async def test_the_tui_run_diff_of_two_bucket_runs_is_the_local_one(
    uploaded: tuple[Pair, str], tmp_path: Path
) -> None:
    from store.index import query
    from store.index.db import open_db
    from store.rundiff import diff_run_rows
    from tests.test_objstore_explorer import index_bucket, until
    from tests.test_tui import settle
    from tui.app import ArtlensApp
    from tui.screens.run_diff import RunDiffScreen

    pair, url = uploaded
    local_db = open_db(pair.db_path, readonly=True)
    try:
        by_name = {r.name: r for r in query.list_runs(local_db)}
        local = diff_run_rows(local_db, by_name["version_0"], by_name["version_1"])
    finally:
        local_db.close()
    db_path = tmp_path / "bucket.db"
    index_bucket(url, db_path)
    bucket_db = open_db(db_path, readonly=True)
    try:
        runs = {r.name: r for r in query.list_runs(bucket_db)}
    finally:
        bucket_db.close()
    app = ArtlensApp(db_path, [], watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = RunDiffScreen(app.pool, runs["version_0"], runs["version_1"])
        app.push_screen(screen)
        await until(pilot, lambda: screen.result is not None, "the run diff")
        result = screen.result
        assert result is not None and not result.equal
        assert result.artifacts.unverified == []  # the ETags stood for the hashes
        assert [c.path for c in result.artifacts.changed] == [
            c.path for c in local.artifacts.changed
        ]
        assert [(c.path, c.old, c.new) for c in result.params] == [
            (c.path, c.old, c.new) for c in local.params
        ]
        changed = {c.path: c for c in result.artifacts.changed}
        summary = changed["checkpoints/last.safetensors"].tensors
        assert summary is not None and summary.changed == 1


def test_a_torch_zip_diff_of_objects_says_what_it_fetches(s3_server: S3Server) -> None:
    from store.diff import FetchBudget, FetchPlan, diff_files
    from store.diff.torch_zip import diff_torch_zips
    from store.root.objstore import ObjectRoot
    from tests.test_torch_zip_diff import LIGHTNING

    old = LIGHTNING / "version_0" / "checkpoints" / "last.ckpt"
    new = LIGHTNING / "version_1" / "checkpoints" / "last.ckpt"
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "a/last.ckpt", old.read_bytes())
    s3_server.put(bucket, "b/last.ckpt", new.read_bytes())
    root = ObjectRoot(f"s3://{bucket}")
    heard: list[FetchPlan] = []
    result = diff_files(
        (root, "a/last.ckpt"), (root, "b/last.ckpt"), budget=FetchBudget(None, heard.append)
    )
    local = diff_torch_zips(old, new)
    assert result.kind == "tensors" and result.error is None
    assert result.result is not None and result.result.to_json() == local.to_json()
    [plan] = heard
    assert 0 < plan.bytes_a == plan.bytes_b < old.stat().st_size
    assert result.notes[0] == plan.line()
    refused = diff_files(
        (root, "a/last.ckpt"), (root, "b/last.ckpt"), budget=FetchBudget(plan.total - 1)
    )
    assert refused.result is None and refused.error is not None
    assert "would fetch" in refused.error and refused.notes == [plan.line()]
