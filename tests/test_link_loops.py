"""A symlink loop is a loop, not a link to nothing.

``loop_a -> loop_b``, ``loop_b -> loop_a`` (and ``self -> self``) were reported as
"points to nothing" in the run's warnings and as "(dangling)" in the file tree:
``os.path.exists`` is False for ELOOP as for ENOENT.  A target that is gone is still
"points to nothing"; a loop says so.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from store.inspect.refs import dangling_refs
from tests.conftest import index_dated
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.cli import main
from tui.screens.explorer import ExplorerScreen

NOW = 1_780_000_000.0


def linked_run(base: Path) -> tuple[Path, Path]:
    """A Lightning run holding a two-link loop, a link to itself and a dangling link."""
    root = base / "root"
    run = root / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("step,loss\n0,1.0\n")
    os.symlink("loop_b", run / "loop_a")
    os.symlink("loop_a", run / "loop_b")
    os.symlink("self.ckpt", run / "self.ckpt")
    os.symlink("missing.ckpt", run / "gone.ckpt")
    db_path = base / "index.db"
    index_dated(root, db_path, NOW, 7200)
    return root, db_path


EXPECTED = [
    "gone.ckpt: symlink to missing.ckpt points to nothing",
    "loop_a: symlink to loop_b is a link loop (too many levels of links)",
    "loop_b: symlink to loop_a is a link loop (too many levels of links)",
    "self.ckpt: symlink to self.ckpt is a link loop (too many levels of links)",
]


def test_a_link_loop_is_named_a_loop_in_the_run_warnings(tmp_path: Path) -> None:
    root, db_path = linked_run(tmp_path)
    assert dangling_refs(root / "lightning_logs" / "version_0") == EXPECTED
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    assert [w for w in run["warnings"] if "symlink" in w] == EXPECTED
    from store.integrity import link_state

    assert [link_state(w.split(": ", 1)[1]) for w in EXPECTED] == [
        "dangling",
        "link loop",
        "link loop",
        "link loop",
    ]


def test_a_link_whose_target_cannot_be_looked_at_is_not_called_gone(tmp_path: Path) -> None:
    """As a user who may not look into the target's folder (EACCES) the target may well be
    there: "cannot be followed (permission denied)", not "points to nothing"."""
    import subprocess
    import tempfile

    from tests.conftest import unprivileged_python

    python = unprivileged_python()
    base = Path(tempfile.mkdtemp(prefix="artlens-links-"))
    try:
        base.chmod(0o755)
        run = base / "run"
        (run / "locked").mkdir(parents=True)
        (run / "locked" / "best.ckpt").write_bytes(b"weights")
        os.symlink("locked/best.ckpt", run / "last.ckpt")
        run.chmod(0o755)
        (run / "locked").chmod(0o000)
        found = subprocess.run(
            [
                *python,
                "-c",
                "import json, sys; from store.inspect.refs import dangling_refs;"
                " print(json.dumps(dangling_refs(sys.argv[1])))",
                str(run),
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=120,
        )
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout) == [
            "last.ckpt: symlink to locked/best.ckpt cannot be followed (permission denied)"
        ]
    finally:
        (base / "run" / "locked").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
    from store.integrity import link_state

    assert link_state("symlink to x cannot be followed (permission denied)") == "unreachable"
    assert link_state("symlink to x points to nothing") == "dangling"


@sync
async def test_the_tree_labels_a_loop_as_a_loop(tmp_path: Path) -> None:
    root, db_path = linked_run(tmp_path)
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        (run,) = screen.runs.values()
        screen.jump_to_run(run.id)
        await settle(pilot)
        labels = {
            str(node.label).split(" ")[1]: str(node.label)
            for node in screen.file_tree.root.children
            if str(node.label).startswith("! ")
        }
        assert set(labels) == {"gone.ckpt", "loop_a", "loop_b", "self.ckpt"}, labels
        assert "(dangling)" in labels["gone.ckpt"]
        for name in ("loop_a", "loop_b", "self.ckpt"):
            assert "(link loop)" in labels[name] and "dangling" not in labels[name], labels
