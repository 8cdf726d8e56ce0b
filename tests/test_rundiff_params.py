"""A run's params keep every value its files hold, or say what they could not keep, and a
run diff never calls two runs equal where a lost value could hide a difference."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

from store.frameworks import detect_runs, read_run
from store.frameworks.flatten import MAX_KEYS, MAX_LIST, MAX_STR, flatten, numbered
from tests.test_frameworks import SCHEMA, listing_of
from tests.test_rundiff import age, diff_by_name, index, make_pair, runs_by_name


def test_keys_that_collide_once_joined_keep_every_value_whatever_their_order() -> None:
    """``{"a.b": 1, "a": {"b": 2}}`` and ``1`` beside ``"1"`` kept one value each (the
    later silently); now each value has its own name, the same in any key order."""
    from store.frameworks.flatten import collect

    with collect() as notes:
        first = flatten({"a.b": 1, "a": {"b": 2}, 1: "int", "1": "str"})
        second = flatten({"1": "str", 1: "int", "a": {"b": 2}, "a.b": 1})
    assert first == second == {"a.b": 1, "a.b (#2)": 2, "1": "str", "1 (#2)": "int"}
    assert len(notes) == 2 and all("a.b (#2)" in n.message for n in notes)
    # a key that already reads like a number suffix is never overwritten
    assert flatten({"x": {"y": 1}, "x.y": 2, "x.y (#2)": 3}) == {
        "x.y": 2,
        "x.y (#3)": 1,
        "x.y (#2)": 3,
    }


def test_long_strings_keep_a_hash_and_cut_lists_are_marked() -> None:
    head = "p" * MAX_STR
    flat = flatten({"prompt_a": head + "a", "prompt_b": head + "b", "ids": list(range(1500))})
    assert flat["prompt_a"] != flat["prompt_b"]
    assert len(str(flat["prompt_a"])) <= MAX_STR
    assert flatten({"p": flat["prompt_a"]})["p"] == flat["prompt_a"]  # stable when re-read
    ids = flat["ids"]
    assert isinstance(ids, list) and len(ids) == MAX_LIST + 1
    assert ids[-1] == "<500 more items not read>"


def test_params_that_collide_once_flattened_are_compared_apart(tmp_path: Path) -> None:
    """Lightning hparams.yaml files whose colliding keys differ: the params section said
    '0 changed' (one value of each name was dropped); now each is compared."""
    pair = make_pair(tmp_path)
    (pair.a / "hparams.yaml").write_text('"a.b": 1\na:\n  b: 2\n1: x\n"1": y\n')
    (pair.b / "hparams.yaml").write_text('"a.b": 1\na:\n  b: 3\n"1": y\n1: z\n')
    age(pair.root)
    index(pair.root, pair.db_path)
    run = runs_by_name(pair.db_path)["version_0"]
    assert {k: run.params[k] for k in ("a.b", "a.b (#2)", "1", "1 (#2)")} == {
        "a.b": 1,
        "a.b (#2)": 2,
        "1": "y",
        "1 (#2)": "x",
    }
    assert any("kept apart" in w for w in run.meta["warnings"])
    result, _ = diff_by_name(pair.db_path, "version_0", "version_1")
    changed = {c.path: (c.old, c.new) for c in result.params}
    assert changed["a.b (#2)"] == (2, 3) and changed["1 (#2)"] == ("x", "z")
    assert "a.b" not in changed and "1" not in changed


def test_params_past_the_cap_are_counted_said_and_never_equal(tmp_path: Path) -> None:
    """5,001 params, the last differing: both runs kept the first 5,000, the params
    section said nothing and the run named no cut.  Now the cut is counted in the run's
    warnings and in the diff, and the runs are not equal on params alone."""
    pair = make_pair(tmp_path)
    lines = "".join(f"p{i:05d}: 1\n" for i in range(MAX_KEYS))
    (pair.a / "hparams.yaml").write_text(lines + "zz: 1\n")
    (pair.b / "hparams.yaml").write_text(lines + "zz: 2\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    run = runs_by_name(pair.db_path)["version_0"]
    assert any("1 params past the first 5000 not read" in w for w in run.meta["warnings"])
    result, warnings = diff_by_name(pair.db_path, "version_0", "version_1")
    lines_cut = [u for u in result.unknown if "1 params past its readers' caps not compared" in u]
    assert len(lines_cut) == 2 and set(lines_cut) <= set(warnings)
    assert not result.equal


def test_values_cut_short_are_not_compared(tmp_path: Path) -> None:
    """A list param of 1,001 items differing in its last: both values were cut to the
    first 1,000 and compared equal; now that param is named as not compared."""
    pair = make_pair(tmp_path)
    items = ", ".join(["0"] * MAX_LIST)
    (pair.a / "hparams.yaml").write_text(f"lr: 0.001\nids: [{items}, 1]\n")
    (pair.b / "hparams.yaml").write_text(f"lr: 0.001\nids: [{items}, 2]\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    result, _ = diff_by_name(pair.db_path, "version_0", "version_1")
    assert [c.path for c in result.params] == []
    assert any("1 params not compared" in u and "ids" in u for u in result.unknown)
    assert not result.equal


def mlflow_runs(root: Path, params: int, last: tuple[str, str]) -> None:
    """Two MLflow runs of one SQLite store, with ``params`` equal params and one more
    (``zz``) whose values are ``last``; their folders hold the same file."""
    root.mkdir(parents=True)
    conn = sqlite3.connect(root / "mlflow.db")
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO experiments VALUES (1, 'sweep', './mlruns/1', 'active', 0, 0)")
    for run_id, name, value in (("aaa1", "first", last[0]), ("bbb2", "second", last[1])):
        (root / f"mlruns/1/{run_id}/artifacts").mkdir(parents=True)
        (root / f"mlruns/1/{run_id}/artifacts/model.pt").write_bytes(b"w")
        conn.execute(
            "INSERT INTO runs (run_uuid, name, status, start_time, end_time, artifact_uri, "
            "experiment_id, user_id, lifecycle_stage) VALUES (?,?,?,?,?,?,1,'me','active')",
            (run_id, name, "FINISHED", 1, 2, f"{root}/mlruns/1/{run_id}/artifacts"),
        )
        rows = [(f"p{i:05d}", "1", run_id) for i in range(params)] + [("zz", value, run_id)]
        conn.executemany("INSERT INTO params VALUES (?,?,?)", rows)
    conn.commit()
    conn.close()


def test_mlflow_params_past_the_cap_are_never_called_equal(tmp_path: Path) -> None:
    """An MLflow database holds the params outside the run folders: with 10,001 params
    the last was dropped without a word and two runs differing only there were 'equal'."""
    root = tmp_path / "root"
    mlflow_runs(root, 10_000, ("0.1", "0.2"))
    age(root)
    index(root, tmp_path / "index.db")
    run = runs_by_name(tmp_path / "index.db")["first"]
    assert any("1 params past the first 10000 not read" in w for w in run.meta["warnings"])
    result, _ = diff_by_name(tmp_path / "index.db", "first", "second")
    assert any("1 params past its readers' caps not compared" in u for u in result.unknown)
    assert not result.equal


def test_a_param_two_files_give_keeps_both_values(tmp_path: Path) -> None:
    """A generic run's config.yaml and params.yaml both name lr: the second file's value
    was dropped (the first kept), so a change there was not seen."""
    for name, lr in (("one", "0.2"), ("two", "0.3")):
        folder = tmp_path / "root" / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("lr: 0.1\nseed: 1\n")
        (folder / "params.yaml").write_text(f"lr: {lr}\nseed: 1\n")
        (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    age(tmp_path / "root")
    index(tmp_path / "root", tmp_path / "index.db")
    run = runs_by_name(tmp_path / "index.db")["one"]
    assert (
        run.params["lr"] == 0.1 and run.params["lr (#2)"] == 0.2 and "seed (#2)" not in (run.params)
    )
    result, _ = diff_by_name(tmp_path / "index.db", "one", "two")
    assert [(c.path, c.old, c.new) for c in result.params] == [("lr (#2)", 0.2, 0.3)]


def test_a_real_key_named_like_a_repeat_keeps_its_name_inside_a_list_in_any_order() -> None:
    """A mapping inside a list (``layers: [{...}]``) numbered its repeats in the file's
    order: ``{"1 (#2)": v, "1": c, 1: w}`` kept ``1 (#2)`` as v, and the same keys in
    another order gave ``1 (#2)`` to w (and v became ``1 (#2) (#2)``): two runs with
    one config read as different, value against value.  Every real key keeps its own
    name; the repeat takes the first number no key names."""
    forward = flatten({"layers": [{"1 (#2)": "v", "1": "c", 1: "w"}]})
    backward = flatten({"layers": [{1: "w", "1": "c", "1 (#2)": "v"}]})
    assert forward == backward == {"layers": [{"1 (#2)": "v", "1": "c", "1 (#3)": "w"}]}


def comet_params(path: Path, params: list[tuple[str, int]]) -> None:
    """A Comet offline archive logging ``params`` in this order, nested (``a|b``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    messages = [
        {"payload": {"param": {"paramName": name, "paramValue": value}}} for name, value in params
    ]
    messages.append({"payload": {"log_other": {"key": "hasNestedParams", "val": True}}})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("experiment.json", json.dumps({"offline_id": path.stem}))
        archive.writestr("messages.json", "\n".join(json.dumps(m) for m in messages) + "\n")


def test_comet_params_that_read_as_one_name_are_named_whatever_the_log_order(
    tmp_path: Path,
) -> None:
    """Comet logs a nested param ``a|b`` (read as ``a.b``) beside a param ``a.b``: the one
    logged first was named ``a.b``, the other ``a.b (#2)``.  A run that logged a.b=1 and
    a|b=2 and a run that logged a|b=1 then a.b=2 (other values) read as the same params,
    so a diff called them equal; the same run logged in another order read different.
    The key of fewer parts is ``a.b`` in any order."""
    runs = {
        "one": [("a.b", 1), ("a|b", 2), ("a.b (#2)", 3)],
        "one_reordered": [("a|b", 2), ("a.b (#2)", 3), ("a.b", 1)],
        "swapped": [("a|b", 1), ("a.b", 2), ("a.b (#2)", 3)],
    }
    params = {}
    for name, logged in runs.items():
        comet_params(tmp_path / name / ".cometml-runs" / f"{'c' * 32}.zip", logged)
        (spec,) = detect_runs(tmp_path / name, listing_of(tmp_path / name))
        params[name] = read_run(tmp_path / name, spec).params
    assert params["one"] == params["one_reordered"] == {"a.b": 1, "a.b (#2)": 3, "a.b (#3)": 2}
    assert params["swapped"] == {"a.b": 2, "a.b (#2)": 3, "a.b (#3)": 1}


class _CountingSet(set[str]):
    looks = 0

    def __contains__(self, item: object) -> bool:
        _CountingSet.looks += 1
        return super().__contains__(item)


def test_many_keys_that_join_to_one_name_are_numbered_in_linear_tries() -> None:
    """A config whose keys join to one name thousands of ways (``a.b.c`` as
    ``{"a": {"b.c"}}``, ``{"a.b": {"c"}}``... 8,192 ways for 14 parts, a few hundred KB)
    numbered each repeat from ``(#2)`` up again: 12 million tries, 17 s to read one
    file.  A name's numbers are tried once each."""
    taken = _CountingSet({"x"})
    tried: dict[str, int] = {}
    names = [numbered("x", taken, tried) for _ in range(5000)]
    assert names[0] == "x (#2)" and names[-1] == "x (#5001)" and len(set(names)) == 5000
    assert _CountingSet.looks <= 3 * 5000
    nested: dict[str, object] = {"a.b.c": 0, "a": {"b.c": 1, "b": {"c": 2}}, "a.b": {"c": 3}}
    assert flatten(nested) == {"a.b.c": 0, "a.b.c (#2)": 1, "a.b.c (#3)": 3, "a.b.c (#4)": 2}
