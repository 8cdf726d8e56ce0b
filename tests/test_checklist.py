"""Checklists on real framework outputs, and the config that overrides the defaults."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from store.checklist import (
    DEFAULTS,
    Checklist,
    ChecklistError,
    evaluate,
    evaluate_files,
    evaluate_runs,
    load_checklist,
    parse_checklist,
)
from store.index import query
from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
WANDB_RUN = "wandb/wandb/offline-run-20261127_142812-19x7jcho"


def index_tree(root: Path, db_path: Path) -> None:
    """Scan and hash ``root`` into ``db_path``, as its writer (files count as quiet)."""
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root, clock=lambda: time.time() + 60)
            indexer.scan()
            indexer.hash_pending()
        finally:
            db.conn.close()


FIXED_MTIME = 1_767_225_600.0  # 2026-01-01: long before any test's clock


def settle_mtimes(root: Path) -> None:
    """Give every copied entry the same old mtime: a fresh git checkout stamps the fixtures
    with 'now', which would make their runs look live and the pictures differ."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(root, (FIXED_MTIME, FIXED_MTIME))


def copy_fixtures(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "frameworks"
    shutil.copytree(FIXTURES, root, symlinks=True)
    (root / "EXPECTED.json").unlink()
    settle_mtimes(root)
    db_path = tmp_path / "index.db"
    index_tree(root, db_path)
    return root, db_path


def results_by_path(db_path: Path, user_config: Path) -> dict[str, tuple[int, int, list[str]]]:
    db = open_db(db_path, readonly=True)
    try:
        runs = query.list_runs(db)
        results, errors = evaluate_runs(db, runs, user_config=user_config)
    finally:
        db.conn.close()
    assert errors == []
    return {
        r.path.decode(): (results[r.id].passed, results[r.id].total, results[r.id].missing)
        for r in runs
    }


def test_defaults_pass_real_runs_and_flag_a_missing_requirements(tmp_path: Path) -> None:
    root, db_path = copy_fixtures(tmp_path)
    no_config = tmp_path / "no-config.toml"
    before = results_by_path(db_path, no_config)
    assert len(before) >= 15
    frameworks = {"mlflow", "wandb", "lightning", "hf-trainer", "hydra", "tensorboard"}
    for path, (passed, total, missing) in before.items():
        assert missing == [], path
        assert passed == total
    db = open_db(db_path, readonly=True)
    assert frameworks <= {r.framework for r in query.list_runs(db)}
    db.conn.close()
    assert before["hf-trainer/out"][1] == 4
    (root / WANDB_RUN / "files" / "requirements.txt").unlink()
    index_tree(root, db_path)
    after = results_by_path(db_path, no_config)
    passed, total, missing = after[WANDB_RUN]
    assert (passed, total) == (2, 3)
    assert missing == ["requirements.txt|conda-environment.yaml"]
    others = {p: r for p, r in after.items() if p != WANDB_RUN}
    assert all(not r[2] for r in others.values())


def test_root_config_overrides_defaults_per_framework(tmp_path: Path) -> None:
    root, db_path = copy_fixtures(tmp_path)
    (root / ".artlens.toml").write_text(
        "[checklist]\n"
        'required = ["README.md"]\n'
        "[checklist.framework.lightning]\n"
        'required = ["hparams.yaml", "checkpoints/best.ckpt|checkpoints/last.ckpt"]\n'
    )
    rules = load_checklist(root)
    assert rules.items_for("lightning") == (
        "hparams.yaml",
        "checkpoints/best.ckpt|checkpoints/last.ckpt",
    )
    assert rules.items_for("wandb") == ("README.md",)
    got = results_by_path(db_path, tmp_path / "none.toml")
    assert got["lightning/lightning_logs/version_0"] == (2, 2, [])
    assert got[WANDB_RUN] == (0, 1, ["README.md"])


def test_user_config_applies_when_the_root_has_none(tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    user.write_text('[checklist.framework]\ntensorboard = ["events.out.tfevents.*", "*.png"]\n')
    rules = load_checklist(tmp_path / "root-without-config", user_config=user)
    assert rules.items_for("tensorboard") == ("events.out.tfevents.*", "*.png")
    assert rules.items_for("hydra") == DEFAULTS["hydra"]
    assert load_checklist(tmp_path, user_config=tmp_path / "absent.toml") == Checklist()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[checklist]\nrequired = ["a", 3]\n', 2, "list of strings"),
        ('[checklist]\nrequired = "a||b"\n', 2, "empty alternative"),
        ('x = 1\n[checklist]\nmust = ["a"]\n', 3, "unknown key 'must'"),
        ('[checklist]\nrequired = ["a"]\n[checklist.framework.foo]\nrequired = ["x"]\n', 3, "foo"),
        ('[checklist.framework.wandb]\nrequired = ["@tags"]\n', 2, "unknown item '@tags'"),
        ("[checklist\nrequired = 1\n", 1, "Expected"),
        ("[checklist]\nrequired = [\n", 3, ""),
        ('[checklist]\nrequired = ["a", "../shared/requirements.txt"]\n', 2, "leaves the run"),
        ('[checklist]\nrequired = ["x|a/../../b"]\n', 2, "'a/../../b' in checklist item"),
        ('[checklist]\nrequired = ["a|./"]\n', 2, "'./' in checklist item 'a|./' names no file"),
        ('[checklist]\nrequired = ["."]\n', 2, "names no file"),
    ],
)
def test_invalid_config_is_one_line_naming_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ChecklistError) as caught:
        parse_checklist(text, "/x/.artlens.toml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"/x/.artlens.toml:{line}:")
    assert words in message


def test_a_fifo_config_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / ".artlens.toml"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.mkdir()
    (link / ".artlens.toml").symlink_to("/etc/passwd")
    user = tmp_path / "user-fifo.toml"
    os.mkfifo(user)
    for root, config, named in (
        (tmp_path, tmp_path / "none.toml", fifo),
        (link, tmp_path / "none.toml", link / ".artlens.toml"),
        (tmp_path / "no-config-here", user, user),
    ):
        with pytest.raises(ChecklistError) as caught:  # not the defaults: the rules are unknown
            load_checklist(root, user_config=config)
        assert str(caught.value) == f"{named}: cannot read (not a regular file)"


def test_a_user_config_linked_from_dotfiles_is_followed(tmp_path: Path) -> None:
    """The user's own config folder is theirs: a link there (stow, chezmoi) is their file.
    A root's .artlens.toml, which others may write, is never followed (above)."""
    from store.hashing import configured_max_bytes
    from store.retention.policy import load_policy

    dotfiles = tmp_path / "dotfiles" / "artlens.toml"
    dotfiles.parent.mkdir()
    dotfiles.write_text(
        '[checklist]\nrequired = ["model.ckpt"]\n'
        "[retention]\nkeep_last = 2\n"
        '[index]\nhash_max_size = "1G"\n'
    )
    user = tmp_path / "config" / "config.toml"
    user.parent.mkdir()
    user.symlink_to(dotfiles)
    root = tmp_path / "root"
    root.mkdir()
    assert load_checklist(root, user_config=user).required == ("model.ckpt",)
    assert load_policy(root, user_config=user).for_run("run", "generic").keep_last == 2
    assert configured_max_bytes(user) == 1 << 30
    user.unlink()
    user.symlink_to(tmp_path / "nothing.toml")  # dangling: as if there were none
    assert load_checklist(root, user_config=user) == Checklist()


def test_a_config_nested_too_deeply_is_one_line_naming_it(tmp_path: Path) -> None:
    config = tmp_path / ".artlens.toml"
    config.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ChecklistError) as caught:
        load_checklist(tmp_path, user_config=tmp_path / "none.toml")
    assert str(caught.value) == f"{config}: nested too deeply"


def test_matching_rules() -> None:
    files = ["files/requirements.txt", "checkpoints/a.ckpt", "params/lr", "lr[0.1].yaml"]
    result = evaluate_files(
        files,
        [
            "requirements.txt",
            "checkpoints/*.ckpt",
            "*.ckpt",
            "params/",
            "metrics/",
            "lr?0.1?.yaml",
            "deep/**/x.bin|@metrics",
            "@params",
        ],
        has_metrics=True,
    )
    assert result.missing == ["metrics/", "@params"]
    assert (result.passed, result.total, result.label()) == (6, 8, "6/8")
    assert evaluate_files([], []).label() == "-"
    assert evaluate_files(["a/b/c.txt"], ["b/c.txt"]).missing == ["b/c.txt"]


def test_evaluate_loads_the_rules_of_the_runs_root(tmp_path: Path) -> None:
    root, db_path = copy_fixtures(tmp_path)
    (root / ".artlens.toml").write_text('[checklist]\nrequired = ["nothing-like-this"]\n')
    db = open_db(db_path, readonly=True)
    try:
        run = next(r for r in query.list_runs(db) if r.framework == "hydra")
        result = evaluate(db, run)
    finally:
        db.conn.close()
    assert result.missing == ["nothing-like-this"]
    assert not result.complete


def test_an_item_that_may_lie_where_the_scan_could_not_read_is_unknown() -> None:
    from store.checklist import Unread

    items = [
        "requirements.txt",  # a name at any depth
        "checkpoints/*.ckpt",
        "params/",
        "**/final.pt",
        "logs/train/*.log",
        "@params",
    ]

    def judged(*places: Unread) -> tuple[list[str], list[str]]:
        result = evaluate_files([], items, unread=places)
        assert result.passed == 0 and result.total == len(items)
        assert not result.complete
        return result.missing, [item for item, _ in result.unknown]

    everything = judged(Unread("", False, "folder . could not be read (permission denied)"))
    assert everything == (["@params"], items[:-1])
    assert judged(Unread("logs", False, "folder logs could not be read (permission denied)")) == (
        ["checkpoints/*.ckpt", "params/", "@params"],
        ["requirements.txt", "**/final.pt", "logs/train/*.log"],
    )
    assert judged(Unread("checkpoints", False, "folder checkpoints could not be read (x)"))[1] == [
        "requirements.txt",
        "checkpoints/*.ckpt",
        "**/final.pt",
    ]
    assert judged(Unread("params/deep", False, "folder params/deep could not be read (x)"))[1] == [
        "requirements.txt",
        "params/",
        "**/final.pt",
    ]
    # a folder named like the file it should hold is no such file; an entry could be
    assert "checkpoints/*.ckpt" not in judged(Unread("checkpoints/a.ckpt", False, "x"))[1]
    assert "checkpoints/*.ckpt" in judged(Unread("checkpoints/a.ckpt", True, "x"))[1]
    assert "logs/train/*.log" not in judged(Unread("logs/eval", False, "x"))[1]
    result = evaluate_files(["checkpoints/a.ckpt"], items[1:2], unread=[Unread("", False, "x")])
    assert result.complete and not result.unknown  # found is found
    short = evaluate_files([], ["a.txt", "b.txt"], unread=[Unread("out", False, "why")])
    assert short.label() == "0/2?"
    assert short.missing == []
    assert short.short_items() == ["a.txt (unknown: why)", "b.txt (unknown: why)"]


def test_an_item_past_the_files_looked_at_is_unknown_not_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run holding more files than the checklist looks at (200,000; 3 here): an item none
    of the first meets was "missing", though it may be among the rest."""
    import store.checklist

    root = tmp_path / "root"
    run = root / "exp"
    run.mkdir(parents=True)
    for i in range(5):
        (run / f"out-{i}.log").write_text("x")
    (run / "requirements.txt").write_text("torch\n")  # indexed after the logs
    (root / ".artlens.toml").write_text(
        '[checklist]\nrequired = ["requirements.txt", "nothing-like-this"]\n'
    )
    db_path = tmp_path / "i.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            Indexer(db, root).scan()
        finally:
            db.close()
    db = open_db(db_path, readonly=True)
    try:
        (found,) = query.list_runs(db)
        assert evaluate(db, found).missing == ["nothing-like-this"]  # every file looked at
        monkeypatch.setattr(store.checklist, "MAX_FILES", 3)
        result = evaluate(db, found)
    finally:
        db.conn.close()
    assert "requirements.txt" not in result.missing and "nothing-like-this" not in result.missing
    assert [text for text, _ in result.unknown] == ["requirements.txt", "nothing-like-this"]
    assert "more files than the 3 looked at" in result.unknown[0][1]


def test_an_at_item_whose_part_was_read_in_part_is_unknown() -> None:
    """``@metrics`` (``@params``) not met while the reader could not read its files whole:
    unknown, never missing; an alternative file or what was found still meets it."""
    result = evaluate_files(
        ["config.yaml"],
        ["metrics/*|@metrics", "@params", "config.yaml|@params"],
        parts_unread=("metrics",),
    )
    assert (result.passed, result.missing) == (1, ["@params"])
    assert result.unknown == (
        ("metrics/*|@metrics", "its metrics could not be read whole (its warnings say why)"),
    )
    result = evaluate_files([], ["@metrics"], has_metrics=True, parts_unread=("metrics",))
    assert (result.complete, result.unknown) == (True, ())


def test_dot_and_empty_segments_of_a_path_are_the_path_without_them() -> None:
    """``./requirements.txt`` and ``files//config.yaml`` asked for files the run holds, but
    were matched as written against paths that never hold ``./`` or ``//``: every such item
    was missing, and ``check`` failed a complete run.  A path from the run's folder stays
    one (``./x`` is ``x`` at the top, not at any depth), and unknown places still count."""
    from store.checklist import Unread

    rules = parse_checklist(
        '[checklist]\nrequired = ["./requirements.txt", "files//config.yaml",'
        ' "./*.pt|nothing", ".//checkpoints/./", "./deep.txt", "./out/model.bin"]\n',
        "/x/.artlens.toml",
    )
    assert rules is not None
    items = rules.items_for("generic")
    files = ["requirements.txt", "files/config.yaml", "model.pt", "checkpoints/a.ckpt"]
    files.append("a/deep.txt")
    result = evaluate_files(files, items)
    assert result.missing == ["./deep.txt", "./out/model.bin"]
    assert (result.passed, result.total) == (4, 6)
    unread = [Unread("out", False, "folder out could not be read (permission denied)")]
    result = evaluate_files(files, items, unread=unread)
    assert result.missing == ["./deep.txt"]
    assert [item for item, _ in result.unknown] == ["./out/model.bin"]


def test_a_corrupt_file_meets_no_item() -> None:
    """Files judged corrupt meet nothing: an item only they match is unknown (with the
    first and a count), one another file meets is met, one none matches is missing."""
    result = evaluate_files(
        ["model.safetensors", "config.yaml"],
        ["*.ckpt", "*.safetensors", "*.yaml", "*.bin"],
        corrupt={"b.ckpt": "truncated", "a/a.ckpt": "header past end of file", "c.bin": "x"},
    )
    assert (result.passed, result.total, result.label()) == (2, 4, "2/4?")
    assert result.missing == []
    assert result.unknown == (
        ("*.ckpt", "a/a.ckpt is corrupt (header past end of file) (+1 more)"),
        ("*.bin", "c.bin is corrupt (x)"),
    )


def test_a_link_loop_hides_only_what_names_it_or_a_path_through_it() -> None:
    from store.checklist import Unread

    items = [
        "requirements.txt",  # a name at any depth: not behind a loop, which holds nothing
        "**/final.pt",  # the same, written as a path
        "loop",  # names the link itself
        "a/loop/*.ckpt",  # a path through it
        "a/",  # the loop lies in this folder: it may be a file of it
        "a/loop/deeper/",  # a folder below it
        "a/other/*.ckpt",
        "b/**/x.ckpt",
    ]
    result = evaluate_files([], items, unread=[Unread("a/loop", True, "loop", loop=True)])
    assert result.missing == ["requirements.txt", "**/final.pt", "a/other/*.ckpt", "b/**/x.ckpt"]
    assert [item for item, _ in result.unknown] == ["loop", "a/loop/*.ckpt", "a/", "a/loop/deeper/"]
