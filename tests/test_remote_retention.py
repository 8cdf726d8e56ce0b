"""Retention on a remote host through the ``--command`` transport: planned, applied and
restored there by its own artlens; the result comes back through the feed."""

from __future__ import annotations

import json
import shlex
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_checklist import index_tree
from tests.test_remote import add, cli, host_command, make_host


@pytest.fixture(autouse=True)
def isolated(isolated_cache: Path) -> Iterator[None]:
    yield


def index_paths(db: Path) -> set[bytes]:
    conn = sqlite3.connect(db)
    try:
        return {bytes(p) for (p,) in conn.execute("SELECT path FROM artifacts")}
    finally:
        conn.close()


def test_a_plan_is_made_applied_and_restored_on_its_host(tmp_path: Path) -> None:
    root, db = make_host(tmp_path, "gpu1", "lightning")
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 1\n")
    index_tree(root, db)
    add("gpu1", host_command(db))
    before = index_paths(db)

    code, out, err = cli("remote", "retention", "plan", "--json")
    assert code == 0, err
    (plan,) = json.loads(out)
    assert plan["host"] == "gpu1" and plan["plan"].startswith("gpu1:") and plan["removals"] > 0

    code, out, err = cli("remote", "retention", "apply", plan["plan"])  # a dry run there
    assert code == 0, err
    assert f"gpu1: dry run: {plan['removals']} item(s)" in out
    assert index_paths(db) == before

    code, out, err = cli("remote", "retention", "apply", plan["plan"], "--yes", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["applied"] and report["pull_error"] is None
    assert len(report["done"]) == plan["removals"] and not report["skipped"]
    moved = [root / r["path"] for r in report["done"]]
    assert moved and not any(p.exists() for p in moved)  # on the host's disk: in its trash
    gone = {r["path"].encode() for r in report["done"]}
    from store.remote import config

    mirror = config.get("gpu1").mirror_path
    after = index_paths(mirror)  # the feed brought the result back
    assert after < before and not any(p.startswith(g) for p in after for g in gone)

    code, out, err = cli("remote", "retention", "restore", "gpu1", "--all", "--json")
    assert code == 0, err
    assert len(json.loads(out)["done"]) == plan["removals"]
    assert all(p.exists() for p in moved)
    assert index_paths(mirror) == before


def test_a_host_answer_never_writes_here_and_is_shown_escaped(tmp_path: Path) -> None:
    precious = tmp_path / "precious.ckpt"
    precious.write_bytes(b"weights")
    answer = {
        "plan": "p1",
        "applied": True,
        "done": [
            {
                "root": "/",
                "path": f"{precious}\x1b]52;c;aGk=\x07",
                "outcome": "trashed",
                "reason": "",
                "size_bytes": 7,
                "id": "x",
            }
        ],
        "skipped": [],
        "bytes_done": 7,
    }
    script = tmp_path / "host.py"
    script.write_text(f"import sys\nsys.stdout.write({json.dumps(answer)!r})\n")
    add("liar", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    code, out, err = cli("remote", "retention", "apply", "liar:p1", "--yes")
    assert precious.read_bytes() == b"weights"
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "mirror not updated" in err  # its feed is no feed: the mirror stays as it was

    script.write_text("print('{\"done\": [1, 2]}')\n")
    code, out, err = cli("remote", "retention", "apply", "liar:p1", "--yes")
    assert code == 1 and err.strip().count("\n") == 0 and "not an object" in err

    code, _out, err = cli("remote", "retention", "apply", "liar:../../etc/passwd", "--yes")
    assert code == 1 and "not a plan id" in err
    code, _out, err = cli("remote", "retention", "purge", "liar", "--older-than", "-rf /")
    assert code == 2 and "not an age" in err


def test_an_ssh_index_path_goes_after_the_subcommand() -> None:
    from store.remote.config import Remote

    remote = Remote("gpu1", url="ssh://me@gpu1/srv/index.db")
    command = remote.argv(["retention", "apply", "p1", "--json"], words=2)[-1]
    assert shlex.split(command) == ["artlens", "retention", "apply", "--db", "/srv/index.db",
                                    "p1", "--json"]  # fmt: skip
    assert shlex.split(remote.argv(["feed", "--json"])[-1])[:4] == [
        "artlens", "feed", "--db", "/srv/index.db"
    ]  # fmt: skip


def test_a_host_apply_that_skips_items_exits_1_with_its_report(tmp_path: Path) -> None:
    """A host's ``retention apply --yes`` that skipped checkpoints changed since the plan
    exited 0 here, so ``remote retention apply ... && ...`` went on as if the space were
    freed.  The host now exits 1 with its report: here the report is still shown (a host
    exit 1 is no failure of the transport when it names what it skipped), each skipped
    item is one line on stderr, and the command exits 1."""
    root, db = make_host(tmp_path, "gpu1", "lightning")
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 1\n")
    index_tree(root, db)
    add("gpu1", host_command(db))
    code, out, err = cli("remote", "retention", "plan", "--json")
    assert code == 0, err
    (plan,) = json.loads(out)
    assert plan["removals"] > 0
    for ckpt in root.rglob("*.ckpt"):  # every checkpoint rewritten since the plan
        if not ckpt.is_symlink():
            ckpt.write_bytes(ckpt.read_bytes() + b"more")
    code, out, err = cli("remote", "retention", "apply", plan["plan"], "--yes", "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["done"] == [] and len(report["skipped"]) == plan["removals"]
    lines = err.splitlines()
    assert len(lines) == plan["removals"], err
    assert all(line.startswith("artlens: gpu1: skipped ") for line in lines), err
    code, out, err = cli("remote", "retention", "apply", plan["plan"], "--yes")
    assert code == 1, err
    assert "gpu1: apply: 0 (0B), skipped" in out
    assert all(line.startswith("artlens: gpu1: skipped ") for line in err.splitlines()), err


def test_the_readme_documents_the_remote_skip_line() -> None:
    """README said every skipped item is `artlens: skipped PATH: why`, while the remote
    commands write `artlens: HOST: skipped PATH: why` (the test above): a script parsing
    the documented form missed every one.  The README names both."""
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "`artlens: skipped PATH: why`" in readme
    assert readme.count("`artlens: HOST: skipped PATH: why`") == 2  # the rule and the table
