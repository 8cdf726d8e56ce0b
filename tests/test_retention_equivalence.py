"""The fast planner gives exactly what the planner before its speed-up gave.

Randomized trees (HF checkpoint folders with nested files, Lightning files with metrics in
their names, ``last.ckpt``, step files, names that are not UTF-8, a run inside another
run's checkpoint folder) under randomized policies; every field of every item, member,
total and warning must agree with ``retention_oracle.plan_oracle``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from retention_oracle import decide_run as oracle_decide_run
from retention_oracle import plan_oracle
from test_retention_support import index_tree, new_db, write

from store.retention import candidates
from store.retention.candidates import Candidate, Member, MemberRows
from store.retention.plan import (
    Pins,
    Plan,
    _pinned_check,
    _pins_among,
    decide_run,
    load_plan,
    make_plan,
)
from store.retention.policy import KeepRules, from_flags


def _make_tree(root: Path, rng: random.Random) -> dict[str, tuple[str, str]]:
    runs: dict[str, tuple[str, str]] = {}
    for index in range(rng.randint(3, 7)):
        style = rng.choice(["hf", "lightning", "generic", "mixed"])
        run = f"exp{rng.randint(0, 2)}/run{index}"
        status = "live" if rng.random() < 0.2 else "finished"
        age = rng.uniform(0, 20) * 86400
        if style in ("hf", "mixed"):
            steps = rng.sample(range(1, 40), rng.randint(1, 6))
            for step in steps:
                folder = root / run / f"checkpoint{rng.choice('-_')}{step * 100}"
                for name in rng.sample(["model.safetensors", "optimizer.pt", "config.json"], 2):
                    write(folder / name, b"x" * rng.randint(1, 50), age=age + rng.random())
                if rng.random() < 0.3:
                    write(folder / "sub" / "shard.bin", b"y" * 7, age=age)
            best = rng.choice(steps) * 100
            state = {
                "global_step": max(steps) * 100,
                "best_model_checkpoint": f"out/checkpoint-{best}",
                "log_history": [  # the Trainer's name, now and then Lightning's
                    {
                        "step": s * 100,
                        rng.choice(["eval_loss", "eval_loss", "val_loss"]): rng.random(),
                    }
                    for s in steps
                    if rng.random() < 0.7
                ],
            }
            write(root / run / "trainer_state.json", json.dumps(state).encode(), age=age)
        if style in ("lightning", "mixed"):
            for epoch in rng.sample(range(0, 30), rng.randint(1, 6)):
                loss = f"-val_loss={rng.random():.3f}" if rng.random() < 0.7 else ""
                name = f"epoch={epoch}-step={epoch * 10}{loss}.ckpt"
                write(root / run / "checkpoints" / name, b"c" * rng.randint(1, 90), age=age)
            if rng.random() < 0.5:
                write(root / run / "checkpoints" / rng.choice(["last.ckpt", "last-v1.ckpt"]))
            if rng.random() < 0.5:
                rows = "\n".join(f"{e},{e * 10},{rng.random():.4f}" for e in range(30))
                column = rng.choice(["val_loss", "eval_loss", "Val_Loss"])
                write(root / run / "metrics.csv", f"epoch,step,{column}\n{rows}\n".encode())
        if style in ("generic", "mixed"):
            for step in rng.sample(range(1, 50), rng.randint(1, 5)):
                write(root / run / f"step_{step * 1000}.pt", b"s" * step, age=age + step)
            write(root / run / "model_final.pt", b"f", age=age)
        write(root / run / "notes.txt", b"n")
        if rng.random() < 0.3:
            write(root / run / os.fsdecode(b"bad\xff-epoch=3.ckpt"), b"b", age=age)
        runs[run] = ("hf-trainer" if style == "hf" else "lightning", status)
    nested = "exp9/outer/checkpoint-5/inner"
    write(root / "exp9/outer/checkpoint-5/weights.bin", b"o")
    write(root / nested / "checkpoint-7" / "model.safetensors", b"i")
    write(root / nested / "epoch=1.ckpt", b"e")
    runs["exp9/outer"] = ("hf-trainer", "finished")
    runs[nested] = ("hf-trainer", "live")
    return runs


def _item_fields(plan: Plan) -> list[tuple[Any, ...]]:
    return [
        (
            c.root,
            c.run_id,
            c.run_path,
            c.framework,
            c.live,
            c.path,
            c.is_dir,
            c.size,
            c.mtime_ns,
            c.inode,
            c.ftype,
            c.hash,
            c.step,
            c.epoch,
            c.is_last,
            c.metric,
            c.metric_source,
            c.trainer_best,
            [(m.path, m.size, m.mtime_ns, m.inode, m.ftype, m.hash) for m in c.members],
            c.keep,
            c.reasons,
            c.expires,
            c.metric_name,
        )
        for c in plan.items
    ]


def _totals(plan: Plan) -> list[Any]:
    """Every total; of the filesystems, what the plan decides (free space is the disk's)."""
    return [
        [[getattr(r, name) for name in r.__slots__] for r in group]
        for group in (plan.runs, plan.roots)
    ] + [[(fs.dev, fs.roots, fs.bytes_freed) for fs in plan.filesystems]]


@pytest.mark.parametrize("fetch_rows", [None, 3])
@pytest.mark.parametrize("seed", range(6))
def test_fast_planner_matches_the_oracle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, fetch_rows: int | None
) -> None:
    """``fetch_rows``: the rows digested a few at a time, so that a run's files and a
    folder's rows cross the edges of what is digested at once (``plan_block``)."""
    if fetch_rows is not None:
        monkeypatch.setattr(candidates, "_FETCH_ROWS", fetch_rows)
    rng = random.Random(seed)
    root = tmp_path / "root"
    runs = _make_tree(root, rng)
    db = new_db(tmp_path)
    index_tree(db, root, runs)
    now = time.time()
    policies = [
        from_flags(keep_last=rng.randint(1, 3)),
        from_flags(
            keep_last=rng.choice([None, 1, 2]),
            keep_best=1,
            metric=rng.choice(["val_loss", "eval_loss", "accuracy"]),
            older_than=rng.choice([None, "3d", "10d"]),
            pin=rng.choice(
                [
                    (),
                    ("**/checkpoint-100/**",),
                    ("exp1/*",),
                    ("**/checkpoints/epoch=1?-*",),
                    ("exp[02]/run[!1]*/**", "**/model_final.pt"),
                    ("**/*.ckpt",),
                ]
            ),
        ),
        from_flags(keep_within_budget=f"{rng.randint(0, 400)}"),
        from_flags(),
    ]
    pins = {str(root): [rng.choice(list(runs))]}
    for policy in policies:
        fast = make_plan(db, [root, tmp_path / "absent"], policy, now, pins)
        slow = plan_oracle(db, [root, tmp_path / "absent"], policy, now, pins)
        assert _item_fields(fast) == _item_fields(slow)
        assert _totals(fast) == _totals(slow)
        assert fast.warnings == slow.warnings
        assert any(item.is_dir for item in fast.items)
        saved = load_plan(fast.save(tmp_path / "plan.json"))  # members saved from their rows
        assert _removed_members(saved) == _removed_members(slow)
    db.conn.close()


def _removed_members(plan: Plan) -> list[Any]:
    return [
        (c.path, [(m.path, m.size, m.mtime_ns, m.inode, m.ftype, m.hash) for m in c.members])
        for c in plan.items
        if not c.keep
    ]


@pytest.mark.parametrize("seed", range(2))
def test_fast_planner_matches_the_oracle_over_two_roots(tmp_path: Path, seed: int) -> None:
    """Two roots in one index (queries narrowed by the root index) and one alone (read
    straight through the table) agree with the oracle; their checkpoint-named links (which
    the oracle predates) are described alike either way."""
    rng = random.Random(100 + seed)
    db = new_db(tmp_path)
    roots = [tmp_path / "a", tmp_path / "b"]
    trees = [_make_tree(root, rng) for root in roots]
    for root, runs in zip(roots, trees, strict=True):
        index_tree(db, root, runs)
    now = time.time()
    policy = from_flags(keep_last=1, keep_within_budget="100")
    for chosen in (roots, roots[1:]):
        fast = make_plan(db, chosen, policy, now)
        slow = plan_oracle(db, chosen, policy, now)
        assert _item_fields(fast) == _item_fields(slow)
        assert _totals(fast) == _totals(slow)
        assert fast.warnings == slow.warnings
    db.conn.close()

    run = sorted(r for r in trees[1] if not r.startswith("exp9"))[0]
    (roots[1] / run / "checkpoints").mkdir(parents=True, exist_ok=True)
    os.symlink("epoch=0-step=0.ckpt", roots[1] / run / "checkpoints" / "last.ckpt")
    os.symlink("/elsewhere/best.ckpt", roots[1] / run / "best-epoch=9.ckpt")
    shared, alone = new_db(tmp_path / "shared"), new_db(tmp_path / "alone")
    for root, runs in zip(roots, trees, strict=True):
        index_tree(shared, root, runs)
    index_tree(alone, roots[1], trees[1])
    links = [make_plan(d, [roots[1]], policy, now).links for d in (shared, alone)]
    assert links[0] == links[1]
    assert len(links[0]) == 2
    assert "points outside the root" in links[0][0]
    assert f"{run}/checkpoints/last.ckpt is a symlink to 'epoch=0-step=0.ckpt'" in links[0][1]
    shared.conn.close()
    alone.conn.close()


def _same_mtime(paths: list[Path], ns: int) -> None:
    for path in paths:
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


def test_fast_planner_matches_the_oracle_on_ties_nulls_links_and_max(tmp_path: Path) -> None:
    """Hand-made cases the random trees rarely hit: two checkpoints with the same step and
    the same mtime (placed as the rows came), unnumbered ones tied on mtime, metrics tied
    or absent, keep-best on a metric to maximise, a pinned glob.  Then (the oracle predates
    links) a checkpoint folder whose weights link into an older one, and a
    checkpoint-named link, with and without which the plan is the same otherwise."""
    root = tmp_path / "root"
    ns = (time.time_ns() // 10**9 - 30 * 86400) * 10**9
    lit = root / "exp0/ties/checkpoints"
    same = [
        write(lit / "epoch=1-step=100.ckpt", b"a" * 5),
        write(lit / "epoch=1-step=100-v1.ckpt", b"b" * 7),
        write(lit / "epoch=2-step=200-val_acc=0.5.ckpt", b"c" * 3),
        write(lit / "epoch=3-step=300.ckpt", b"d" * 2),
        write(lit / "epoch=4-step=400-val_acc=0.5.ckpt", b"e" * 4),
        write(lit / "epoch=5-step=500-val_acc=0.25.ckpt", b"f" * 4),
    ]
    plain = root / "exp1/plain"
    same += [write(plain / "a.ckpt", b"g"), write(plain / "b.ckpt", b"h" * 9)]
    hf = root / "exp2/hf"
    same += [
        write(hf / "checkpoint-100/model.safetensors", b"i" * 20),
        write(hf / "checkpoint_100/model.safetensors", b"j" * 21),
        write(hf / "checkpoint-200/optimizer.pt", b"k" * 8),
    ]
    _same_mtime(same, ns)
    runs = {
        "exp0/ties": ("lightning", "finished"),
        "exp1/plain": ("lightning", "live"),
        "exp2/hf": ("hf-trainer", "finished"),
    }
    db = new_db(tmp_path)
    index_tree(db, root, runs)
    now = time.time()
    policies = [
        from_flags(keep_last=1),
        from_flags(keep_best=1, metric="val_acc", mode="max"),
        from_flags(keep_best=2, metric="val_acc", mode="min", pin=("**/checkpoint_*/**",)),
        from_flags(keep_within_budget="30"),
    ]
    for policy in policies:
        fast = make_plan(db, [root], policy, now)
        slow = plan_oracle(db, [root], policy, now)
        assert _item_fields(fast) == _item_fields(slow)
        assert _totals(fast) == _totals(slow)
        assert fast.warnings == slow.warnings
        assert any(not item.keep for item in fast.items)
    before = make_plan(db, [root], policies[0], now)
    db.conn.close()
    assert not before.links
    os.symlink("epoch=5-step=500-val_acc=0.25.ckpt", lit / "last.ckpt")
    os.symlink("../checkpoint-100/model.safetensors", hf / "checkpoint-200/model.safetensors")
    linked = new_db(tmp_path / "linked")
    index_tree(linked, root, runs)
    after = make_plan(linked, [root], policies[0], now)
    squeezed = make_plan(linked, [root], from_flags(keep_within_budget="0"), now)
    linked.conn.close()
    reasons = {i.path: (i.keep, i.reasons) for i in squeezed.items}
    assert reasons["exp2/hf/checkpoint-100"] == (
        True,
        ["a link in exp2/hf/checkpoint-200 points into it"],
    )  # out of the budget's pool, though the budget takes everything else
    assert reasons["exp1/plain/b.ckpt"] == (True, ["live run's newest"])
    assert [p for p, (keep, _r) in reasons.items() if keep] == [  # runs by path
        "exp1/plain/b.ckpt",
        "exp2/hf/checkpoint-100",
    ]
    assert len(after.links) == 1 and "last.ckpt is a symlink" in after.links[0]
    kept = {i.path: i.reasons for i in after.items if i.keep}
    assert kept["exp2/hf/checkpoint-100"] == ["a link in exp2/hf/checkpoint-200 points into it"]
    assert [i.path for i in before.items if i.keep] == [
        p for p in (i.path for i in after.items if i.keep) if p != "exp2/hf/checkpoint-100"
    ]


def test_a_name_means_in_each_run_what_its_framework_and_metric_make_of_it(
    tmp_path: Path,
) -> None:
    """The planner reads each file name once per framework and metric: the same names in
    runs of five frameworks, two of them judged by another metric, give each run exactly
    what that run alone in its own index gives (timm counts epochs, MMEngine's ``best_``,
    Keras' numbered names, the last and best names, a metric per framework)."""
    root = tmp_path / "root"
    names = [
        "checkpoint-12.pth.tar",
        "checkpoint-3.pth.tar",
        "best_epoch_3-val_loss=0.5.pth",
        "epoch_4-val_loss=0.25-val_acc=0.75.pth",
        "weights.07-0.30.h5",
        "model_best.pth.tar",
        "last.pth.tar",
        "epoch=3-val_loss=0.2-val_acc=0.9.ckpt",
    ]
    frameworks = ["timm", "mmengine", "keras", "lightning", "generic"]
    runs = {f"exp/{fw}": (fw, "finished") for fw in frameworks}
    runs["other/lightning"] = ("lightning", "finished")  # a run glob picks its metric
    for run in runs:
        for age, name in enumerate(names):
            write(root / run / name, b"w" * (age + 1), age=86400.0 * (age + 1))
    from store.retention.globs import compile_globs
    from store.retention.policy import KeepRules, Policy, Rule

    policy = Policy(
        rules=KeepRules(keep_last=1, keep_best=1, metric="val_acc", mode="max"),
        overrides=(
            Rule(KeepRules(metric="val_loss", mode="min"), framework="timm"),
            Rule(KeepRules(metric="val_loss", mode="min"), framework="generic"),
            Rule(
                KeepRules(metric="val_loss", mode="min"),
                "other/*",
                None,
                compile_globs(["other/*"]),
            ),
        ),
    )
    now = time.time()
    together = new_db(tmp_path / "together")
    index_tree(together, root, runs)
    plan = make_plan(together, [root], policy, now)
    together.conn.close()
    by_run: dict[str, list[tuple[Any, ...]]] = {}
    for fields, item in zip(_item_fields(plan), plan.items, strict=True):
        by_run.setdefault(item.run_path, []).append(fields[:1] + fields[2:])
    seen = set()
    for run, info in runs.items():
        alone = new_db(tmp_path / run.replace("/", "-"))
        index_tree(alone, root, {run: info})
        own = make_plan(alone, [root], policy, now)
        alone.conn.close()
        assert by_run[run] == [f[:1] + f[2:] for f in _item_fields(own)]
        seen.add(tuple((i.name, i.step, i.epoch, i.metric, i.trainer_best) for i in own.items))
    assert len(seen) == len(runs) - 1  # each run read the names its own way (lightning
    # judged by val_loss is generic judged by it)


def _insert_row(db: Any, root_id: int, run_id: int, rel: str, kind: str, size: int) -> None:
    """One more row, as an index caught between two states of the tree might hold it."""
    parent = rel.rpartition("/")[0]
    db.conn.execute(
        "INSERT INTO artifacts (root_id, run_id, path, parent, name, kind, size, mtime_ns, "
        "inode, dev, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, 0)",
        (root_id, run_id, rel.encode(), parent.encode(), rel, kind, size, 10**18, 1),
    )
    db.conn.commit()


def test_runs_whose_rows_interleave_come_in_the_order_the_oracle_gives(tmp_path: Path) -> None:
    """One run's files can come in several stretches with another run's between
    (``run1/``, then ``run1-b/``, then ``run1/checkpoints/``), a run's first file can be
    no checkpoint's, and a file can sit at a checkpoint folder's own path: runs, units and
    ties come as the oracle gives them, runs by path.  The same index with its rows stored
    the other way round gives the same plan: the order never depends on storage."""
    root = tmp_path / "root"
    ns = (time.time_ns() // 10**9 - 30 * 86400) * 10**9
    same = [
        write(root / "exp/run1/model_final.pt", b"a"),
        write(root / "exp/run1/checkpoints/step_20.pt", b"b" * 2),
        write(root / "exp/run1-b/step_10.pt", b"c" * 3),
        write(root / "exp/run1-b/checkpoints/epoch=1.ckpt", b"d" * 4),
        write(root / "exp/run1/checkpoints/epoch=1-step=20.ckpt", b"e" * 5),
        write(root / "exp/run1/checkpoints/epoch=0-step=20.ckpt", b"f" * 6),
        write(root / "exp/run0/model_final.pt", b"g"),
        write(root / "exp/run2/checkpoint-5/model.safetensors", b"h" * 7),
        write(root / "exp/run2/checkpoint-9/model.safetensors", b"i" * 8),
        write(root / "exp/run2/step_5.pt", b"j" * 9),
    ]
    _same_mtime(same, ns)
    runs = {
        "exp/run2": ("hf-trainer", "finished"),
        "exp/run1": ("generic", "live"),
        "exp/run1-b": ("lightning", "finished"),
        "exp/run0": ("generic", "finished"),
    }
    db = new_db(tmp_path)
    root_id = index_tree(db, root, runs)
    (run2,) = db.conn.execute("SELECT id FROM runs WHERE path = ?", (b"exp/run2",)).fetchone()
    _insert_row(db, root_id, run2, "exp/run2/checkpoint-9", "checkpoint", 11)
    now = time.time()
    policies = [
        from_flags(keep_last=1),
        from_flags(keep_within_budget="12"),
        from_flags(keep_last=1, pin=("exp/run1/**",)),
    ]
    for policy in policies:
        fast = make_plan(db, [root], policy, now)
        slow = plan_oracle(db, [root], policy, now)
        assert _item_fields(fast) == _item_fields(slow)
        assert _totals(fast) == _totals(slow)
        assert fast.warnings == slow.warnings
    fast = make_plan(db, [root], policies[0], now)
    assert [r.run_path for r in fast.runs] == ["exp/run1", "exp/run1-b", "exp/run2"]
    assert "exp/run2/checkpoint-9" in [i.path for i in fast.items if not i.is_dir]
    # every row's place in the table turned round: ties, folders and runs come as before
    with db.conn:
        db.conn.execute("UPDATE artifacts SET id = -id")
    assert db.conn.execute("SELECT min(id) FROM artifacts").fetchone()[0] < 0
    for policy in policies:
        assert _item_fields(make_plan(db, [root], policy, now)) == _item_fields(
            plan_oracle(db, [root], policy, now)
        )
    reversed_plan = make_plan(db, [root], policies[0], now)
    assert _item_fields(reversed_plan) == _item_fields(fast)
    assert _totals(reversed_plan) == _totals(fast)
    db.conn.close()


def test_folders_named_like_checkpoint_folders_hold_file_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``checkpoint-best/``, ``checkpoint_logs/`` and ``my-checkpoint-7-old/`` pass
    SQLite's first filter for checkpoint folders but are none: their checkpoint files are
    units of their own, read again a few folders a query, as the oracle finds them."""
    monkeypatch.setattr(candidates, "_LOOSE_PARENTS_A_QUERY", 2)
    root = tmp_path / "root"
    for index, folder in enumerate(
        ["checkpoint-best", "checkpoint_logs", "my-checkpoint-7-old", "x/checkpoint-", "ckpts"]
    ):
        write(root / "run" / folder / f"epoch={index}-step={index * 10}.ckpt", b"a" * (index + 1))
        write(root / "run" / folder / "notes.txt", b"n")
    write(root / "run/checkpoint-100/model.safetensors", b"m" * 30)
    write(root / "run/checkpoint-100/checkpoint_logs/step_3.pt", b"s" * 3)
    db = new_db(tmp_path)
    index_tree(db, root, {"run": ("lightning", "finished")})
    now = time.time()
    for policy in (from_flags(keep_last=2), from_flags(keep_within_budget="40")):
        fast = make_plan(db, [root], policy, now)
        assert _item_fields(fast) == _item_fields(plan_oracle(db, [root], policy, now))
    units = {item.path: item for item in make_plan(db, [root], from_flags(keep_last=1), now).items}
    assert sorted(units) == sorted(
        [
            "run/checkpoint-best/epoch=0-step=0.ckpt",
            "run/checkpoint_logs/epoch=1-step=10.ckpt",
            "run/my-checkpoint-7-old/epoch=2-step=20.ckpt",
            "run/x/checkpoint-/epoch=3-step=30.ckpt",
            "run/ckpts/epoch=4-step=40.ckpt",
            "run/checkpoint-100",
        ]
    )
    assert units["run/checkpoint-100"].size == 33  # its nested folder is part of it
    emptied = make_plan(db, [root], from_flags(keep_within_budget="0"), now)
    (unit,) = [item for item in emptied.items if item.is_dir]
    assert not unit.keep
    assert sorted(m.path for m in unit.members) == [
        "run/checkpoint-100/checkpoint_logs/step_3.pt",
        "run/checkpoint-100/model.safetensors",
    ]
    db.conn.close()


def _random_pins(rng: random.Random, paths: list[str]) -> Pins:
    folders = sorted({p.rpartition("/")[0] for p in paths} - {""})
    exact = rng.sample(paths + folders, min(len(paths + folders), rng.randint(0, 3)))
    if rng.random() < 0.3:  # more exact pins than the joined paths are searched for
        exact += [f"elsewhere/{i}" for i in range(40)] + rng.sample(folders, min(1, len(folders)))
    globs = rng.sample(
        ["**/final/**", "exp1/*", "a*/b?/**", "**/*.ckpt", "*", "[ab]/**", "x/[!y]*"],
        rng.randint(0, 2),
    )
    return Pins(exact, globs)


@pytest.mark.parametrize("seed", range(40))
def test_a_runs_pins_found_at_once_are_each_units_pins(seed: int) -> None:
    """``_pins_among`` (a run's paths looked through at once) pins exactly the units the
    check of each unit alone pins, and ``decide_run`` decides the same either way."""
    rng = random.Random(seed)
    parts = ["a", "b", "exp1", "exp10", "final", "x", "y", "run", "checkpoints"]
    paths = sorted(
        {
            "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
            + rng.choice(["", ".ckpt", "/step_1.pt"])
            for _ in range(rng.randint(1, 12))
        }
    )
    pins = _random_pins(rng, paths)
    units = [
        Candidate("/r", 1, "run", "generic", False, p, False, 1, i, 1, "file", None, step=i)
        for i, p in enumerate(paths)
    ]
    one_by_one = _pinned_check(pins)
    expected = [index for index, unit in enumerate(units) if one_by_one(unit)]
    assert _pins_among(pins)(units) == expected
    rules = KeepRules(keep_last=rng.choice([None, 1]), keep_within=rng.choice([None, 5e-9]))
    decided = []
    for among in (None, _pins_among(pins)):
        copies = [copy.copy(u) for u in units]
        for u in copies:
            u.reasons = []
        pool = decide_run(
            copies, rules, now=1e-8, pinned=one_by_one, budget_set=True, pinned_among=among
        )
        decided.append(([(u.keep, u.reasons, u.expires) for u in copies], [u.path for u in pool]))
    assert decided[0] == decided[1]


@pytest.mark.parametrize("seed", range(30))
def test_keep_best_picks_what_the_oracle_picks_on_ties(seed: int) -> None:
    """Keep-best of one (found in C when every unit is scored) and of more, on values
    that tie (0.0 and -0.0 among them), with a None or an infinity now and then."""
    rng = random.Random(seed)
    pool = [0.5, 0.25, 0.0, -0.0, 1.0, 0.25]
    values: list[float | None] = [rng.choice(pool) for _ in range(rng.randint(1, 9))]
    if rng.random() < 0.3:
        values[rng.randrange(len(values))] = rng.choice([None, math.inf, -math.inf])
    rules = KeepRules(
        keep_best=rng.choice([1, 1, 2]), metric="val_loss", mode=rng.choice(["min", "max"])
    )
    picked = []
    for decide in (decide_run, oracle_decide_run):
        units = [
            Candidate(
                "/r", 1, "run", "generic", False, f"run/s{i}.pt", False, 1, i, 1, "file", None
            )
            for i in range(len(values))
        ]
        for unit, value in zip(units, values, strict=True):
            unit.metric = value
        decide(units, rules, now=0.0, pinned=lambda unit: False)
        picked.append([(u.keep, u.reasons) for u in units])
    assert picked[0] == picked[1]


def test_a_folders_members_are_its_rows_made_members_when_asked() -> None:
    """``MemberRows``: its length before any member is made; then each row as a
    ``Member`` (the path decoded as the index stored it, NULL ftype a plain file), rows
    added before and after the members were made alike."""
    rows = [
        (1, b"r/checkpoint-1/model.safetensors", 10, 5, 7, None, "ab", b"r/checkpoint-1"),
        (1, b"r/checkpoint-1/\xff[b]", 2, 6, 8, "symlink", None, b"r/checkpoint-1"),
    ]
    more = [(1, b"r/checkpoint-1/sub/x", 3, 9, 9, None, None, b"r/checkpoint-1/sub")]
    expected = [
        Member("r/checkpoint-1/model.safetensors", 10, 5, 7, "file", "ab"),
        Member("r/checkpoint-1/\udcff[b]", 2, 6, 8, "symlink", None),
        Member("r/checkpoint-1/sub/x", 3, 9, 9, "file", None),
    ]
    members = MemberRows(list(rows))
    assert len(members) == 2 and members
    members.add(iter(more))
    assert list(members) == expected and len(members) == 3
    assert members[1] == expected[1] and members[-1:] == expected[-1:]
    made = MemberRows(list(rows))
    assert list(made) == expected[:2]
    made.add(iter(more))
    assert list(made) == expected and len(made) == 3
    assert not MemberRows([]) and list(MemberRows([])) == []
    assert MemberRows(list(rows)).fields() == [
        ["r/checkpoint-1/model.safetensors", 10, 5, 7, "file", "ab"],
        ["r/checkpoint-1/\udcff[b]", 2, 6, 8, "symlink", None],
    ]
    assert made.fields()[-1] == ["r/checkpoint-1/sub/x", 3, 9, 9, "file", None]
