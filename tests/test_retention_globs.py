"""A glob set's literal pre-check never changes an answer of its regular expression."""

from __future__ import annotations

import random
import warnings

import pytest

from store.retention.globs import compile_globs, glob_literal

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
        for _ in range(60):
            path = "".join(rng.choice(_PATH_PIECES) for _ in range(rng.randint(1, 8)))
            expected = matcher.regex.fullmatch(path) is not None
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
