"""gs:// roots against a real GCS emulator on loopback (fake-gcs-server): listings with
hostile names, reads pinned to a generation, the index and ``runs --json`` equal to the
local index of the same files, ``scan`` flagging the malicious pickle, and retention
apply + restore round-tripping every byte."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from bucket_checks import (
    index_matches_the_local_index,
    polling_finds_a_new_object_and_prices_its_listings,
)
from click.testing import CliRunner
from gcs_server import GCSServer, gcs_fresh, gcs_seeded, gcs_server

from store.retention.bucket import TRASH, BucketTrash
from store.root import ChangedError, NotFound, RootError, open_root
from store.root.objstore import BLOCK_SIZE, ObjectRoot, encode_part, key_to_rel
from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["gcs_fresh", "gcs_seeded", "gcs_server"]


def test_listing_names_and_hostile_keys(gcs_seeded: dict[str, Any]) -> None:
    root = open_root(f"gs://{gcs_seeded['bucket']}")
    assert isinstance(root, ObjectRoot) and root.scheme == "gs"
    assert {e.name for e in root.list_dir()} == {"hostile", "lightning", "mlflow", "models"}
    names = {e.name for e in root.list_dir("hostile")}
    assert {"%", "%..", encode_part("%41.txt"), "[bold]x.txt", "ctl\x1b[31mred.txt"} <= names
    assert [e.name for e in root.list_dir("hostile/%..")] == ["up.txt"]
    evil = root.stat("models/evil.pkl")
    walked = dict(root.walk())
    assert {e.name: e.identity for e in walked["models"]} == {"evil.pkl": evil.identity}
    assert evil.identity.isdigit()  # the generation
    files = sum(1 for entries in walked.values() for e in entries if e.kind == "file")
    assert files == len(gcs_seeded["files"])
    with pytest.raises(NotFound):
        root.stat("models/nothing-here")
    assert ObjectRoot(f"gcs://{gcs_seeded['bucket']}/models").url == (
        f"gs://{gcs_seeded['bucket']}/models"
    )


def test_reads_are_pinned_to_the_generation(gcs_server: GCSServer) -> None:
    bucket = gcs_server.new_bucket()
    body = bytes(range(256)) * (3 * BLOCK_SIZE // 256)
    gcs_server.put(bucket, "m/model.bin", body)
    gcs_server.put(bucket, "m/empty.txt", b"")
    root = ObjectRoot(f"gs://{bucket}")
    assert root.read_capped("m/model.bin", 10) == (body[:10], True)
    assert root.read_capped("m/empty.txt", 10) == (b"", False)
    with root.open("m/empty.txt") as empty:
        assert empty.size == 0 and empty.read_at(0, 10) == b""
    with root.open("m/model.bin") as reader:
        assert reader.size == len(body)
        assert reader.identity == root.stat("m/model.bin").identity
        assert reader.read_at(BLOCK_SIZE + 5, 10) == body[BLOCK_SIZE + 5 : BLOCK_SIZE + 15]
        gcs_server.put(bucket, "m/model.bin", b"\0" * len(body))  # same size, new bytes
        assert reader.read_at(BLOCK_SIZE + 5, 10) == body[BLOCK_SIZE + 5 : BLOCK_SIZE + 15]
        with pytest.raises(ChangedError):
            reader.read_at(2 * BLOCK_SIZE, 10)  # never a block of the new bytes
    assert root.stats.bytes < 4 * BLOCK_SIZE + 64
    assert root.stats.ops["objects.get_media"] >= 4


def test_missing_bucket_and_other_schemes_are_one_line(gcs_server: GCSServer) -> None:
    with pytest.raises(RootError) as caught:
        ObjectRoot("gs://no-such-bucket-here").list_dir()
    assert "\n" not in str(caught.value) and "no-such-bucket-here" in str(caught.value)
    with pytest.raises(RootError, match="not supported"):
        ObjectRoot("ftp://host/prefix")


def test_index_matches_the_local_index(gcs_seeded: dict[str, Any], tmp_path: Path) -> None:
    url = f"gs://{gcs_seeded['bucket']}"
    root = index_matches_the_local_index(url, gcs_seeded["files"], tmp_path)
    ops = {"objects.list", "objects.get_media", "objects.get"}
    assert root.stats.ops["objects.list"] >= 1 and set(root.stats.ops) <= ops


def test_cli_index_runs_ls_and_scan(gcs_seeded: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"gs://{gcs_seeded['bucket']}"
    db = str(tmp_path / "bucket.db")
    result = runner.invoke(main, ["index", url, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["roots"][0]
    assert report["root"] == url and report["files"] == len(gcs_seeded["files"])
    assert report["requests"] > 0 and report["bytes"] > 0
    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", db]).output)
    mlflow = sorted(r["params"]["lr"] for r in runs if r["framework"] == "mlflow")
    assert mlflow == [0.05, 0.1]
    listed = runner.invoke(main, ["ls", "--db", db])
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "hostile/%../up.txt" in listed.output and "models/evil.pkl\tdangerous" in listed.output
    scan = runner.invoke(main, ["scan", url])
    assert scan.exit_code == 1, scan.output
    assert "evil.pkl" in scan.output and "\x1b" not in scan.output


CHOSEN = [
    "models/evil.pkl",
    "lightning/lightning_logs/version_0/checkpoints/last.ckpt",
    "hostile/ctl\x1b[31mred.txt",
    "hostile/../up.txt",
]


@pytest.mark.parametrize("versioned", [False, True])
def test_retention_apply_restore_purge_round_trip(
    gcs_server: GCSServer, gcs_fresh: Callable[..., str], versioned: bool
) -> None:
    bucket = gcs_fresh(versioned=versioned)
    before = gcs_server.contents(bucket)
    trash = BucketTrash(ObjectRoot(f"gs://{bucket}"))
    plan = trash.plan([key_to_rel(k) for k in CHOSEN])
    assert gcs_server.contents(bucket) == before  # planning changes nothing
    assert plan.versioned is False  # GCS has no delete markers: trash is a copy
    assert plan.total_bytes == sum(len(before[k]) for k in CHOSEN)
    assert all(i.note == "" for i in plan.items)  # no S3 multipart ETag notes here
    applied = trash.apply(plan)
    assert applied.counts() == {"trashed": len(CHOSEN)}, applied.to_json()
    live = {k for k in gcs_server.contents(bucket) if not k.startswith(TRASH)}
    assert live == set(before) - set(CHOSEN)

    restored = BucketTrash(ObjectRoot(f"gs://{bucket}")).restore(trash.load(plan.batch))
    assert restored.counts() == {"restored": len(CHOSEN)}
    after = {k: v for k, v in gcs_server.contents(bucket).items() if not k.startswith(TRASH)}
    assert after == before  # every byte back, nothing else touched
    assert gcs_server.contents(bucket, f"{TRASH}/{plan.batch}/") == {}

    again = trash.apply(trash.plan(["models/evil.pkl"]))
    assert trash.purge(again).counts() == {"purged": 1}
    assert "models/evil.pkl" not in gcs_server.contents(bucket)
    assert gcs_server.contents(bucket, f"{TRASH}/{again.batch}/") == {}


def test_retention_leaves_an_object_rewritten_after_the_plan(gcs_server: GCSServer) -> None:
    bucket = gcs_server.new_bucket()
    gcs_server.put(bucket, "run/a.ckpt", b"planned bytes")
    trash = BucketTrash(ObjectRoot(f"gs://{bucket}"))
    plan = trash.plan(["run/a.ckpt"])
    gcs_server.put(bucket, "run/a.ckpt", b"written after the plan")
    assert trash.apply(plan).counts() == {"changed": 1}
    left = gcs_server.contents(bucket)
    assert left["run/a.ckpt"] == b"written after the plan"
    assert not [k for k in left if k.startswith(f"{TRASH}/{plan.batch}/")]


def _json(*args: str, code: int = 0) -> Any:
    """The command's JSON; ``code`` 1 when it skips an item asked for (each named on
    stderr)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_cli_retention_apply_then_trash_restore(
    gcs_server: GCSServer, gcs_fresh: Callable[..., str], tmp_path: Path
) -> None:
    bucket = gcs_fresh()
    url = f"gs://{bucket}"
    db = str(tmp_path / "bucket.db")
    before = gcs_server.contents(bucket)
    _json("index", url, "--db", db, "--json")
    plan = _json("retention", "plan", url, "--keep-last", "1", "--db", db, "--json")
    removed = sorted(i["path"] for i in plan["items"] if not i["keep"])
    assert len(removed) == 6 and all(p.endswith(".ckpt") for p in removed)
    changed = removed[0]
    gcs_server.put(bucket, changed, b"written after the plan")  # a new generation
    done = _json("retention", "apply", plan["id"], "--yes", "--db", db, "--json", code=1)
    assert sorted(i["path"] for i in done["done"]) == removed[1:]
    assert [(i["path"], i["reason"].split(":")[0]) for i in done["skipped"]] == [
        (changed, "changed")
    ]
    assert not set(removed[1:]) & set(gcs_server.contents(bucket))
    batch = done["done"][0]["id"]
    restored = _json("trash", "restore", batch, "--root", url, "--db", db, "--json")
    assert sorted(i["path"] for i in restored["done"]) == removed[1:]
    after = {k: v for k, v in gcs_server.contents(bucket).items() if TRASH not in k}
    assert after == {**before, changed: b"written after the plan"}


def test_polling_a_gcs_bucket_prices_its_listings(
    gcs_server: GCSServer, gcs_fresh: Callable[..., str], tmp_path: Path
) -> None:
    bucket = gcs_fresh()
    polling_finds_a_new_object_and_prices_its_listings(
        f"gs://{bucket}", partial(gcs_server.put, bucket), "objects.list", tmp_path
    )


def _wait(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_bucket_dups_group_by_md5(gcs_server: GCSServer) -> None:
    from store.objdups import etag_note, object_duplicates

    bucket = gcs_server.new_bucket()
    gcs_server.put(bucket, "a/model.bin", b"same bytes" * 100)
    gcs_server.put(bucket, "b/model.bin", b"same bytes" * 100)
    gcs_server.put(bucket, "c/model.bin", b"other byte" * 100)
    found = object_duplicates(ObjectRoot(f"gs://{bucket}"))
    assert [(g.certainty, g.paths) for g in found.groups] == [
        ("probable", ["a/model.bin", "b/model.bin"])
    ]
    assert etag_note(found.groups[0].digest) == "MD5 of the bytes (md5Hash)"
    exact = object_duplicates(ObjectRoot(f"gs://{bucket}"), full_hash=True)
    assert [(g.certainty, g.paths) for g in exact.groups] == [
        ("exact", ["a/model.bin", "b/model.bin"])
    ]


def test_preview_reads_head_and_tail_ranges_only(gcs_server: GCSServer) -> None:
    from store.preview import preview_at

    bucket = gcs_server.new_bucket()
    lines = [f"step {i} loss {1 / (i + 1):.6f}".encode() for i in range(400_000)]
    body = b"\n".join([*lines, b"LAST LINE of the log\n"])
    gcs_server.put(bucket, "run/train.log", body)
    root = ObjectRoot(f"gs://{bucket}")
    shown = preview_at(root, "run/train.log")
    assert "LAST LINE of the log" in shown.text
    assert 0 < root.stats.bytes <= 1 << 20 < len(body), (root.stats.bytes, len(body))


def test_cli_bucket_trash_restore_and_dups(
    gcs_server: GCSServer, gcs_fresh: Callable[..., str]
) -> None:
    bucket = gcs_fresh()
    url = f"gs://{bucket}/models"
    before = gcs_server.contents(bucket)
    dry = _json("bucket", "trash", url, "evil.pkl", "--json")
    assert dry["applied"] is False and gcs_server.contents(bucket) == before
    done = _json("bucket", "trash", url, "evil.pkl", "--apply", "--json")
    assert done["counts"] == {"trashed": 1} and "models/evil.pkl" not in gcs_server.contents(bucket)
    back = _json("bucket", "restore", url, done["batch"], "--json")
    assert back["counts"] == {"restored": 1}
    after = {k: v for k, v in gcs_server.contents(bucket).items() if TRASH not in k}
    assert after == before
    gcs_server.put(bucket, "models/copy.pkl", before["models/evil.pkl"])
    dups = _json("bucket", "dups", url, "--json")
    assert [g["paths"] for g in dups["duplicates"]] == [["copy.pkl", "evil.pkl"]], dups
