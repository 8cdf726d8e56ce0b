"""Names that print the same but are different bytes (``café`` in NFC and in NFD, a
zero-width joiner, a literal ``\\xff`` against byte 0xff) are spelled apart wherever a
listing shows them side by side; every other name stays as it reads."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from click.testing import CliRunner

from store import paths
from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.test_tui import explorer, settle, sync
from tui.app import ArtlensApp
from tui.cli import main
from tui.widgets.artifact_tree import ArtifactTree
from tui.widgets.runs_table import NAME_INDEX

NFC = "caf\u00e9"
NFD = "cafe\u0301"
KOREAN_NFD = "\u1112\u1161\u11ab\u1100\u116e\u11a8"  # 한국 as macOS writes it


def test_look_alikes_are_spelled_and_the_rest_read_as_they_are() -> None:
    names = [f"{NFC}.json", f"{NFD}.json", f"{KOREAN_NFD}.json", "model.pt", "x"]
    shown = paths.shown_names(names)
    assert shown == [f"{NFC}.json", "cafe\\u0301.json", f"{KOREAN_NFD}.json", "model.pt", "x"]
    # one of each pair stays plain, the other spells what differs
    cases = {
        ("model.pt", "mod\u00adel.pt"): ["model.pt", "mod\\u00adel.pt"],  # soft hyphen
        ("ab.pt", "a\u200db.pt"): ["ab.pt", "a\\u200db.pt"],  # zero-width joiner
        ("a.pt", "a.pt "): ["a.pt", "a.pt\\u0020"],  # a blank at the end
        ("file.pt", "\ufb01le.pt"): ["file.pt", "\\ufb01le.pt"],  # a ligature
        ("x\ufe0f", "x"): ["x\\ufe0f", "x"],  # a variation selector
    }
    for names_in, expected in cases.items():
        assert paths.shown_names(list(names_in)) == expected
    # an escape typed with a backslash against the byte or character it spells
    assert paths.shown_names([b"a\xff", "a\\xff"]) == ["a\\xff", "a\\\\xff"]
    assert paths.shown_names(["a\u200bb", "a\\u200bb"]) == ["a\\u200bb", "a\\\\u200bb"]
    # the same name twice is no look-alike; a name `visible` already escapes needs nothing
    assert paths.shown_names([f"{NFD}.json"] * 2) == [f"{NFD}.json"] * 2
    assert paths.shown_names(["model.pt", "mod\u200bel.pt"]) == ["model.pt", "mod\\u200bel.pt"]
    # Korean in NFC and NFD side by side: the NFD one is spelled
    korean_nfc = "\ud55c\uad6d"
    assert paths.shown_names([korean_nfc, KOREAN_NFD]) == [
        korean_nfc,
        "\\u1112\\u1161\\u11ab\\u1100\\u116e\\u11a8",
    ]


def test_a_plain_listing_is_shown_as_the_names_are_spelled_apart() -> None:
    """A listing of printable ASCII names is returned as it is (no call per name): only
    when ``spelled_apart`` and ``display`` would leave every name alone."""
    listings: list[list[str | bytes]] = [
        [],
        ["model.pt", "a/b c.ckpt", "epoch=1-val_loss=0.2.ckpt"],
        ["a.pt", "a.pt "],  # a blank at an end: look-alikes
        [" a.pt", "a.pt"],
        ["a /b", "a/b"],
        ["a\\xff", b"a\xff"],  # a backslash; bytes
        [b"plain", "plain2"],
        ["tab\there", "ok"],
        ["del\x7f", "ok"],
        ["caf\u00e9", "cafe"],
    ]
    for names in listings:
        apart = paths.spelled_apart(names)
        expected = [apart.get(i) or paths.display(n) for i, n in enumerate(names)]
        assert paths.shown_names(names) == expected, names


def test_spelled_names_never_collide() -> None:
    """However many look-alikes, each reads differently (the spelling is one to one)."""
    group: list[str | bytes] = [
        f"{NFC}.json",
        f"{NFD}.json",
        f"{NFC}\u200d.json",
        f"{NFC}.json ",
        f"{NFC}\u00ad.json",
        "caf\\u00e9.json",
        "cafe\\u0301.json",
        "cafe\\\\u0301.json",  # reads as the spelling of the one before
        b"caf\xff.json",
        "caf\\xff.json",
    ]
    shown = paths.shown_names(group)
    assert len(set(shown)) == len(group), shown


def index_files(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    """Files named ``names`` (root-relative, NFC and NFD kept as given), indexed."""
    root = tmp_path / "tree"
    for rel in names:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"a": 1}\n')
    # the filesystem kept both spellings (it does not normalise names)
    assert sum(1 for p in root.rglob("*") if p.is_file()) == len(set(names))
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    return root, db_path


def rescan(root: Path, db_path: Path, *, hashed: bool = False) -> None:
    with WriterLock(db_path):
        db = open_db(db_path)
        indexer = Indexer(db, root)
        indexer.scan()
        if hashed:
            indexer.hash_pending()
        db.conn.close()


def tree_labels(tree: ArtifactTree) -> list[str]:
    return [str(c.label).split("  ")[0] for c in tree.root.children if c.data and c.data.entry]


@sync
async def test_the_tree_spells_look_alike_siblings_apart(tmp_path: Path) -> None:
    names = [f"run/{NFC}.json", f"run/{NFD}.json", f"run/{KOREAN_NFD}.json", "run/m.json"]
    names += [f"run/{NFC}/a.json", f"run/{NFD}/a.json", "run/sub/cafe\u0301.json"]
    root, db_path = index_files(tmp_path, names)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        labels = tree_labels(tree)
        assert len(set(labels)) == len(labels), labels
        assert f"{NFC}/" in labels and "cafe\\u0301/" in labels  # folders
        assert f"{NFC}.json" in labels and "cafe\\u0301.json" in labels  # files
        assert f"{KOREAN_NFD}.json" in labels  # no twin: as it reads
        # on screen too: every row of the tree reads differently
        lines = ["".join(s.text for s in tree.render_line(y)) for y in range(tree.last_line + 1)]
        names_on_screen = [line.strip().split("  ")[0] for line in lines]
        assert len(set(names_on_screen)) == len(names_on_screen), names_on_screen
        # a lone NFD name in a folder of its own stays readable
        sub = next(c for c in tree.root.children if c.data and c.data.key == b"run/sub")
        sub.expand()
        await settle(pilot)
        assert [str(c.label).split("  ")[0] for c in sub.children] == ["cafe\u0301.json"]
        # marking the NFD twin for a diff names it as the tree shows it
        nfd = next(
            c for c in tree.root.children if c.data and c.data.key.endswith(b"e\xcc\x81.json")
        )
        tree.move_cursor(nfd)
        await pilot.press("space")
        assert "cafe\\u0301.json" in tree.marked_files.values()


@sync
async def test_a_look_alike_arriving_or_leaving_respells_the_folder(tmp_path: Path) -> None:
    root, db_path = index_files(tmp_path, [f"run/{NFC}.json", f"run/{NFD}.json", "run/b.json"])
    (root / "run" / f"{NFD}.json").unlink()
    rescan(root, db_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        assert tree_labels(tree) == ["b.json", f"{NFC}.json"]
        (root / "run" / f"{NFD}.json").write_text("{}\n")
        rescan(root, db_path)
        deadline = time.monotonic() + 60  # generous: a loaded machine is slow, not wrong
        while len(tree_labels(tree)) != 3 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await settle(pilot)
        assert sorted(tree_labels(tree)) == sorted(["b.json", f"{NFC}.json", "cafe\\u0301.json"])
        (root / "run" / f"{NFC}.json").unlink()
        rescan(root, db_path)
        deadline = time.monotonic() + 60  # generous: a loaded machine is slow, not wrong
        while len(tree_labels(tree)) != 2 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await settle(pilot)
        assert tree_labels(tree) == ["b.json", f"{NFD}.json"]  # alone again: as it reads


@sync
async def test_the_runs_table_spells_look_alike_run_names_apart(tmp_path: Path) -> None:
    root, db_path = index_files(
        tmp_path, [f"run/{NFC}.json", f"run/{NFD}.json", f"{NFC}/m.json", f"{NFD}/m.json"]
    )
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = explorer(app).table
        names = [str(table.get_row_at(i)[NAME_INDEX]).strip() for i in range(table.row_count)]
        assert sorted(names) == sorted([NFC, "cafe\\u0301", "run"]), names


def test_ls_and_runs_spell_look_alikes_and_json_keeps_them_exact(tmp_path: Path) -> None:
    files = [f"run/{NFC}.json", f"run/{NFD}.json", f"run/{KOREAN_NFD}.json"]
    root, db_path = index_files(tmp_path, [*files, f"{NFC}/m.json", f"{NFD}/m.json"])
    runner = CliRunner()
    ls = runner.invoke(main, ["ls", "--db", str(db_path)])
    assert ls.exit_code == 0, ls.output
    shown = [line.split("\t")[-1] for line in ls.output.splitlines()]
    assert len(set(shown)) == len(shown), shown
    assert f"run/{NFC}.json" in shown and "run/cafe\\u0301.json" in shown
    assert f"run/{KOREAN_NFD}.json" in shown
    assert f"{NFC}/m.json" in shown and "cafe\\u0301/m.json" in shown
    as_json = json.loads(runner.invoke(main, ["ls", "--json", "--db", str(db_path)]).output)
    assert {f"run/{NFC}.json", f"run/{NFD}.json"} <= {a["relpath"] for a in as_json}

    runs = runner.invoke(main, ["runs", "--db", str(db_path)])
    assert runs.exit_code == 0, runs.output
    rows = [line.split("\t") for line in runs.output.splitlines()]
    assert sorted(r[1] for r in rows) == sorted([NFC, "cafe\\u0301", "run"])
    assert {r[-1] for r in rows} >= {str(root / NFC), str(root) + "/cafe\\u0301"}
    runs_json = runner.invoke(main, ["runs", "--json", "--db", str(db_path)]).output
    names = {run["name"] for run in json.loads(runs_json)}
    assert {NFC, NFD} <= names


def checkpoint_tree(tmp_path: Path) -> tuple[Path, Path]:
    """Two runs named cafe (NFC and NFD), each with checkpoints cafe.ckpt in NFC and NFD
    (same bytes: duplicates) and a newer one, written long ago (none looks live)."""
    names = []
    for run in (NFC, NFD, "run"):
        names += [f"{run}/hparams.yaml"]
        names += [f"{run}/checkpoints/{c}.ckpt" for c in (NFC, NFD, "z-last")]
    root, _ = index_files(tmp_path, [*names])
    old = 1_700_000_000
    for index, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file())):
        stamp = old + (1000 if "z-last" in path.name else index)
        os.utime(path, (stamp, stamp))
    db_path = tmp_path / "index.db"
    rescan(root, db_path, hashed=True)
    return root, db_path


def test_retention_plan_trash_and_du_spell_look_alikes(tmp_path: Path) -> None:
    root, db_path = checkpoint_tree(tmp_path)
    runner = CliRunner()
    db = ["--db", str(db_path)]
    du = runner.invoke(main, ["du", str(root), "--top", "50", *db])
    assert du.exit_code == 0, du.output
    run_rows = [line.split()[-1] for line in du.output.splitlines() if line.startswith(" ")]
    assert NFC in run_rows and "cafe\\u0301" in run_rows, du.output
    copies = next(line for line in du.output.splitlines() if " copies: " in line)
    shown = copies.split(" copies: ")[1].split(" +")[0].split(", ")
    assert len(set(shown)) == len(shown) == 3, du.output

    plan = runner.invoke(main, ["retention", "plan", str(root), "--keep-last", "1", *db])
    assert plan.exit_code == 0, plan.output
    lines = plan.output.splitlines()
    runs = [line.split(":")[0].strip() for line in lines if ": keep " in line]
    runs.remove("total")
    assert sorted(runs) == sorted([NFC, "cafe\\u0301", "run"]), plan.output
    removed = [line.split()[1] for line in lines if line.strip().startswith("remove ")]
    assert len(removed) == 6
    assert removed.count(f"checkpoints/{NFC}.ckpt") == 3, plan.output
    assert removed.count("checkpoints/cafe\\u0301.ckpt") == 3, plan.output
    plan_id = lines[-1].split()[1].rstrip(":")

    applied = runner.invoke(main, ["retention", "apply", plan_id, "--yes", *db])
    assert applied.exit_code == 0, applied.output
    trashed = [
        line.split()[1] for line in applied.output.splitlines() if line.startswith("trashed ")
    ]
    assert len(set(trashed[:-1])) == 6, applied.output  # the last line counts them
    # a path that looks like another is spelled whole; the plain one reads as it is
    assert f"{NFC}/checkpoints/{NFC}.ckpt" in trashed
    assert "cafe\\u0301/checkpoints/caf\\u00e9.ckpt" in trashed
    assert "caf\\u00e9/checkpoints/cafe\\u0301.ckpt" in trashed

    listed = runner.invoke(main, ["trash", "list", "--root", str(root), *db])
    assert listed.exit_code == 0, listed.output
    paths_listed = [
        line.split("B  ", 1)[1].rsplit("  (", 1)[0] for line in listed.output.splitlines()[:-1]
    ]
    assert len(set(paths_listed)) == 6, listed.output
    as_json = json.loads(
        runner.invoke(main, ["trash", "list", "--json", "--root", str(root), *db]).output
    )
    assert f"{NFD}/checkpoints/{NFD}.ckpt" in {e["path"] for e in as_json}


@sync
async def test_the_retention_view_and_disk_usage_spell_look_alikes(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    root, db_path = checkpoint_tree(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot, rounds=5)
        plan = app.screen.query_one("#ret-plan", DataTable)
        first = [str(plan.get_row_at(i)[0]).strip() for i in range(plan.row_count)]
        runs = [first[i] for i in range(len(first)) if plan.get_row_at(i)[2] == ""]
        assert sorted(runs) == sorted([NFC, "cafe\\u0301", "run"]), first
        items = first[first.index("run") + 1 : first.index("run") + 4]
        assert len(set(items)) == 3 and f"checkpoints/{NFC}.ckpt" in items, first
        assert any(item.endswith("cafe\\u0301.ckpt") for item in items), first
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("U")
        await settle(pilot, rounds=5)
        table = app.screen.query_one("#du-table", DataTable)
        await pilot.press("enter")  # one root: it starts inside it; into "(no experiment)"
        await settle(pilot, rounds=5)
        names = [str(table.get_row_at(i)[-1]).split()[0] for i in range(table.row_count)]
        assert sorted(names) == sorted([f"{NFC}/", "cafe\\u0301/", "run/"]), names
