"""A glob set's literal pre-check never changes an answer of its regular expression."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_retention_support import write

from store.retention.globs import MAX_REGEX_STARS, compile_globs, glob_literal, glob_to_regex

_PIECES = ["*", "**", "**/", "?", "[ab]", "[!a]", "[]a]", "a", "b", "/", "final", ".", "-"]
_PATH_PIECES = ["a", "b", "/", "final", ".", "-", "ab", "]", "[", "\n", "é"]


def test_literal_is_read_as_the_glob_is() -> None:
    assert glob_literal("**/final/**") == "final/"
    assert glob_literal("exp1/*") == "exp1/"
    assert glob_literal("runs/baseline-*") == "runs/baseline-"
    assert glob_literal("*") == ""
    assert glob_literal("a[bc]def") == "def"
    assert glob_literal("ab[") == "ab["  # an unclosed bracket is a plain character


def test_prechecked_matching_agrees_with_the_regex() -> None:
    rng = random.Random(19)
    checked = 0
    for _ in range(400):
        globs = [
            "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 3))
        ]
        matcher = compile_globs(globs)
        if matcher is None:
            continue
        kept = [g.strip("/") for g in globs if g.strip("/")]
        regex = re.compile("|".join(f"(?:{glob_to_regex(g)})" for g in kept), re.DOTALL)
        for _ in range(60):
            path = "".join(rng.choice(_PATH_PIECES) for _ in range(rng.randint(1, 8)))
            expected = regex.fullmatch(path) is not None
            assert matcher.matches(path) == expected, (globs, path)
            checked += expected
    assert checked > 50  # the paths did match often enough for the check to mean something


@pytest.mark.parametrize(
    "glob", ["[z-a]*", "run[9-0]/x", "[a[b]*", "[a&&b]*", "[a~~b]*", "[a||b]*"]
)
def test_a_glob_a_regex_would_refuse_or_warn_about_compiles_quietly(glob: str) -> None:
    # A pin glob comes from a config file anyone can write: it never raises nor warns.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        globs = compile_globs([glob])
    assert globs is not None
    assert globs.matches("nothing/like/it") is False


def test_a_reversed_range_is_a_plain_bracket() -> None:
    globs = compile_globs(["[z-a]*"])
    assert globs is not None
    assert globs.matches("[z-a]final.ckpt")
    assert not globs.matches("b.ckpt")
    nested = compile_globs(["[a[]x"])
    assert nested is not None and nested.matches("[x") and nested.matches("ax")


def test_globs_with_many_wildcards_match_as_the_regex_reads_them() -> None:
    """Globs past ``MAX_REGEX_STARS`` wildcards are matched without backtracking, and
    give the answer the regex gives (a pin that no longer matches would lose its files)."""
    rng = random.Random(23)
    checked = bounded = 0
    for _ in range(1500):
        glob = "".join(rng.choice(_PIECES) for _ in range(rng.randint(3, 10)))
        matcher = compile_globs([glob])
        if matcher is None:
            continue
        bounded += bool(matcher.bounded)
        regex = re.compile(glob_to_regex(glob.strip("/")), re.DOTALL)
        for _ in range(40):
            path = "".join(rng.choice(_PATH_PIECES) for _ in range(rng.randint(0, 10)))
            expected = regex.fullmatch(path) is not None
            assert matcher.matches(path) == expected, (glob, path)
            checked += expected
    assert bounded > 200 and checked > 200


@pytest.mark.parametrize(
    "glob", ["**/" * 40 + "zzz/*.bin", "*a" * 12 + "b", "**" + "a**" * 12 + "b"]
)
def test_a_glob_that_would_backtrack_for_ever_is_matched_in_bounded_steps(glob: str) -> None:
    # Each would take a backtracking regex 2**40 or 300**12 steps on these paths.
    matcher = compile_globs([glob])
    assert matcher is not None and [p for p, _ in matcher.bounded] == [glob_literal(glob)]
    assert matcher.regex.pattern == "(?!)"  # nothing is left to the regex
    deep = "zzz/" + "/".join(["a"] * 300) + "/c"
    assert not matcher.matches(deep)
    assert not matcher.matches("a" * 300 + "c")
    assert not matcher.matches_path_or_parent(deep + "/x.pt")
    assert matcher.matches(deep.replace("/c", "/zzz/w.bin")) == glob.endswith("*.bin")
    assert matcher.matches("a" * 30 + "b") == (glob.count("a") == 12)


def test_only_globs_with_few_wildcards_go_to_the_regex() -> None:
    matcher = compile_globs(["**/final/**", "runs/*/ckpt-*", "**/x/*/y/**"])
    assert matcher is not None
    assert matcher.regex.pattern.count("(?:") == 2 + 1  # two globs, one "**/"
    assert len(matcher.bounded) == 1 and MAX_REGEX_STARS == 2


def artlens(*args: str) -> str:
    """The real CLI in a subprocess, so a hang fails the test instead of stalling."""
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_pin_glob_with_many_wildcards_never_hangs_the_plan(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``**/`` sixteen times is 2**16 ways to split a path for a backtracking regex, per
    folder it holds: a pin in a file anyone can write hung the plan (a subprocess, so a
    hang fails the test instead of stalling)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root = tmp_path / "root"
    deep = root / "run" / "zzz" / Path(*["a"] * 40)
    for step in (1, 2, 3):
        write(deep / f"step_{step}.pt", os.urandom(64), age=5000.0 - step)
    db = tmp_path / "index.db"
    artlens("index", str(root), "--db", str(db))
    many = "**/" * 16
    (root / ".artlens.toml").write_text(
        f'[retention]\nkeep_last = 1\npin = ["{many}zzz/*.bin", "{many}step_1.pt"]\n'
    )
    plan = artlens("retention", "plan", "--json", "--db", str(db))
    items = {Path(i["path"]).name: i for i in json.loads(plan)["items"]}
    assert sorted(items) == ["step_1.pt", "step_2.pt", "step_3.pt"]
    assert items["step_1.pt"]["keep"] and any("pin" in r for r in items["step_1.pt"]["reasons"])
    assert items["step_3.pt"]["keep"]
    assert not items["step_2.pt"]["keep"]
