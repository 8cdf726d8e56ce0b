"""Retention policies, candidates and the plan, on real trees and a real index."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_retention_support import index_tree, new_db, write

from store.retention.candidates import (
    Candidate,
    candidates_for_root,
    metric_from_name,
    order_units,
    parse_numbers,
    sort_key_factory,
)
from store.retention.plan import Plan, PlanError, decide_run, load_plan, make_plan
from store.retention.policy import (
    KeepRules,
    Policy,
    PolicyError,
    from_flags,
    load_policy,
    load_policy_file,
    parse_age,
    parse_size,
)
from store.retention.usage import disk_usage, duplicates
from store.userstate import UserState

DAY = 86400.0


# --- policy ----------------------------------------------------------------------------------


def test_sizes_and_ages() -> None:
    assert parse_size("500G") == 500 * 1024**3
    assert parse_size("1.5TiB") == int(1.5 * 1024**4)
    assert parse_size("200MB") == 200 * 1000**2
    assert parse_age("7d") == 7 * DAY
    assert parse_age("12h") == 12 * 3600
    assert parse_age("2w") == 14 * DAY
    assert parse_age("1d12h") == 1.5 * DAY
    for bad in ("five", "-3G", "7 parsecs", "0.5", 0.5):  # a fraction of a byte: 0, all goes
        with pytest.raises(ValueError):
            parse_size(bad)  # type: ignore[arg-type]
    assert parse_size("12") == parse_size(12) == 12
    for bad in ("7x", "d7", "", "7d-2h"):
        with pytest.raises(ValueError):
            parse_age(bad)


def test_policy_file_parses_every_key(tmp_path: Path) -> None:
    (tmp_path / ".artlens.toml").write_text(
        """
[retention]
keep_last = 3
keep_best = 1
metric = "val_loss"
keep_within = "7d"
budget = "500G"
pin = ["**/final/**", "runs/baseline-*"]

[[retention.rule]]
match = "lightning_logs/**"
keep_last = 1

[[retention.rule]]
framework = "hf-trainer"
metric = "eval_accuracy"
"""
    )
    policy = load_policy(tmp_path, user_config=tmp_path / "absent.toml")
    assert policy.rules == KeepRules(3, 1, "val_loss", "min", 7 * DAY)
    assert policy.budget == 500 * 1024**3
    assert policy.protect_live_newest is True
    assert policy.for_run("lightning_logs/version_0", "lightning").keep_last == 1
    assert policy.for_run("other/run", "lightning").keep_last == 3
    hf = policy.for_run("out", "hf-trainer")
    assert (hf.metric, hf.mode, hf.keep_last) == ("eval_accuracy", "max", 3)


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("[retention]\nkeep_last = 3\nkeep_lats = 2\n", 3, "unknown key 'keep_lats'"),
        ("[retention]\n\nkeep_last = -1\n", 3, "must not be negative"),
        ('[retention]\nkeep_last = 1\nbudget = "lots"\n', 3, "not a size"),
        ('[retention]\nkeep_within = "7 fortnights"\n', 2, "not an age"),
        # an age that keeps nothing by age: alone, the plan removed every checkpoint
        ('[retention]\nkeep_within = "0d"\n', 2, "keep_within: '0d' keeps nothing by age"),
        ('[retention]\nkeep_within = "0h"\n', 2, "keep_within: '0h' keeps nothing by age"),
        ("[retention]\nkeep_within = 0\n", 2, "keep_within: '0' keeps nothing by age"),
        ('[retention]\nkeep_within = "0.5s"\n', 2, "keeps nothing by age"),
        ('[retention]\nkeep_within = "-1d"\n', 2, "not an age"),
        ('[retention]\nkeep_within = "many"\n', 2, "not an age"),
        # longer than any plan can show: infinite, or a TOML integer past a float (a crash)
        ('[retention]\nkeep_within = "' + "9" * 400 + 'd"\n', 2, "too large"),
        ("[retention]\nkeep_within = 1" + "0" * 400 + "\n", 2, "too large"),
        ('[retention]\nkeep_within = "5201w"\n', 2, "is too long (at most 5200w"),
        (
            '[retention]\nkeep_last = 2\n[[retention.rule]]\nmatch = "a/**"\nkeep_within = "0d"\n',
            5,
            "keeps nothing by age",
        ),
        ('[retention]\nkeep_best = 1\nmetric = "zork"\n', 3, "add mode"),
        ("[retention]\nkeep_last = 3\nkeep_last = 4\n", 3, ""),
        ("[retention]\nkeep_last = [\n", 2, ""),
        (
            '[retention]\nkeep_last = 2\n[[retention.rule]]\nmatch = "a/**"\nkeep_bets = 1\n',
            5,
            "unknown key 'keep_bets'",
        ),
    ],
)
def test_invalid_policy_is_one_line_with_the_line(
    tmp_path: Path, body: str, line: int, needle: str
) -> None:
    path = tmp_path / ".artlens.toml"
    path.write_text(body)
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"line {line}" in message or f"{path}:{line}:" in message
    assert needle in message


DEEP_TOML = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"
"""Nested past the recursion limit of every Python: tomllib recurses once a level."""


def test_a_policy_nested_too_deeply_is_one_line_naming_the_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    policy_file = root / ".artlens.toml"
    policy_file.write_text(DEEP_TOML)
    with pytest.raises(PolicyError) as caught:
        load_policy_file(policy_file)
    assert str(caught.value) == f"{policy_file}: nested too deeply"
    with pytest.raises(PolicyError) as caught:
        load_policy(root, user_config=tmp_path / "absent.toml")
    assert str(caught.value) == f"{policy_file}: nested too deeply"
    user = tmp_path / "config.toml"
    user.write_text(DEEP_TOML)
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "no-config-here", user_config=user)
    assert str(caught.value) == f"{user}: nested too deeply"


@pytest.mark.parametrize("kind", ["fifo", "symlink", "folder"])
def test_a_policy_that_is_no_regular_file_is_one_line_not_the_defaults(
    tmp_path: Path, kind: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    real = tmp_path / "real.toml"
    real.write_text("[retention]\nkeep_last = 1\n")
    user = tmp_path / "config.toml"
    for path, where in ((root / ".artlens.toml", root), (user, tmp_path / "no-config-here")):
        if kind == "fifo":
            os.mkfifo(path)  # a read would block: it must be refused, not opened
        elif kind == "symlink":
            path.symlink_to(real)
        else:
            path.mkdir()
        if kind == "symlink" and path == user:  # the user's own link (dotfiles): followed
            assert load_policy(where, user_config=user).rules.keep_last == 1
        else:
            with pytest.raises(PolicyError) as caught:
                load_policy(where, user_config=user)
            assert str(caught.value) == f"{path}: cannot read (not a regular file)"
        (path.rmdir if kind == "folder" else path.unlink)()


def test_user_config_per_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[retention]\nkeep_last = 5\n\n[root."{root}"]\nkeep_last = 2\n'
        '[root."/elsewhere"]\nkeep_last = 9\n'
    )
    assert load_policy(root, user_config=config).rules.keep_last == 2
    other = tmp_path / "other"
    other.mkdir()
    assert load_policy(other, user_config=config).rules.keep_last == 5
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 7\n")
    assert load_policy(root, user_config=config).rules.keep_last == 7


@pytest.mark.parametrize("age", ["0d", "0", "0.1s", "5201w"])
def test_an_older_than_flag_that_keeps_nothing_or_forever_is_an_error(age: str) -> None:
    with pytest.raises(PolicyError, match=r"^invalid flags: --older-than: ") as caught:
        from_flags(keep_last=1, older_than=age)
    assert "\n" not in str(caught.value)


def test_keep_within_from_a_second_to_5200_weeks_is_a_policy(tmp_path: Path) -> None:
    for age, seconds in (("1s", 1.0), ("7d", 7 * 86400.0), ("5200w", 5200 * 604800.0)):
        path = tmp_path / ".artlens.toml"
        path.write_text(f'[retention]\nkeep_within = "{age}"\n')
        assert load_policy_file(path).rules.keep_within == seconds


def test_flags_build_the_same_policy(tmp_path: Path) -> None:
    flags = from_flags(
        keep_last=3, keep_best=1, metric="val_acc", older_than="2w", keep_within_budget="1T"
    )
    assert flags.rules == KeepRules(3, 1, "val_acc", "max", 14 * DAY)
    assert flags.budget == 1024**4
    with pytest.raises(PolicyError, match="keep_best needs metric"):
        from_flags(keep_best=2)
    assert not Policy().removes_anything()


# --- candidates ------------------------------------------------------------------------------


def test_numbers_from_names() -> None:
    assert parse_numbers("checkpoint-100") == (100, None)
    assert parse_numbers("epoch=3-step=400.ckpt") == (400, 3)
    assert parse_numbers("model_epoch_5.pt") == (None, 5)
    assert parse_numbers("step_1000.safetensors") == (1000, None)
    assert parse_numbers("best.ckpt") == (None, None)
    assert metric_from_name("epoch=3-val_loss=0.213.ckpt", "val_loss") == pytest.approx(0.213)
    assert metric_from_name("epoch=3-val_loss=2e-3.ckpt", "val_loss") == pytest.approx(0.002)
    assert metric_from_name("epoch=3.ckpt", "val_loss") is None
    # the asked name when the file name holds it, wherever its twin stands
    both = "epoch=3-eval_loss=0.3-val_loss=0.2.ckpt"
    assert metric_from_name(both, "val_loss") == pytest.approx(0.2)
    assert metric_from_name(both, "eval_loss") == pytest.approx(0.3)
    assert metric_from_name("epoch=3-eval_loss=0.3.ckpt", "val_loss") == pytest.approx(0.3)


def _unit(path: str, mtime: int, **kw: object) -> Candidate:
    unit = Candidate("/r", 1, "run", "generic", False, path, False, 1, mtime, 1, "file", None)
    for name, value in kw.items():
        setattr(unit, name, value)
    return unit


def test_checkpoint_100_is_newer_than_checkpoint_20(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for step in (20, 100, 3):
        # mtimes deliberately disagree with the steps: the number decides.
        write(
            root / "out" / f"checkpoint-{step}" / "model.safetensors",
            b"w" * step,
            age=1000.0 + step,
        )
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"out": ("hf-trainer", "finished")})
    (units,) = candidates_for_root(db, root_id, str(root)).values()
    assert [u.path for u in units] == [
        "out/checkpoint-3",
        "out/checkpoint-20",
        "out/checkpoint-100",
    ]
    assert all(u.is_dir for u in units)
    assert units[-1].size == 100
    db.conn.close()


HUGE = "9" * 23
"""A checkpoint number past 64 bits: no step or epoch any framework saves at."""


@pytest.mark.parametrize(
    ("framework", "real", "bogus"),
    [
        ("hf-trainer", "checkpoint-500/model.safetensors", f"checkpoint-{HUGE}/x.json"),
        ("generic", "step_500.pt", f"step_{HUGE}.pt"),
        ("generic", "epoch=3-step=500.ckpt", f"epoch=4-step={HUGE}.ckpt"),
        ("keras", "weights.05.h5", f"weights.{HUGE}.h5"),
    ],
)
def test_a_number_past_64_bits_is_never_the_newest(
    tmp_path: Path, framework: str, real: str, bogus: str
) -> None:
    """A hostile name's number is not trusted to say it is new: keep-last keeps the real
    checkpoint, the plan orders the other oldest and says why."""
    root = tmp_path / "root"
    write(root / "run" / real, b"real weights", age=2 * DAY)
    write(root / "run" / bogus, b"{}", age=60.0)  # written last, too
    db = new_db(tmp_path)
    index_tree(db, root, {"run": (framework, "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    by_name = {u.path.split("/")[1]: u for u in plan.items}
    kept = {name for name, unit in by_name.items() if unit.keep}
    assert kept == {real.split("/")[0]}
    (said,) = [w for w in plan.warnings if "past 64 bits" in w]
    assert said.startswith("run: 1 checkpoint(s) numbered past 64 bits")
    assert (by_name[bogus.split("/")[0]].step, by_name[bogus.split("/")[0]].epoch) == (None, None)
    db.conn.close()


def test_order_by_step_alone_is_the_full_keys_order() -> None:
    """``order_units`` orders by the step alone only when that cannot differ from
    ``sort_key_factory``'s key: random runs, some with a last unit or steps that repeat."""
    rng = random.Random(7)
    for _ in range(300):
        count = rng.randint(1, 12)
        steps = (
            rng.sample(range(50), count)
            if rng.random() < 0.6
            else [rng.randint(0, 4) for _ in range(count)]
        )
        units = [
            _unit(f"run/{rng.choice('abc')}{i}.ckpt", rng.randint(0, 3), step=step)
            for i, step in enumerate(steps)
        ]
        if rng.random() < 0.3:
            units[rng.randrange(count)].is_last = True
        rng.shuffle(units)
        expected = sorted(units, key=sort_key_factory(units))
        assert list(map(id, order_units(units))) == list(map(id, expected))


def test_last_ckpt_is_newest_and_ties_break_by_mtime() -> None:
    units = [
        _unit("run/last.ckpt", 1, is_last=True),
        _unit("run/epoch=2.ckpt", 5, epoch=2),
        _unit("run/b-epoch=1.ckpt", 9, epoch=1),
        _unit("run/a-epoch=1.ckpt", 7, epoch=1),
    ]
    assert [u.name for u in order_units(units)] == [
        "a-epoch=1.ckpt",
        "b-epoch=1.ckpt",
        "epoch=2.ckpt",
        "last.ckpt",
    ]


def test_configs_and_logs_are_never_candidates(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "run" / "config.yaml")
    write(root / "run" / "metrics.csv")
    write(root / "run" / "train.log")
    write(root / "run" / "model.safetensors")  # the final model: no number, not a checkpoint
    write(root / "run" / "step_10.pt")
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"run": ("generic", "finished")})
    (units,) = candidates_for_root(db, root_id, str(root)).values()
    assert [u.path for u in units] == ["run/step_10.pt"]
    db.conn.close()


def test_trainer_state_gives_metrics_and_best(tmp_path: Path) -> None:
    root = tmp_path / "root"
    losses = {100: 0.9, 200: 0.4, 300: 0.6, 400: 0.7}
    for step in losses:
        write(root / "out" / f"checkpoint-{step}" / "model.safetensors", b"w")
    state = {
        "global_step": 400,
        "best_model_checkpoint": "/cluster/job/out/checkpoint-100",
        "log_history": [{"step": s, "eval_loss": v} for s, v in losses.items()],
    }
    write(root / "out" / "checkpoint-400" / "trainer_state.json", json.dumps(state).encode())
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"out": ("hf-trainer", "finished")})
    (units,) = candidates_for_root(db, root_id, str(root), metric="val_loss").values()
    assert [u.metric for u in units] == [0.9, 0.4, 0.6, 0.7]
    assert [u.metric_name for u in units] == ["eval_loss"] * 4  # what the Trainer logged
    assert [u.trainer_best for u in units] == [True, False, False, False]
    for asked, best in (
        ("val_loss", "best eval_loss 0.4 (for val_loss)"),
        ("eval_loss", "best eval_loss 0.4"),
    ):
        plan = make_plan(
            db, [root], from_flags(keep_last=1, keep_best=1, metric=asked), time.time()
        )
        kept = {u.path.rsplit("/", 1)[-1]: u.reasons for u in plan.items if u.keep}
        assert kept == {
            "checkpoint-100": ["trainer's best_model_checkpoint"],
            "checkpoint-200": [best],
            "checkpoint-400": ["latest 1"],
        }
    db.conn.close()


def test_a_best_known_by_its_name_says_so_not_the_trainers_state(tmp_path: Path) -> None:
    """``best.pt`` is kept as the trainer's best by its name alone: its reason must not name
    the HF Trainer's ``best_model_checkpoint``, which no file of this run holds."""
    root = tmp_path / "root"
    for name in ("step_10.pt", "step_20.pt", "best.pt"):
        write(root / "run" / "checkpoints" / name, b"w")
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    kept = {u.path.rsplit("/", 1)[-1]: u.reasons for u in plan.items if u.keep}
    assert kept["best.pt"] == ["trainer's best (by its name)"]
    db.conn.close()


def test_keep_best_names_the_metric_it_read_and_the_one_asked(tmp_path: Path) -> None:
    """Asked for eval_loss, keep-best reads Lightning's and Keras' val_loss (from a file
    name, metrics.csv, the Keras log, the run's summary): each reason names val_loss,
    then the metric asked.  Asked for val_loss, the reasons are as before."""
    root = tmp_path / "root"
    for epoch, loss in enumerate([0.9, 0.5, 0.7]):
        write(root / "named" / "checkpoints" / f"epoch={epoch}-val_loss={loss}.ckpt")
    for epoch in range(2):
        write(root / "csv" / "checkpoints" / f"epoch={epoch}.ckpt")
    write(root / "csv" / "metrics.csv", b"epoch,step,val_loss\n0,10,0.4\n1,20,0.3\n")
    keras = Path(__file__).parent / "fixtures" / "frameworks" / "keras" / "mnist_mlp"
    for rel in (
        "training.log",
        "checkpoints/model.01-0.66.keras",
        "checkpoints/model.02-0.58.keras",
    ):
        write(root / "keras" / rel, (keras / rel).read_bytes())
    for step in (100, 200):
        write(root / "summary" / f"step_{step}.pt")
    db = new_db(tmp_path)
    runs = {
        "named": ("lightning", "finished"),
        "csv": ("lightning", "finished"),
        "keras": ("keras", "finished"),
        "summary": ("generic", "finished"),
    }
    summary = json.dumps({"val_loss": {"step": 200, "last": 0.25}})
    index_tree(db, root, runs, metrics={"summary": summary})
    best = {
        "named/checkpoints/epoch=1-val_loss=0.5.ckpt": "val_loss 0.5",
        "csv/checkpoints/epoch=1.ckpt": "val_loss 0.3",
        "keras/checkpoints/model.02-0.58.keras": "val_loss 0.58",
        "summary/step_200.pt": "val_loss 0.25",
    }
    for asked, after in (("eval_loss", " (for eval_loss)"), ("val_loss", "")):
        plan = make_plan(db, [root], from_flags(keep_best=1, metric=asked), time.time())
        kept = {u.path: u.reasons for u in plan.items if u.keep}
        assert kept == {
            **{path: [f"best {value}{after}"] for path, value in best.items()},
            # the summary holds the last value only: keep-best cannot rank the older one
            "summary/step_100.pt": [f"no {asked} value to rank it (keep_best keeps it)"],
        }
        named = {u.metric_name for u in plan.items if u.metric is not None}
        assert named == ({"val_loss"} if after else {None})
    db.conn.close()


# --- the plan --------------------------------------------------------------------------------


def _lightning_tree(tmp_path: Path, status: str = "finished") -> tuple[Path, Path]:
    root = tmp_path / "root"
    ckpts = root / "lightning_logs" / "version_0" / "checkpoints"
    losses = [0.10, 0.50, 0.40, 0.30, 0.35]  # the oldest is the best
    for epoch, loss in enumerate(losses):
        write(
            ckpts / f"epoch={epoch}-val_loss={loss:.2f}.ckpt",
            b"c" * (epoch + 1),
            age=(10 - epoch) * DAY,
        )
    write(root / "lightning_logs" / "version_0" / "hparams.yaml", b"lr: 1")
    return root, ckpts


def test_best_by_metric_that_is_also_the_oldest_is_kept(tmp_path: Path) -> None:
    root, _ = _lightning_tree(tmp_path)
    db = new_db(tmp_path)
    index_tree(db, root, {"lightning_logs/version_0": ("lightning", "finished")})
    policy = from_flags(keep_last=2, keep_best=1, metric="val_loss")
    plan = make_plan(db, [root], policy, time.time())
    decisions = {u.name: (u.keep, u.reasons) for u in plan.items}
    assert decisions["epoch=0-val_loss=0.10.ckpt"] == (True, ["best val_loss 0.1"])
    assert decisions["epoch=4-val_loss=0.35.ckpt"] == (True, ["latest 2"])
    assert decisions["epoch=3-val_loss=0.30.ckpt"] == (True, ["latest 2"])
    assert decisions["epoch=1-val_loss=0.50.ckpt"][0] is False
    assert decisions["epoch=2-val_loss=0.40.ckpt"][0] is False
    assert plan.bytes_freed == 2 + 3
    assert plan.runs[0].removed == 2 and plan.roots[0].removed == 2
    db.conn.close()


def test_a_ragged_metrics_csv_row_judges_no_checkpoint(tmp_path: Path) -> None:
    """A row with a cell more than the header may hold any column's value under val_loss:
    its checkpoint gets no value from it (and keep_best never picks it by that value)."""
    root = tmp_path / "root"
    version = root / "lightning_logs" / "version_0"
    for epoch in range(3):
        write(version / "checkpoints" / f"epoch={epoch}.ckpt", b"c", age=(10 - epoch) * DAY)
    write(version / "hparams.yaml", b"lr: 1")
    write(version / "metrics.csv", b"epoch,step,val_loss\n0,10,0.5\n1,20,0.01,0.9\n2,30,0.4\n")
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"lightning_logs/version_0": ("lightning", "finished")})
    (units,) = candidates_for_root(db, root_id, str(root), metric="val_loss").values()
    assert [(u.name, u.metric) for u in units] == [
        ("epoch=0.ckpt", 0.5),
        ("epoch=1.ckpt", None),
        ("epoch=2.ckpt", 0.4),
    ]
    plan = make_plan(db, [root], from_flags(keep_best=1, metric="val_loss"), time.time())
    decided = {u.name: (u.keep, u.reasons) for u in plan.items}
    assert decided["epoch=2.ckpt"] == (True, ["best val_loss 0.4"])
    assert decided["epoch=1.ckpt"] == (True, ["no val_loss value to rank it (keep_best keeps it)"])
    assert decided["epoch=0.ckpt"] == (False, ["kept by no rule"])
    db.conn.close()


def test_live_runs_newest_checkpoint_is_kept(tmp_path: Path) -> None:
    root, _ = _lightning_tree(tmp_path)
    db = new_db(tmp_path)
    index_tree(db, root, {"lightning_logs/version_0": ("lightning", "live")})
    plan = make_plan(db, [root], from_flags(older_than="1d"), time.time())
    newest = plan.items[-1]
    assert newest.name.startswith("epoch=4")
    assert newest.keep and newest.reasons == ["live run's newest"]
    assert sum(not u.keep for u in plan.items) == 4
    db.conn.close()


def test_pins_from_userstate_and_policy_globs(tmp_path: Path) -> None:
    root, _ = _lightning_tree(tmp_path)
    write(root / "runs" / "baseline-1" / "step_1.pt", age=30 * DAY)
    write(root / "runs" / "other" / "final" / "step_2.pt", age=30 * DAY)
    write(root / "runs" / "other" / "step_3.pt", age=30 * DAY)
    db = new_db(tmp_path)
    index_tree(
        db,
        root,
        {
            "lightning_logs/version_0": ("lightning", "finished"),
            "runs/baseline-1": ("generic", "finished"),
            "runs/other": ("generic", "finished"),
        },
    )
    with UserState(tmp_path / "state.db") as state:
        state.pin(root, "lightning_logs/version_0/checkpoints/epoch=1-val_loss=0.50.ckpt")
        policy = from_flags(keep_last=0, older_than="1h", pin=("**/final/**", "runs/baseline-*"))
        plan = make_plan(db, [root], policy, time.time(), state)
    kept = sorted(u.path for u in plan.items if u.keep)
    assert kept == [
        "lightning_logs/version_0/checkpoints/epoch=1-val_loss=0.50.ckpt",
        "runs/baseline-1/step_1.pt",
        "runs/other/final/step_2.pt",
    ]
    assert all(u.reasons == ["pinned"] for u in plan.items if u.keep)
    db.conn.close()


def test_budget_removes_oldest_unprotected_until_under(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for step in range(1, 6):
        write(root / "run" / f"step_{step}.pt", b"z" * 100, age=(10 - step) * DAY)
    write(root / "run" / "notes.txt", b"n" * 50)
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_within_budget="300"), time.time())
    removed = [u.name for u in plan.items if not u.keep]
    assert removed == ["step_1.pt", "step_2.pt", "step_3.pt"]  # 550 -> 250 bytes
    assert all(u.reasons == ["over budget"] for u in plan.items if not u.keep)
    assert plan.roots[0].total_bytes == 550 and plan.roots[0].over_budget_after == 0
    fs = plan.filesystems[0]
    blocks = sum(os.lstat(root / "run" / f"step_{n}.pt").st_blocks * 512 for n in (1, 2, 3))
    assert fs.bytes_freed == 300
    assert fs.free_now is not None and fs.free_after_purge == fs.free_now + blocks
    db.conn.close()


def test_free_space_after_purge_counts_blocks_not_sizes(tmp_path: Path) -> None:
    """A sparse 1 TiB checkpoint takes nothing on disk, and one hard-linked from outside the
    plan frees nothing: purging them gives back what they take, not 1 TiB (the plan said
    "disk free: 72G now, 1.1T after" on a 270G disk).  A checkpoint gone since the scan
    cannot be measured: the free space after is unknown, never the sizes' sum."""
    root = tmp_path / "root"
    sparse = write(root / "run" / "step_1.pt", b"", age=3 * DAY)
    with open(sparse, "r+b") as handle:
        handle.truncate(1 << 40)
    os.utime(sparse, (time.time() - 3 * DAY,) * 2)
    linked = write(root / "run" / "step_2.pt", b"w" * 20_000, age=2 * DAY)
    os.link(linked, tmp_path / "backup.pt")
    real = write(root / "run" / "step_3.pt", b"r" * 20_000, age=DAY)
    write(root / "run" / "step_4.pt", b"k" * 100)
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert sorted(u.name for u in plan.removals) == ["step_1.pt", "step_2.pt", "step_3.pt"]
    fs = plan.filesystems[0]
    assert fs.bytes_freed == (1 << 40) + 40_000  # the sizes, as the plan's totals say
    on_disk = os.lstat(sparse).st_blocks * 512 + os.lstat(real).st_blocks * 512
    assert on_disk < 1 << 20
    assert fs.free_now is not None and fs.free_after_purge == fs.free_now + on_disk
    assert load_plan(plan.save(tmp_path / "plan.json")).filesystems[0].free_after_purge == (
        fs.free_after_purge
    )
    real.unlink()
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert plan.filesystems[0].free_now is not None
    assert plan.filesystems[0].free_after_purge is None
    db.conn.close()


def test_free_space_after_purge_is_unknown_when_measuring_runs_out_of_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An lstat per removed file costs about a second per 500,000: past its time the plan
    says unknown rather than wait (or guess from sizes)."""
    from store.retention import plan as plan_module

    root = tmp_path / "root"
    for step in range(1100):
        write(root / "run" / f"step_{step}.pt", b"x", age=DAY + 1100 - step)
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert plan.filesystems[0].free_after_purge is not None
    monkeypatch.setattr(plan_module, "DISK_FREED_SECONDS", 0.0)
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert len(plan.removals) == 1099
    assert plan.filesystems[0].free_now is not None
    assert plan.filesystems[0].free_after_purge is None
    db.conn.close()


def test_expiry_counts_down_and_plan_round_trips(tmp_path: Path) -> None:
    root, _ = _lightning_tree(tmp_path)
    db = new_db(tmp_path)
    index_tree(db, root, {"lightning_logs/version_0": ("lightning", "finished")})
    now = time.time()
    plan = make_plan(db, [root], from_flags(older_than="7d"), now)
    young = [u for u in plan.items if u.keep]
    assert [u.name[:7] for u in young] == ["epoch=4"]  # 6 days old
    assert young[0].expires == pytest.approx(young[0].mtime_ns / 1e9 + 7 * DAY)
    expires = young[0].expires
    assert expires is not None and 0 < expires - now < 2 * DAY
    saved = load_plan(plan.save(tmp_path / "plan.json"))
    assert saved.id == plan.id
    assert [(u.path, u.size, u.mtime_ns, u.inode) for u in saved.removals] == [
        (u.path, u.size, u.mtime_ns, u.inode) for u in plan.removals
    ]
    db.conn.close()


def test_no_rule_removes_nothing(tmp_path: Path) -> None:
    root, _ = _lightning_tree(tmp_path)
    db = new_db(tmp_path)
    index_tree(db, root, {"lightning_logs/version_0": ("lightning", "finished")})
    plan = make_plan(db, [root], Policy(), time.time())
    assert plan.items and all(u.keep for u in plan.items)
    db.conn.close()


def test_usage_and_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a" / "w.pt", b"same" * 10)
    write(root / "b" / "w.pt", b"same" * 10)
    write(root / "b" / "big.pt", b"x" * 100)
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"a": ("generic", "finished"), "b": ("generic", "finished")})
    for path in ("a/w.pt", "b/w.pt"):
        db.conn.execute(
            "UPDATE artifacts SET hash = 'h1' WHERE root_id = ? AND path = ?",
            (root_id, path.encode()),
        )
    (usage,) = disk_usage(db)
    assert [(r.label, r.size) for r in usage.runs] == [("b", 140), ("a", 40)]
    (group,) = duplicates(db)
    assert group.copies == [(os.path.abspath(root), "a/w.pt"), (os.path.abspath(root), "b/w.pt")]
    assert group.reclaimable == 40
    db.conn.close()


def test_usage_sums_each_root_by_run_with_one_root_or_many(tmp_path: Path) -> None:
    """Totals, what no run owns, each run (an empty one too) and each experiment, against
    sums over the artifacts table: on an index of one root (read straight through) and
    after a second root joins it (read through the root's index)."""
    roots = [tmp_path / "one", tmp_path / "two"]
    for n, root in enumerate(roots, 1):
        write(root / "exp" / "a" / "w.pt", b"a" * 10 * n)
        write(root / "exp" / "a" / "logs" / "x.txt", b"l" * 3)
        write(root / "b" / "big.pt", b"b" * 100 * n)
        write(root / "loose.txt", b"o" * 7 * n)
        (root / "empty").mkdir()
    db = new_db(tmp_path)

    def expected(root_id: int) -> tuple[int, int, int, dict[str, tuple[int, int]]]:
        rows = db.conn.execute(
            "SELECT run_id, size FROM artifacts WHERE root_id = ?", (root_id,)
        ).fetchall()
        runs = dict(db.conn.execute("SELECT id, path FROM runs WHERE root_id = ?", (root_id,)))
        per_run = {
            (bytes(path).decode() or "."): (
                sum(size for run, size in rows if run == run_id),
                sum(1 for run, _ in rows if run == run_id),
            )
            for run_id, path in runs.items()
        }
        outside = sum(size for run, size in rows if run is None)
        return sum(size for _, size in rows), len(rows), outside, per_run

    ids: list[int] = []
    for count, root in enumerate(roots, 1):
        runs = {"exp/a": ("generic", "finished"), "b": ("generic", "finished")}
        ids.append(index_tree(db, root, {**runs, "empty": ("generic", "finished")}))
        for usage in disk_usage(db, [str(root) for root in roots[:count]]):
            root_id = ids[[str(r) for r in roots].index(usage.root)]
            size, files, outside, per_run = expected(root_id)
            assert (usage.size, usage.files, usage.outside_runs) == (size, files, outside)
            assert {r.label: (r.size, r.files) for r in usage.runs} == per_run
            assert per_run["empty"] == (0, 0) and outside > 0
            assert [(e.label, e.size) for e in usage.experiments] == [
                ("(no experiment)", sum(s for s, _ in per_run.values()))
            ]
            assert usage.disk is not None and usage.disk >= 0
    db.conn.close()


# --- properties of the planner ---------------------------------------------------------------

_metric_values = st.one_of(st.none(), st.floats(-10, 10, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(
    metrics=st.lists(_metric_values, min_size=0, max_size=12),
    keep_last=st.one_of(st.none(), st.integers(0, 5)),
    keep_best=st.one_of(st.none(), st.integers(0, 3)),
    mode=st.sampled_from(["min", "max"]),
    within=st.one_of(st.none(), st.floats(0, 20 * DAY)),
    pinned_mask=st.integers(0, 2**12 - 1),
    live=st.booleans(),
)
def test_planner_properties(
    metrics: list[float | None],
    keep_last: int | None,
    keep_best: int | None,
    mode: str,
    within: float | None,
    pinned_mask: int,
    live: bool,
) -> None:
    now = 1_800_000_000.0
    units = [
        _unit(f"run/step_{i}.pt", int((now - (20 - i) * DAY) * 1e9), step=i, metric=m, live=live)
        for i, m in enumerate(metrics)
    ]
    rules = KeepRules(
        keep_last,
        keep_best,
        "val_loss" if keep_best is not None else None,
        ("min" if mode == "min" else "max") if keep_best is not None else None,
        within,
    )
    pinned_paths = {u.path for i, u in enumerate(units) if pinned_mask >> i & 1}
    pool = decide_run(units, rules, now=now, pinned=lambda u: u.path in pinned_paths)
    assert pool == []
    # Exactly one decision per candidate, each with a reason.
    assert all(isinstance(u.keep, bool) and u.reasons for u in units)
    if keep_last:
        assert all(u.keep for u in units[-keep_last:])
    if keep_best:
        scored = [u for u in units if u.metric is not None]
        best = sorted(u.metric for u in scored if u.metric is not None)
        if mode == "max":
            best.reverse()
        cutoff = best[:keep_best]
        for u in scored:
            if (
                u.metric is not None
                and cutoff
                and (u.metric < cutoff[-1] if mode == "min" else u.metric > cutoff[-1])
            ):
                assert u.keep
    assert all(u.keep for u in units if u.path in pinned_paths)
    if live and units:
        assert units[-1].keep
    if not rules.any_rule():
        assert all(u.keep for u in units)


def test_plan_over_many_artifacts(tmp_path: Path) -> None:
    """A smaller cousin of tests/bench/bench_retention.py (which times it)."""
    db = new_db(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    now = time.time()
    with db.conn:
        db.conn.execute(
            "INSERT INTO roots (id, path, display, added_at) VALUES (1, ?, 'r', 0)",
            (os.fsencode(os.path.abspath(root)),),
        )
        db.conn.executemany(
            "INSERT INTO runs (id, root_id, path, name, framework, updated_at) "
            "VALUES (?, 1, ?, 'r', 'lightning', 0)",
            [(r, f"run{r}".encode()) for r in range(200)],
        )
        db.conn.executemany(
            "INSERT INTO artifacts (root_id, run_id, path, parent, name, kind, size, mtime_ns, "
            "inode, dev, first_seen, last_seen) VALUES (1, ?, ?, ?, 'n', 'checkpoint', 10, ?, "
            "?, 1, 0, 0)",
            [
                (
                    r,
                    f"run{r}/epoch={e}.ckpt".encode(),
                    f"run{r}".encode(),
                    int((now - 100 + e) * 1e9),  # epoch=99 written last, as trained
                    r * 1000 + e,
                )
                for r in range(200)
                for e in range(100)
            ],
        )
    plan: Plan = make_plan(db, [root], from_flags(keep_last=3), now)
    assert len(plan.items) == 20_000 and len(plan.removals) == 200 * 97
    db.conn.close()


def test_loading_a_plan_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    """A saved plan of 500,000 removals loads with the collector paused (it took twice
    as long with it running); afterwards it runs as before, a load that fails included,
    and the loaded items are in the oldest generation."""
    import gc

    root = tmp_path / "root"
    for e in range(5):
        write(root / "run" / f"epoch={e}.ckpt", b"c" * (e + 1), age=DAY * (5 - e))
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("lightning", "finished")})
    saved = make_plan(db, [root], from_flags(keep_last=2), time.time()).save(tmp_path / "p.json")
    db.conn.close()
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "removals": [')
    gc.unfreeze()
    try:
        for collecting in (True, False):
            (gc.enable if collecting else gc.disable)()
            loaded = load_plan(saved)
            assert gc.isenabled() is collecting and gc.get_freeze_count() == 0
            assert [i.path for i in loaded.removals] == [f"run/epoch={e}.ckpt" for e in range(3)]
            kept = [i.path for i in loaded.items if i.keep]
            assert kept == ["run/epoch=3.ckpt", "run/epoch=4.ckpt"]
            oldest = {id(o) for o in gc.get_objects(generation=2)}
            assert all(id(item) in oldest for item in loaded.items)
            with pytest.raises(PlanError):
                load_plan(broken)
            assert gc.isenabled() is collecting and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_a_plan_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    """What a plan allocates is handed to the oldest generation (no young collection walks
    it on the next allocation), the collector runs again afterwards, and a heap someone
    froze (the explorer does) stays frozen, with the plan in it."""
    import gc

    root = tmp_path / "root"
    for e in range(5):
        write(root / "run" / f"epoch={e}.ckpt", b"c" * (e + 1), age=DAY * (5 - e))
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("lightning", "finished")})
    gc.unfreeze()
    try:
        plan = make_plan(db, [root], from_flags(keep_last=2), time.time())
        assert gc.isenabled() and gc.get_freeze_count() == 0
        oldest = {id(o) for o in gc.get_objects(generation=2)}
        assert all(id(item) in oldest and id(item.reasons) in oldest for item in plan.items)
        assert [i.keep for i in plan.items] == [False, False, False, True, True]
        gc.disable()
        gc.freeze()
        frozen = gc.get_freeze_count()
        again = make_plan(db, [root], from_flags(keep_last=2), time.time())
        assert not gc.isenabled()  # as the caller left it
        assert gc.get_freeze_count() > frozen
        assert [i.keep for i in again.items] == [i.keep for i in plan.items]
    finally:
        gc.unfreeze()
        gc.enable()
        db.conn.close()


def test_a_plan_says_what_the_scans_could_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's checkpoint folder that cannot be listed holds checkpoints no plan sees: the
    plan left that run out without a word; it names the place now."""
    from store.scan import Indexer
    from tests.test_scan import deny_listing, run_tree

    root = tmp_path / "root"
    run = run_tree(root)
    db = new_db(tmp_path)
    with monkeypatch.context() as denied:
        deny_listing(denied, run / "out")
        Indexer(db, root).scan()
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert any("runD/out could not be read (" in w and "in no plan" in w for w in plan.warnings), (
        plan.warnings
    )
    Indexer(db, root).scan()  # readable again: nothing to say
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    assert not any("could not be read" in w for w in plan.warnings), plan.warnings
    db.conn.close()


def test_keep_best_alone_never_removes_a_checkpoint_it_cannot_rank(tmp_path: Path) -> None:
    """``--keep-best 1 --metric val_loss`` alone, on a run where some checkpoints have a
    val_loss and others none: keep-best ranked the scored ones only and removed every
    unscored one, though nothing says it is worse.  They are kept now, saying why, as when
    no checkpoint has a value; beside keep-last or keep-within those rules say what goes
    (the contract of the run with no value at all), and the best is still kept."""
    root = tmp_path / "root"
    checkpoints = root / "lightning_logs" / "version_0" / "checkpoints"
    names = ["epoch=0-val_loss=0.50.ckpt", "epoch=1.ckpt", "epoch=2-val_loss=0.40.ckpt"]
    names += ["epoch=3.ckpt", "epoch=4-val_loss=0.45.ckpt"]
    for age, name in enumerate(reversed(names), 1):
        write(checkpoints / name, b"x", age=age * DAY)
    db = new_db(tmp_path)
    index_tree(db, root, {"lightning_logs/version_0": ("lightning", "finished")})
    plan = make_plan(db, [root], from_flags(keep_best=1, metric="val_loss"), time.time())
    unranked = ["no val_loss value to rank it (keep_best keeps it)"]
    assert {u.name: (u.keep, u.reasons) for u in plan.items} == {
        "epoch=0-val_loss=0.50.ckpt": (False, ["kept by no rule"]),
        "epoch=1.ckpt": (True, unranked),
        "epoch=2-val_loss=0.40.ckpt": (True, ["best val_loss 0.4"]),
        "epoch=3.ckpt": (True, unranked),
        "epoch=4-val_loss=0.45.ckpt": (False, ["kept by no rule"]),
    }
    assert any(
        w.endswith("some checkpoints have no val_loss value (keep_best keeps those)")
        for w in plan.warnings
    ), plan.warnings
    # beside keep-last, keep-best keeps its best and keep-last the newest, as before
    policy = from_flags(keep_best=1, metric="val_loss", keep_last=1)
    plan = make_plan(db, [root], policy, time.time())
    assert [u.name for u in plan.items if u.keep] == names[2:3] + names[4:]
    assert not any("keep_best keeps" in w for w in plan.warnings)
    # and keep-within the same: the unscored young checkpoint stays by it, the old goes
    plan = make_plan(
        db, [root], from_flags(keep_best=1, metric="val_loss", older_than="2.5d"), time.time()
    )
    assert [u.name for u in plan.removals] == names[:2]
    db.conn.close()


def test_keep_best_with_no_value_to_rank_by_keeps_every_checkpoint(tmp_path: Path) -> None:
    """``--keep-best 1 --metric val_loss`` alone, on a run that never logged val_loss,
    removed every checkpoint, with a warning: which is best cannot be told, so none goes
    for it."""
    root = tmp_path / "root"
    for step in (1, 2, 3):
        write(root / "run" / f"step_{step}.pt", b"x" * step, age=DAY * (4 - step))
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_best=1, metric="val_loss"), time.time())
    assert plan.removals == []
    assert all("keep_best idle" in " ".join(u.reasons) for u in plan.items)
    assert any("(keep_best idle: all kept)" in w for w in plan.warnings)
    # beside keep-last, that rule says what goes, as asked (the warning says keep-best idled)
    policy = from_flags(keep_best=1, metric="val_loss", keep_last=1)
    plan = make_plan(db, [root], policy, time.time())
    assert [u.name for u in plan.removals] == ["step_1.pt", "step_2.pt"]
    assert any(w.endswith("(keep_best idle)") for w in plan.warnings)
    db.conn.close()


def test_a_budget_of_a_fraction_of_a_byte_is_refused(tmp_path: Path) -> None:
    """``budget = 0.5`` (TOML's float, meant as 0.5 GB) was read as 0 bytes: a budget that
    removes every checkpoint no other rule protects."""
    (tmp_path / ".artlens.toml").write_text("[retention]\nkeep_last = 2\nbudget = 0.5\n")
    with pytest.raises(PolicyError, match="budget"):
        load_policy_file(tmp_path / ".artlens.toml")


def test_user_config_per_root_names_the_folder_whatever_path_reached_it(tmp_path: Path) -> None:
    """A root opened as /mnt/exp, a link to /data/exp that the user config names: it took
    the global [retention] (keep_last 1) rather than its own (keep_last 10)."""
    real = tmp_path / "data" / "exp"
    real.mkdir(parents=True)
    link = tmp_path / "mnt-exp"
    link.symlink_to(real)
    config = tmp_path / "config.toml"
    config.write_text(f'[retention]\nkeep_last = 1\n\n[root."{real}"]\nkeep_last = 10\n')
    assert load_policy(link, user_config=config).rules.keep_last == 10
    config.write_text(f'[retention]\nkeep_last = 1\n\n[root."{link}"]\nkeep_last = 10\n')
    assert load_policy(real, user_config=config).rules.keep_last == 10
    # two sections for one folder: which one holds is not guessed
    config.write_text(
        f'[retention]\nkeep_last = 1\n\n[root."{link}"]\nkeep_last = 10\n'
        f'[root."{real}"]\nkeep_last = 3\n'
    )
    with pytest.raises(PolicyError, match="both name"):
        load_policy(real, user_config=config)


@pytest.mark.parametrize("live", [True, False])
def test_a_live_runs_checkpoints_newer_than_its_metrics_are_kept(live: bool) -> None:
    """Lightning writes metrics.csv every 100 steps: a live run's newest checkpoints have no
    val_loss yet.  With keep_last and keep_best they were removed, by no rule, though one
    may be the best; a finished run's log is all there is, so there they go."""
    now = 1_800_000_000.0
    units = [
        _unit(f"run/step_{i}.pt", int((now - (20 - i) * DAY) * 1e9), step=i, metric=m, live=live)
        for i, m in enumerate([0.5, 0.3, 0.4, None, None])
    ]
    decide_run(units, KeepRules(1, 1, "val_loss", "min", None), now=now, pinned=lambda _u: False)
    if live:
        assert [u.keep for u in units] == [False, True, False, True, True]
        assert units[3].reasons == ["no val_loss logged for it yet (live run)"]
    else:
        assert [u.keep for u in units] == [False, True, False, False, True]
