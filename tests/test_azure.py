"""az:// roots against Azurite on loopback (skipped, saying how to install it, where it is
missing): listings with hostile names, reads pinned to the ETag, the index and
``runs --json`` equal to the local index, ``scan`` flagging the malicious pickle, and
retention apply + restore round-tripping every byte."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from azure_server import AzureServer, azure_fresh, azure_seeded, azure_server
from bucket_checks import (
    index_matches_the_local_index,
    polling_finds_a_new_object_and_prices_its_listings,
)
from click.testing import CliRunner

from store.retention.bucket import TRASH, BucketTrash
from store.root import ChangedError, NotFound, RootError, open_root
from store.root.objstore import BLOCK_SIZE, ObjectRoot, encode_part, key_to_rel
from tui.cli import main

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["azure_fresh", "azure_seeded", "azure_server"]


def test_listing_names_and_hostile_keys(azure_seeded: dict[str, Any]) -> None:
    root = open_root(f"az://{azure_seeded['container']}")
    assert isinstance(root, ObjectRoot) and root.scheme == "az"
    assert {e.name for e in root.list_dir()} == {"hostile", "lightning", "mlflow", "models"}
    assert {"%", encode_part("%41.txt"), "[bold]x.txt"} == {
        e.name for e in root.list_dir("hostile")
    }
    walked = dict(root.walk())
    evil = root.stat("models/evil.pkl")
    assert {e.name: e.identity for e in walked["models"]} == {"evil.pkl": evil.identity}
    files = sum(1 for entries in walked.values() for e in entries if e.kind == "file")
    assert files == len(azure_seeded["files"])
    with pytest.raises(NotFound):
        root.stat("models/nothing-here")


def test_reads_are_pinned_to_the_etag(azure_server: AzureServer) -> None:
    container = azure_server.new_container()
    body = bytes(range(256)) * (3 * BLOCK_SIZE // 256)
    azure_server.put(container, "m/model.bin", body)
    azure_server.put(container, "m/empty.txt", b"")
    root = ObjectRoot(f"az://{container}")
    assert root.read_capped("m/model.bin", 10) == (body[:10], True)
    assert root.read_capped("m/empty.txt", 10) == (b"", False)
    with root.open("m/empty.txt") as empty:
        assert empty.size == 0 and empty.read_at(0, 10) == b""
    with root.open("m/model.bin") as reader:
        assert reader.size == len(body)
        assert reader.identity == root.stat("m/model.bin").identity
        assert reader.read_at(BLOCK_SIZE + 5, 10) == body[BLOCK_SIZE + 5 : BLOCK_SIZE + 15]
        azure_server.put(container, "m/model.bin", b"\0" * len(body))  # same size, new bytes
        with pytest.raises(ChangedError):
            reader.read_at(2 * BLOCK_SIZE, 10)  # never a block of the new bytes
    assert root.stats.bytes < 4 * BLOCK_SIZE + 64


def test_missing_container_is_one_line(azure_server: AzureServer) -> None:
    with pytest.raises(RootError) as caught:
        ObjectRoot("az://no-such-container-here").list_dir()
    assert "\n" not in str(caught.value) and "no-such-container-here" in str(caught.value)


def test_index_matches_the_local_index(azure_seeded: dict[str, Any], tmp_path: Path) -> None:
    url = f"az://{azure_seeded['container']}"
    root = index_matches_the_local_index(url, azure_seeded["files"], tmp_path)
    assert root.stats.requests > 0


def test_cli_index_runs_ls_and_scan(azure_seeded: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"az://{azure_seeded['container']}"
    db = str(tmp_path / "bucket.db")
    result = runner.invoke(main, ["index", url, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["roots"][0]
    assert report["root"] == url and report["files"] == len(azure_seeded["files"])
    runs = json.loads(runner.invoke(main, ["runs", "--json", "--db", db]).output)
    assert sorted(r["params"]["lr"] for r in runs if r["framework"] == "mlflow") == [0.05, 0.1]
    listed = runner.invoke(main, ["ls", "--db", db])
    assert "hostile/%/double.txt" in listed.output
    assert "models/evil.pkl\tdangerous" in listed.output
    scan = runner.invoke(main, ["scan", url])
    assert scan.exit_code == 1 and "evil.pkl" in scan.output, scan.output


CHOSEN = [
    "models/evil.pkl",
    "lightning/lightning_logs/version_0/checkpoints/last.ckpt",
    "hostile/[bold]x.txt",
    "hostile//double.txt",
]


def test_retention_apply_restore_purge_round_trip(
    azure_server: AzureServer, azure_fresh: Callable[[], str]
) -> None:
    container = azure_fresh()
    before = azure_server.contents(container)
    trash = BucketTrash(ObjectRoot(f"az://{container}"))
    plan = trash.plan([key_to_rel(k) for k in CHOSEN])
    assert azure_server.keys(container) == set(before)
    assert plan.total_bytes == sum(len(before[k]) for k in CHOSEN)
    assert all(i.note == "" for i in plan.items)  # no S3 multipart ETag notes here
    applied = trash.apply(plan)
    assert applied.counts() == {"trashed": len(CHOSEN)}, applied.to_json()
    live = {k for k in azure_server.keys(container) if not k.startswith(TRASH)}
    assert live == set(before) - set(CHOSEN)
    restored = BucketTrash(ObjectRoot(f"az://{container}")).restore(trash.load(plan.batch))
    assert restored.counts() == {"restored": len(CHOSEN)}
    after = {k: v for k, v in azure_server.contents(container).items() if TRASH not in k}
    assert after == before  # every byte back
    again = trash.apply(trash.plan(["models/evil.pkl"]))
    assert trash.purge(again).counts() == {"purged": 1}
    assert "models/evil.pkl" not in azure_server.keys(container)
    assert azure_server.keys(container, f"{TRASH}/{again.batch}/") == set()


def test_retention_leaves_a_blob_rewritten_after_the_plan(azure_server: AzureServer) -> None:
    container = azure_server.new_container()
    azure_server.put(container, "run/a.ckpt", b"planned bytes")
    trash = BucketTrash(ObjectRoot(f"az://{container}"))
    plan = trash.plan(["run/a.ckpt"])
    azure_server.put(container, "run/a.ckpt", b"written after the plan")
    assert trash.apply(plan).counts() == {"changed": 1}
    left = azure_server.contents(container)
    assert left["run/a.ckpt"] == b"written after the plan"
    assert not [k for k in left if k.startswith(f"{TRASH}/{plan.batch}/")]


def test_polling_a_container_prices_its_listings(
    azure_server: AzureServer, azure_fresh: Callable[[], str], tmp_path: Path
) -> None:
    container = azure_fresh()
    polling_finds_a_new_object_and_prices_its_listings(
        f"az://{container}", partial(azure_server.put, container), "list_blobs", tmp_path
    )


def _wait(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
