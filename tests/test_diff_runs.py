"""Run diffs over plain data: params, metrics with direction, env packages, artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.diff import (
    DiffError,
    MetricSummary,
    RunSide,
    diff_runs,
    metric_direction,
    parse_conda_env,
    parse_requirements,
)
from tests.test_tui import sync


def test_params_metrics_env() -> None:
    old = RunSide(
        params={"optim.lr": 0.1, "model.layers": 4, "seed": 1, "sched": {"k": 1}},
        metrics={
            "val/loss": {"last": 0.5, "best": 0.4, "direction": None},
            "val/acc": MetricSummary(0.8, 0.85),
            "custom": {"last": 2, "best": 2, "direction": "max"},
            "throughput_only_old": {"last": 10},
        },
        env={"torch": "2.1.0", "numpy": "1.26.0"},
    )
    new = RunSide(
        params={"optim.lr": 0.05, "model.layers": 4, "dropout": 0.1, "sched": {"k": 2}},
        metrics={
            "val/loss": {"last": 0.4},
            "val/acc": MetricSummary(0.75, 0.9),
            "custom": {"last": 2},
        },
        env={"torch": "2.2.0", "pandas": "2.0"},
    )
    result = diff_runs(old, new)
    assert {(c.path, c.kind) for c in result.params} == {
        ("optim.lr", "changed"),
        ("seed", "removed"),
        ("dropout", "added"),
        ("sched.k", "changed"),
    }
    metrics = {m.name: m for m in result.metrics}
    assert metrics["val/loss"].better == "new" and metrics["val/loss"].direction == "min"
    assert metrics["val/loss"].delta == pytest.approx(-0.1)
    assert metrics["val/loss"].percent == pytest.approx(-20.0)
    assert metrics["val/acc"].better == "old" and metrics["val/acc"].direction == "max"
    assert metrics["custom"].better == "same"
    assert (
        metrics["throughput_only_old"].new is None and metrics["throughput_only_old"].delta is None
    )
    assert {(p.name, p.kind, p.old, p.new) for p in result.env} == {
        ("torch", "changed", "2.1.0", "2.2.0"),
        ("numpy", "removed", "1.26.0", None),
        ("pandas", "added", None, "2.0"),
    }
    assert not result.equal
    assert diff_runs(old, old).equal


def test_a_metric_that_became_nan_is_never_the_better_one() -> None:
    """0.87 -> NaN accuracy is no improvement, nor 0.2 -> inf; two NaN losses are the
    same value but no number: no delta (``NaN - NaN`` is no 0), no "same" verdict, and a
    line saying so (two diverged runs are equal, never silently fine)."""
    nan, inf = float("nan"), float("inf")
    old = RunSide(
        metrics={
            "val_acc": {"last": 0.87},
            "val_loss": {"last": nan},
            "f1": {"last": nan},
            "top5_acc": {"last": 0.2},
            "grad_norm": {"last": inf},
        }
    )
    new = RunSide(
        metrics={
            "val_acc": {"last": nan},
            "val_loss": {"last": nan},
            "f1": {"last": 0.5},
            "top5_acc": {"last": inf},
            "grad_norm": {"last": inf},
        }
    )
    result = diff_runs(old, new)
    metrics = {m.name: m for m in result.metrics}
    assert metrics["val_acc"].direction == "max" and metrics["val_acc"].better is None
    assert metrics["f1"].direction == "max" and metrics["f1"].better is None
    assert metrics["top5_acc"].better is None and metrics["top5_acc"].percent is None
    loss = metrics["val_loss"]
    assert (loss.delta, loss.percent, loss.better) == (None, None, None)
    assert metrics["grad_norm"].delta is None
    assert not result.equal
    assert result.nonfinite == [
        "metric grad_norm is Infinity in both runs (its last value): unchanged, but no run "
        "is better by it",
        "metric val_loss is NaN in both runs (its last value): unchanged, but no run is "
        "better by it",
    ]
    same = diff_runs(old, RunSide(metrics={**old.metrics}))
    assert same.equal and len(same.nonfinite) == 3  # f1 too


def test_metric_direction_from_names() -> None:
    assert metric_direction("train/loss") == "min"
    assert metric_direction("val_accuracy") == "max"
    assert metric_direction("eval/f1") == "max"
    assert metric_direction("lr") is None


def test_artifacts_added_removed_changed_moved() -> None:
    old = RunSide(
        artifacts=[
            ("model.pt", 100, "h1"),
            ("config.yaml", 10, "h2"),
            ("logs/old.txt", 5, "h3"),
            ("gone.bin", 7, "h4"),
            ("nohash.bin", 9, None),
        ]
    )
    new = RunSide(
        artifacts=[
            ("model.pt", 100, "h1"),
            ("config.yaml", 11, "h2b"),
            ("logs/renamed.txt", 5, "h3"),
            ("fresh.bin", 8, "h5"),
            ("nohash.bin", 9, "h6"),
        ]
    )
    result = diff_runs(old, new).artifacts
    assert result.unchanged == ["model.pt"]
    assert [c.path for c in result.changed] == ["config.yaml"]
    assert [(m.old_path, m.new_path) for m in result.moved] == [
        ("logs/old.txt", "logs/renamed.txt")
    ]
    assert [c.path for c in result.removed] == ["gone.bin"]
    assert [c.path for c in result.added] == ["fresh.bin"]
    assert result.unverified == ["nohash.bin"]


def test_ten_thousand_artifacts_per_side() -> None:
    """Moves, changes, additions and removals among 10,000 artifacts a side (how fast is
    ``tests/bench/bench_diff.py``'s to say, not a timed test's)."""
    old = [(f"ckpt/{i:05d}.pt", i, f"hash{i}") for i in range(10_000)]
    new = [(f"ckpt/{i:05d}.pt", i, f"hash{i}") for i in range(2_000, 10_000)]
    new += [(f"moved/{i:05d}.pt", i, f"hash{i}") for i in range(1_000)]
    new += [(f"new/{i:05d}.pt", i, f"fresh{i}") for i in range(1_000)]
    new[0] = ("ckpt/02000.pt", 1, "different")
    result = diff_runs(RunSide(artifacts=old), RunSide(artifacts=new)).artifacts
    assert len(result.moved) == 1_000 and len(result.added) == 1_000
    assert len(result.removed) == 1_000 and len(result.changed) == 1
    assert len(result.unchanged) == 7_999


def test_parse_requirements() -> None:
    text = (
        "# pinned\n"
        "torch==2.1.0\n"
        'numpy>=1.24 ; python_version > "3.8"\n'
        "-r other.txt\n"
        "--index-url https://example.org\n"
        "Foo_Bar[extra]==1.0  # why\n"
        "git+https://github.com/x/y.git\n"
        "pkg @ https://example.org/pkg.whl\n"
        "long==1.0 \\\n"
        "    --hash=sha256:abc\n"
    )
    assert parse_requirements(text) == {
        "torch": "2.1.0",
        "numpy": ">=1.24",
        "foo-bar": "1.0",
        "pkg": "@ https://example.org/pkg.whl",
        "long": "1.0",
    }


def test_parse_conda_env() -> None:
    text = (
        "name: train\n"
        "channels: [conda-forge]\n"
        "dependencies:\n"
        "  - python=3.11.5\n"
        "  - numpy=1.26.0=py311h64a7726_0\n"
        "  - conda-forge::scipy>=1.11\n"
        "  - cudatoolkit\n"
        "  - pip:\n"
        "    - torch==2.1.0\n"
    )
    assert parse_conda_env(text) == {
        "python": "3.11.5",
        "numpy": "1.26.0",
        "scipy": ">=1.11",
        "cudatoolkit": "",
        "torch": "2.1.0",
    }
    with pytest.raises(DiffError):
        parse_conda_env("dependencies: [unclosed\n")
    with pytest.raises(DiffError):
        parse_conda_env("- just\n- a list\n")


# --- config files compared by value ---------------------------------------------------------


def test_config_formats_by_name() -> None:
    from store.diff.configs import config_format

    assert [
        config_format(n)
        for n in ("a.yaml", "x/args.yaml", "c.json", "p.toml", "train.args", "args.txt", "y.cfg")
    ] == ["yaml", "yaml", "json", "toml", "args", "args", "ini"]
    assert config_format("model.pt") is None and config_format("notes.txt") is None


def test_args_and_ini_parsing() -> None:
    from store.diff.configs import parse_args, parse_ini

    assert parse_args("--lr 1e-3 --amp -n=4 --shift -1 data 'a b' # comment\n--x") == {
        "lr": 0.001,
        "amp": True,
        "n": 4,
        "shift": -1,
        "x": True,
        "_positional": ["data", "a b"],
    }
    assert parse_args("--name 'unterminated") == {"name": "'unterminated"}
    # what argparse or configparser hands the program is a string: one spelled otherwise
    # than a number is spelled stays one, so '007' against '7' is a change
    assert parse_args("--run_id 007 --seed 7 --n 1_000 --w 01.5 --v nan --u .5") == {
        "run_id": "007", "seed": 7, "n": "1_000", "w": "01.5", "v": "nan", "u": 0.5,
    }  # fmt: skip
    assert parse_ini("; c\n[a]\nk = 1\nflag\n[a]\nk: two\n") == {
        "a": {"k": 1, "flag": True},
        "a#2": {"k": "two"},
    }


@sync
async def test_run_diff_screen_lists_config_changes(tmp_path: Path) -> None:
    from tests.test_rundiff import age, index, make_pair
    from tests.test_tui import settle
    from tests.test_tui_diff import mark_both_runs
    from tui.app import ArtlensApp
    from tui.screens.file_diff import FileDiffScreen
    from tui.screens.run_diff import RunDiffScreen

    pair = make_pair(tmp_path, hash_files=False)
    (pair.b / "config.yaml").write_text("model:\n  depth: 6\n  width: 64\nseed: 1\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    app = ArtlensApp(pair.db_path, [pair.root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await mark_both_runs(pilot)
        await pilot.press("d")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunDiffScreen)
        keys = [str(k.value) for k in screen.table.rows]
        assert [k for k in keys if k.startswith("config:")] == [
            "config:config.yaml:model.depth",
            "config:hparams.yaml:lr",
        ]
        row = screen.table.get_row("config:config.yaml:model.depth")
        assert "config.yaml: model.depth" in str(row[1])
        await pilot.press("c")
        assert screen.table.cursor_row == keys.index("config:config.yaml:model.depth")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, FileDiffScreen)
        assert app.screen.diff is not None and app.screen.diff.kind == "structured"


def test_config_rows_show_hostile_keys_escaped() -> None:
    from store.diff.configs import ConfigDiff
    from store.diff.runs import ArtifactDiff, RunDiff
    from store.diff.structured import Change
    from tui.diff_render import run_rows, section_titles

    hostile = "[bold]lr\x1b[2J"
    result = RunDiff(
        [],
        [],
        [],
        ArtifactDiff([], [], [], [], [], []),
        False,
        [
            ConfigDiff("cfg/[red]x.yaml", "yaml", [Change(hostile, "changed", "[/]", 2)]),
            ConfigDiff("bad.json", "json", error="invalid json: \x1b[31m"),
        ],
    )
    rows = [r for r in run_rows(result) if r.section == "configs"]
    assert [r.key for r in rows] == [f"config:cfg/[red]x.yaml:{hostile}", "config:bad.json"]
    name = rows[0].cells[1]
    assert name.plain == "cfg/[red]x.yaml: [bold]lr\\e[2J"
    assert rows[0].cells[2].plain == "[/]"
    assert "\x1b" not in rows[1].cells[4].plain
    assert section_titles(result)["configs"] == "configs: 2 file(s) changed, 1 value(s)"


def test_names_and_values_that_differ_only_in_unicode_normalisation_look_different() -> None:
    """``café`` written NFC (é) in one run and NFD (e + U+0301) in the other prints the
    same: a change ``café → café``, a file moved from ``café.pt`` to ``café.pt``.  Such
    twins are spelled with escapes and said to differ only in normalisation."""
    from store.diff.configs import ConfigDiff
    from store.diff.runs import ArtifactChange, ArtifactDiff, ArtifactMove, RunDiff
    from store.diff.structured import Change
    from tui.diff_render import run_rows

    nfc, nfd = "caf\u00e9", "cafe\u0301"
    artifacts = ArtifactDiff(
        [ArtifactChange(f"{nfd}/x.pt", None, 2, None, "b")],
        [
            ArtifactChange(f"{nfc}/x.pt", 1, None, "a", None),
            ArtifactChange("n\u00e9.pt", 1, None, "c", None),
        ],
        [],
        [ArtifactMove(f"{nfc}.pt", f"{nfd}.pt", 3, "h")],
        [],
        [],
    )
    result = RunDiff(
        [
            Change("name", "changed", nfc, nfd),
            Change(nfc, "removed", 1),
            Change(nfd, "added", None, 1),
        ],
        [],
        [],
        artifacts,
        False,
        [ConfigDiff("c.yaml", "yaml", [Change("tag", "changed", nfc, nfd)])],
    )
    rows = {r.key: [c.plain for c in r.cells] for r in run_rows(result)}
    assert rows["param:name"][2:] == [
        "caf\\u00e9", "cafe\\u0301", "changed (differs only in Unicode normalisation)",
    ]  # fmt: skip
    assert rows[f"param:{nfc}"][1] == "caf\\u00e9" and rows[f"param:{nfd}"][1] == "cafe\\u0301"
    assert "from another" in rows[f"param:{nfc}"][4]
    assert rows["config:c.yaml:tag"][2:4] == ["caf\\u00e9", "cafe\\u0301"]
    assert rows[f"moved:{nfc}.pt"][1:3] == ["cafe\\u0301.pt", "caf\\u00e9.pt"]
    assert rows[f"moved:{nfc}.pt"][4] == "same content, name differs only in Unicode normalisation"
    assert rows[f"added:{nfd}/x.pt"][1] == "cafe\\u0301/x.pt"
    assert rows[f"removed:{nfc}/x.pt"][1] == "caf\\u00e9/x.pt"
    assert rows["removed:n\u00e9.pt"][1] == "n\u00e9.pt"  # no twin: shown as it is
    assert rows["removed:n\u00e9.pt"][4] == "only in A"


def test_disk_state_past_its_listing_bound_says_what_it_missed(tmp_path: Path) -> None:
    """A run folder with more files than the listing bound: the listing says it is not
    whole (a new file may hide in what it missed), and indexed files it did not reach are
    still checked one by one."""
    import os

    from store.diff.ondisk import Indexed, disk_state

    run = tmp_path / "run"
    for folder in ("a", "b"):
        (run / folder).mkdir(parents=True)
        for i in range(4):
            (run / folder / f"f{i}").write_bytes(b"x" * i)
    rows = []
    for folder in ("a", "b"):
        for i in range(4):
            st = os.lstat(run / folder / f"f{i}")
            key = f"run/{folder}/f{i}".encode()
            rows.append(Indexed(key, st.st_size, st.st_mtime_ns, st.st_ino, "file", None, "h"))
    whole = disk_state(os.fsencode(tmp_path), [b"run"], rows)
    assert (whole.moved, whole.incomplete) == ([], [])
    cut = disk_state(os.fsencode(tmp_path), [b"run"], rows, max_listed=2)
    assert cut.incomplete == ["more than 2 files on disk; the rest not listed"]
    assert cut.moved == [] and len(cut.files) == 8  # each indexed file found, unchanged
    # the folder it never reached may hold files the other run has: they are unknown
    assert list(cut.unlisted.values()) == ["not listed: past the 2 files listed"]
    assert set(cut.unlisted) < {b"run/a", b"run/b"}


def test_a_metric_one_run_alone_logged_says_which() -> None:
    """A metric in one run only read '~ metric  A -  B 0.787' with an empty change: no
    telling it from a metric without a last value. It says which run logged it, in rows
    and in JSON (``only``), as params say added or removed."""
    from tui.diff_render import run_rows

    old = RunSide(metrics={"eval/acc": {"last": 0.9}, "loss": {"last": 0.5}})
    new = RunSide(metrics={"Accuracy/test": {"last": 0.787}, "loss": {"last": None}})
    result = diff_runs(old, new)
    only = {m.name: m.only for m in result.metrics}
    assert only == {"Accuracy/test": "new", "eval/acc": "old", "loss": None}
    rows = {r.key: r for r in run_rows(result) if r.section == "metrics"}
    cells = [c.plain for c in rows["metric:Accuracy/test"].cells]
    assert cells[0] == "+ metric" and cells[-1] == "only in B"
    cells = [c.plain for c in rows["metric:eval/acc"].cells]
    assert cells[0] == "- metric" and cells[-1] == "only in A"
    assert not [c.plain for c in rows["metric:loss"].cells][-1].startswith("only")


def test_a_metric_without_a_value_on_the_side_read_whole_is_not_claimed_against_a_blind_side() -> (
    None
):
    """A metric A logged with no last value, where B's metrics could not all be read, was
    kept as 'only in A': B may well hold it. It is left out and said uncompared."""
    old = RunSide(metrics={"loss": {"last": None}, "acc": {"last": 0.5}})
    new = RunSide(metrics={"acc": {"last": 0.5}}, unread=frozenset({"metrics"}))
    result = diff_runs(old, new)
    assert [m.name for m in result.metrics] == ["acc"]
    assert any("1 of A's not compared" in u for u in result.unknown), result.unknown


def test_files_under_a_place_the_other_side_could_not_list_are_unknown() -> None:
    """A could not list ``dir``: B's files there were "added" (and one "moved" from a
    file A holds elsewhere), though A may hold them too.  They are unknown, said once
    naming the side and the folder; what differs elsewhere still does."""
    from store.rundiff import run_verdict

    old = RunSide(
        artifacts=[("a.pt", 3, "h1"), ("keep.txt", 1, "k")],
        unlisted={"dir": "not listed: Permission denied"},
        name="base",
    )
    new = RunSide(
        artifacts=[("dir/a.pt", 3, "h1"), ("dir/sub/b.pt", 2, "h2"), ("keep.txt", 1, "k")]
    )
    result = diff_runs(old, new)
    artifacts = result.artifacts
    assert [c.path for c in artifacts.removed] == ["a.pt"]  # B was listed whole there
    assert (artifacts.added, artifacts.moved) == ([], [])
    assert artifacts.unknown == ["dir/a.pt", "dir/sub/b.pt"]
    assert result.unknown == [
        "artifacts of A (base) could not all be listed: dir (not listed: Permission denied);"
        " 2 of B's files there not compared"
    ]
    assert run_verdict(result) == "different"
    blind = diff_runs(
        RunSide(artifacts=[("keep.txt", 1, "k"), ("x.bin", 1, "x")]),
        RunSide(artifacts=[("keep.txt", 1, "k")], unlisted={"": "why"}),
    )
    assert (blind.artifacts.added, blind.artifacts.removed) == ([], [])
    assert blind.unknown == [
        "artifacts of B could not all be listed: the run folder (why); 1 of A's files there"
        " not compared"
    ]
    assert not blind.equal and run_verdict(blind) == "unknown"
