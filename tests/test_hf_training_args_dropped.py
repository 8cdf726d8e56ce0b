"""``training_args.bin`` values the static pickle reader leaves out or cuts short (a cap
on strings, lists, nesting, values) must be said, with the params marked partial in
``artlens runs --json``; a dict-valued argument becomes ``args.<name>.<key>`` params
rather than vanishing, and a name already taken is kept apart, not dropped."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.test_params_kept_apart import indexed_runs, warnings_of

pytestmark = pytest.mark.usefixtures("isolated_cache")


def hf_run(root: Path, args: dict[str, object]) -> str:
    run = root / "out"
    run.mkdir(parents=True)
    state = {"global_step": 2, "max_steps": 2, "log_history": [{"step": 1, "loss": 0.5}]}
    (run / "trainer_state.json").write_text(json.dumps(state))
    (run / "training_args.bin").write_bytes(pickle.dumps(args, protocol=4))
    return "out"


def test_whole_training_args_stay_complete(tmp_path: Path) -> None:
    rel = hf_run(tmp_path / "root", {"learning_rate": 0.1, "seed": 7, "_n_gpu": 1})
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")[rel]
    assert found["params"]["args.learning_rate"] == 0.1
    assert "args._n_gpu" not in found["params"]
    assert found["params_complete"] is True


def test_dict_argument_is_kept_as_params(tmp_path: Path) -> None:
    rel = hf_run(tmp_path / "root", {"fsdp_config": {"min_num_params": 0, "xla": False}})
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")[rel]
    assert found["params"]["args.fsdp_config.min_num_params"] == 0
    assert found["params"]["args.fsdp_config.xla"] is False


@pytest.mark.parametrize(
    "value",
    [
        "x" * 1500,  # a string past the reader's cap
        list(range(1500)),  # a list past the cap: cut short it would be another value
        {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": {"l": 1}}}}}}}}}}}},
    ],
    ids=["long-string", "long-list", "deep"],
)
def test_argument_left_out_or_cut_marks_params_partial(tmp_path: Path, value: object) -> None:
    rel = hf_run(tmp_path / "root", {"learning_rate": 0.1, "big": value})
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")[rel]
    assert found["params"]["args.learning_rate"] == 0.1
    assert "training_args.bin" in warnings_of(found)
    assert found["params_complete"] is False
