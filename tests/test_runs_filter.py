"""The runs filter: Textual's fuzzy matcher ranks the name matches, an empty result says
which word left nothing and out of how many runs, and hostile names stay bounded."""

from __future__ import annotations

from store.index.query import RunRow
from tui.widgets.runs_table import matches, order_runs, rank, why_nothing_matches


def run(run_id: int, name: str, *, experiment: str | None = "exp", started: float = 0.0) -> RunRow:
    return RunRow(
        run_id, 1, b"/r", name.encode(), name, "generic", experiment, started, started, "finished"
    )


RUNS = [
    run(1, "bert-large-finetune", started=3.0),
    run(2, "resnet50-baseline", started=1.0),
    run(3, "rx-es-net-sweep", started=2.0),
]


def test_fuzzy_matches_rank_best_first_over_the_sort_column() -> None:
    scores = {r.id: s for r in RUNS if (s := rank(r, "resnet")) is not None}
    assert set(scores) == {2, 3}  # r-es-net is a scattered match; bert none
    assert scores[2] > scores[3]
    # newest first would put run 3 on top: the better match wins while filtering
    order = order_runs([RUNS[1], RUNS[2]], "started", reverse=True, scores=scores)
    assert order == [2, 3]
    assert order_runs([RUNS[1], RUNS[2]], "started", reverse=True) == [3, 2]


def test_field_terms_narrow_without_ranking() -> None:
    assert matches(RUNS[0], "exp:exp bert")
    assert not matches(RUNS[0], "exp:other bert")
    assert rank(RUNS[0], "fw:gen") == 0.0


def test_empty_result_says_which_word_and_of_how_many() -> None:
    said = why_nothing_matches(RUNS, "xyz")
    assert said == "no run's name, params or framework contains 'xyz', even fuzzily (0 of 3)"
    said = why_nothing_matches(RUNS, "bert baseline")
    assert "together" in said and said.endswith("(0 of 3)")
    assert why_nothing_matches(RUNS, "exp:nope").startswith("no experiment is named 'nope'")


def test_hostile_name_is_bounded() -> None:
    # every way to place six a's among 64 is tens of millions: the score is not searched
    hostile = run(9, "a" * 5000 + "b")
    assert rank(hostile, "aaaaaab") is not None  # "b" is past the fuzzy window: a substring
    assert rank(run(10, "ab" * 32), "aaaaaab") == 1.0  # a bare hit, not a search
