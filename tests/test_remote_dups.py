"""Duplicates across hosts: two indexes on this machine act as hosts (``--command``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_checklist import index_tree
from tests.test_remote import add, cli, host_command, make_host

RUN = "lightning/lightning_logs/version_0"


@pytest.fixture(autouse=True)
def isolated(isolated_cache: Path) -> Iterator[None]:
    yield


def by_path(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each listed copy's path (host-prefixed) -> its group."""
    return {f"{c['host']}:{c['path']}": g for g in groups for c in g["copies"]}


def test_the_same_bytes_on_two_hosts_are_listed_together_and_only_by_full_hash(
    tmp_path: Path,
) -> None:
    root_a, db_a = make_host(tmp_path, "gpu1", "lightning")
    root_b, db_b = make_host(tmp_path, "gpu2", "lightning")
    (root_b / RUN / "checkpoints" / "last.ckpt").write_bytes(b"other weights")
    index_tree(root_b, db_b)
    conn = sqlite3.connect(db_b)  # the host's index: one hash pending, one size a lie
    with conn:
        conn.execute(
            "UPDATE artifacts SET hash_state = 'pending' WHERE path = ?",
            [f"{RUN}/hparams.yaml".encode()],
        )
        conn.execute(
            "UPDATE artifacts SET size = size + 1 WHERE path = ?",
            [f"{RUN}/metrics.csv".encode()],
        )
    conn.close()
    add("gpu1", host_command(db_a))
    add("gpu2", host_command(db_b))
    assert cli("remote", "pull")[0] == 0

    code, out, err = cli("remote", "dups", "gpu1", "gpu2", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["hosts"] == ["gpu1", "gpu2"]
    groups = listed["duplicates"]
    assert groups and all(g["hosts"] == ["gpu1", "gpu2"] for g in groups)
    found = by_path(groups)
    same = f"{RUN}/checkpoints/epoch2-val0.0854.ckpt"
    pair = found[f"gpu1:{root_a / same}"]
    assert f"gpu2:{root_b / same}" in {f"{c['host']}:{c['path']}" for c in pair["copies"]}
    assert len(pair["hash"]) == 32 and pair["algorithm"] == "xxh3-128"
    assert pair["size_bytes"] == (root_a / same).stat().st_size
    # changed bytes, a hash not finished on one side, sizes that disagree: never a copy
    for name in ("checkpoints/last.ckpt", "hparams.yaml", "metrics.csv"):
        assert f"gpu2:{root_b / RUN / name}" not in found, name
    assert f"gpu1:{root_a / RUN / 'metrics.csv'}" not in found
    assert any("different sizes" in w for w in listed["warnings"])
    # most bytes first
    sizes = [g["size_bytes"] * (sum(g["files"].values()) - 1) for g in groups]
    assert sizes == sorted(sizes, reverse=True)

    code, out, err = cli("remote", "dups", "gpu1", "gpu2")
    assert code == 0, err
    assert "gpu1 ×" in out and "gpu2 ×" in out

    code, _out, err = cli("remote", "dups", "gpu1")
    assert code != 0 and "fewer than two" in err
