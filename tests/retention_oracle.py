"""The retention planner as it was before its speed-up, kept as a test oracle.

``plan_oracle`` must give exactly what ``store.retention.plan.make_plan`` gives; the
equivalence test in test_retention_equivalence.py compares them on randomized trees.
Only the parts that were rewritten for speed live here; the rest is imported.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import sqlite_utils

from store.paths import key
from store.retention.candidates import (
    _LAST,
    _NUMBERS,
    Candidate,
    Member,
    RunInfo,
    _attach_logged_series,
    _attach_metrics_csv,
    _attach_run_metrics,
    _attach_trainer_state,
    _checkpoint_folder_end,
    _decode,
    _name_metric_reader,
    _name_numbers,
    _numbers_of,
    _unnumbered_best,
    load_runs,
)
from store.retention.plan import (
    LIVE_NEWEST,
    NO_RULE,
    PINNED,
    RESUMED,
    FsTotals,
    Pins,
    PinSource,
    Plan,
    RootTotals,
    RunTotals,
    _account_fs,
    _pins_for,
    _policy_for,
    _run_metric,
    apply_budget,
    dead_session_reason,
    disk_freed,
    resumed_session,
    trainer_best_reason,
)
from store.retention.policy import KeepRules, Policy, format_age


def order_units(units: list[Candidate]) -> list[Candidate]:
    """One run's units oldest first, with a key function per unit as it reads; those
    numbered past 64 bits first, by path."""
    untrusted = sorted((u for u in units if u.untrusted), key=lambda u: u.path)
    if untrusted:
        return [*untrusted, *order_units([u for u in units if not u.untrusted])]
    numbered = [u for u in units if not u.is_last and not _unnumbered_best(u)]
    if numbered and all(u.step is not None for u in numbered):
        return sorted(
            units,
            key=lambda u: (u.is_last, u.step if u.step is not None else -1, u.mtime_ns, u.path),
        )
    if numbered and all(u.epoch is not None for u in numbered):
        return sorted(
            units,
            key=lambda u: (u.is_last, u.epoch if u.epoch is not None else -1, u.mtime_ns, u.path),
        )
    return sorted(units, key=lambda u: (u.is_last, u.mtime_ns, u.step or u.epoch or -1, u.path))


def _plain_pinned(pins: Pins) -> Callable[[Candidate], bool]:
    """The pin check as it reads: the path or a folder above it is pinned exactly or
    matches a glob's regex, or an exact pin lies inside it (no literal pre-check, no
    cache)."""
    globs = pins.globs

    def pinned(unit: Candidate) -> bool:
        path = unit.path
        if any(pin.startswith(path + "/") for pin in pins.exact):
            return True
        while path:
            if path in pins.exact or (globs is not None and globs.matches(path)):
                return True
            cut = path.rfind("/")
            path = path[:cut] if cut > 0 else ""
        return False

    return pinned


_IN_CKPT_FOLDER = (
    "(CAST(parent AS TEXT) GLOB 'checkpoint[-_][0-9]*' "
    "OR CAST(parent AS TEXT) GLOB '*/checkpoint[-_][0-9]*')"
)


def plan_oracle(
    db: sqlite_utils.Database,
    roots: Iterable[Path | str],
    policy: Policy | Mapping[str, Policy] | Callable[[str], Policy],
    now: float,
    pins: PinSource | Mapping[str, Iterable[str]] | None = None,
) -> Plan:
    """The old ``make_plan`` (same snapshot rule)."""
    conn = db.conn
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")
    try:
        return _make_plan(db, roots, policy, now, pins)
    finally:
        if own_transaction and conn.in_transaction:
            conn.execute("COMMIT")


def candidates_for_root(
    db: sqlite_utils.Database,
    root_id: int,
    root: str,
    *,
    metric: str | Callable[[RunInfo], str | None] | None = None,
    runs: dict[int, RunInfo] | None = None,
) -> dict[int, list[Candidate]]:
    """Every run's checkpoint units under one root, oldest first, metrics attached.

    ``metric`` is one name for all runs, or a function giving each run's own.  Checkpoint
    folders arrive aggregated by SQLite (size, newest mtime); their files are listed by
    ``attach_members`` only for the folders a plan removes.
    """
    runs = runs if runs is not None else load_runs(db, root_id, root)
    by_run: dict[int, dict[str, Candidate]] = {}
    conn = db.conn
    folder_rows = conn.execute(
        f"SELECT run_id, parent, sum(size), max(mtime_ns) FROM artifacts "
        f"WHERE root_id = ? AND run_id IS NOT NULL AND {_IN_CKPT_FOLDER} GROUP BY run_id, parent",
        (root_id,),
    ).fetchall()
    loose_parents: list[bytes] = []
    for run_id, parent_blob, size, mtime_ns in folder_rows:
        run = runs.get(run_id)
        if run is None:
            continue
        parent = _decode(parent_blob)
        prefix_len = len(run.path) + 1 if run.path else 0
        folder_end = _checkpoint_folder_end(parent[prefix_len:] + "/")
        if folder_end < 0:
            loose_parents.append(parent_blob)
            continue
        unit_path = parent[: prefix_len + folder_end]
        units = by_run.get(run_id)
        if units is None:
            units = by_run[run_id] = {}
        unit = units.get(unit_path)
        if unit is None:
            units[unit_path] = Candidate(
                root,
                run_id,
                run.path,
                run.framework,
                run.live,
                unit_path,
                True,
                int(size),
                int(mtime_ns),
                0,
                "dir",
                None,
            )
        else:
            unit.size += int(size)
            unit.mtime_ns = max(unit.mtime_ns, int(mtime_ns))
    file_rows = conn.execute(
        f"SELECT run_id, path, size, mtime_ns, inode, ftype, hash FROM artifacts "
        f"WHERE root_id = ? AND run_id IS NOT NULL AND kind IN ('checkpoint', 'model') "
        f"AND NOT {_IN_CKPT_FOLDER}",
        (root_id,),
    ).fetchall()
    if loose_parents:
        marks = ",".join("?" * len(loose_parents))
        file_rows += conn.execute(
            f"SELECT run_id, path, size, mtime_ns, inode, ftype, hash FROM artifacts "
            f"WHERE root_id = ? AND kind IN ('checkpoint', 'model') AND parent IN ({marks})",
            (root_id, *loose_parents),
        ).fetchall()
    numbers = _NUMBERS.findall
    for run_id, path_blob, size, mtime_ns, inode, ftype, digest in file_rows:
        run = runs.get(run_id)
        if run is None:
            continue
        path = _decode(path_blob)
        name = path[path.rfind("/") + 1 :]
        lower = name.lower()
        step, epoch, numbered, untrusted = _numbers_of(numbers(lower))
        is_last = False
        if not numbered:
            if not lower.endswith(".ckpt"):
                continue
            is_last = _LAST.match(name) is not None
        units = by_run.get(run_id)
        if units is None:
            units = by_run[run_id] = {}
        unit = units[path] = Candidate(
            root,
            run_id,
            run.path,
            run.framework,
            run.live,
            path,
            False,
            size,
            mtime_ns,
            inode,
            ftype,
            digest,
        )
        unit.is_last = is_last
        unit.step, unit.epoch, unit.untrusted = step, epoch, untrusted
    ordered: dict[int, list[Candidate]] = {}
    for run_id, units in sorted(by_run.items(), key=lambda item: runs[item[0]].path):
        run_metric = metric(runs[run_id]) if callable(metric) else metric
        from_name = _name_metric_reader(run_metric) if run_metric else None
        for unit in units.values():
            if unit.is_dir:
                unit.step, unit.epoch, unit.untrusted = _name_numbers(unit.name)
            if from_name is not None:
                found = from_name(unit.name)
                if found is not None:
                    unit.metric, unit.metric_name = found
                    unit.metric_source = "file name"
        run_units = _attach_trainer_state(
            runs[run_id], order_units(list(units.values())), run_metric
        )
        if run_metric is not None:
            _attach_metrics_csv(runs[run_id], run_units, run_metric)
            _attach_logged_series(runs[run_id], run_units, run_metric)
            _attach_run_metrics(runs[run_id], run_units, run_metric)
        ordered[run_id] = run_units
    return ordered


def attach_members(db: sqlite_utils.Database, root_id: int, units: list[Candidate]) -> None:
    """List the files of each checkpoint folder unit (what apply will compare against)."""
    folders = {u.path: u for u in units if u.is_dir}
    if not folders:
        return
    rows = db.conn.execute(
        f"SELECT path, size, mtime_ns, inode, ftype, hash FROM artifacts "
        f"WHERE root_id = ? AND {_IN_CKPT_FOLDER}",
        (root_id,),
    )
    for path_blob, size, mtime_ns, inode, ftype, digest in rows:
        path = _decode(path_blob)
        cut = path.find("/")
        while cut >= 0:
            unit = folders.get(path[:cut])
            if unit is not None:
                unit.members = [*unit.members, Member(path, size, mtime_ns, inode, ftype, digest)]
                break
            cut = path.find("/", cut + 1)


def decide_run(
    units: list[Candidate],
    rules: KeepRules,
    *,
    now: float,
    pinned: Callable[[Candidate], bool],
    protect_live_newest: bool = True,
    budget_set: bool = False,
) -> list[Candidate]:
    """Decide one run's units (oldest first) in place; return those left for the budget.

    Keep rules are a union.  Units no rule keeps are removed when the run has a keep rule;
    with only a budget they wait for the root's budget pass; with neither they stay.
    """
    has_rules = rules.any_rule()
    count = len(units)
    if rules.keep_last:
        reason = f"latest {rules.keep_last}"
        for unit in units[max(0, count - rules.keep_last) :]:
            unit.reasons.append(reason)
    live = protect_live_newest and count > 0 and units[-1].live
    resumed = resumed_session(units) if rules.keep_last or live else []
    if rules.keep_last:
        for unit in resumed[-rules.keep_last :]:
            if not unit.reasons:
                unit.reasons.append(f"latest {rules.keep_last} {RESUMED}")
    if (
        rules.keep_best
        and rules.metric
        and units
        and all(u.metric is None for u in units)
        and not rules.keep_last
        and rules.keep_within is None
    ):
        for unit in units:
            unit.reasons.append(f"no {rules.metric} value to tell the best (keep_best idle)")
    elif rules.keep_best and rules.metric:
        scored = [u for u in units if u.metric is not None]
        sign = 1.0 if rules.mode != "max" else -1.0
        # Ties go to the newer unit: it saw more training for the same score.
        order = sorted(range(len(scored)), key=lambda i: (sign * (scored[i].metric or 0.0), -i))
        for index in order[: rules.keep_best]:
            unit = scored[index]
            if unit.metric_name is None:  # read under the asked name
                unit.reasons.append(f"best {rules.metric} {unit.metric:.6g}")
            else:
                unit.reasons.append(
                    f"best {unit.metric_name} {unit.metric:.6g} (for {rules.metric})"
                )
        if not rules.keep_last and rules.keep_within is None:
            for unit in units:
                if unit.metric is None:
                    unit.reasons.append(f"no {rules.metric} value to rank it (keep_best keeps it)")
        elif units and units[-1].live and scored:
            # a live run's log lags its checkpoints: those after the last scored may be best
            last = max(i for i, u in enumerate(units) if u.metric is not None)
            for unit in units[last + 1 :]:
                if unit.metric is None and not unit.reasons:
                    unit.reasons.append(f"no {rules.metric} logged for it yet (live run)")
    if rules.keep_within is not None:
        horizon_ns = (now - rules.keep_within) * 1e9
        reason = f"younger than {format_age(rules.keep_within)}"
        for unit in units:
            if unit.mtime_ns > horizon_ns:
                unit.reasons.append(reason)
                unit.expires = unit.mtime_ns / 1e9 + rules.keep_within
    if live:
        units[-1].reasons.append(LIVE_NEWEST)
        if resumed and resumed[-1] is not units[-1]:
            resumed[-1].reasons.append(LIVE_NEWEST)
    pool: list[Candidate] = []
    for unit in units:
        if unit.trainer_best:
            unit.reasons.append(trainer_best_reason(unit))
        if pinned(unit):
            unit.reasons.insert(0, PINNED)
        if unit.reasons:
            unit.keep = True
        elif has_rules:
            unit.keep = False
            unit.reasons.append("kept by no rule")
            if unit.dead_after is not None:
                unit.reasons.append(dead_session_reason(unit.dead_after))
        elif budget_set:
            unit.keep = True
            pool.append(unit)
        else:
            unit.keep = True
            unit.reasons.append(NO_RULE)
    return pool


def _make_plan(
    db: sqlite_utils.Database,
    roots: Iterable[Path | str],
    policy: Policy | Mapping[str, Policy] | Callable[[str], Policy],
    now: float,
    pins: PinSource | Mapping[str, Iterable[str]] | None,
) -> Plan:
    plan = Plan(
        f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{uuid.uuid4().hex[:8]}",
        time.time(),
        now,
        [],
    )
    fs_by_dev: dict[int, FsTotals] = {}
    for root_arg in roots:
        root = os.path.abspath(os.fspath(root_arg))
        root_policy = _policy_for(policy, root)
        row = db.conn.execute("SELECT id FROM roots WHERE path = ?", (key(root),)).fetchone()
        if row is None:
            plan.warnings.append(f"not indexed: {root}")
            continue
        root_id = int(row[0])
        runs = load_runs(db, root_id, root)
        by_run = candidates_for_root(db, root_id, root, runs=runs, metric=_run_metric(root_policy))
        root_pins = _pins_for(root, pins, root_policy)
        pinned = _plain_pinned(root_pins)
        totals = RootTotals(root, root_policy.describe(), budget=root_policy.budget)
        pool: list[Candidate] = []
        for run_id, units in by_run.items():
            run = runs[run_id]
            rules = root_policy.for_run(run.path, run.framework)
            pool.extend(
                decide_run(
                    units,
                    rules,
                    now=now,
                    pinned=pinned,
                    protect_live_newest=root_policy.protect_live_newest,
                    budget_set=root_policy.budget is not None,
                )
            )
            if (
                rules.keep_best
                and not rules.keep_last
                and rules.keep_within is None
                and any(u.metric is None for u in units)
                and any(u.metric is not None for u in units)
            ):
                plan.warnings.append(
                    f"{run.path or '.'}: some checkpoints have no {rules.metric} value "
                    "(keep_best keeps those)"
                )
            if rules.keep_best and not any(u.metric is not None for u in units):
                alone = not rules.keep_last and rules.keep_within is None
                plan.warnings.append(
                    f"{run.path or '.'}: no {rules.metric} value for any checkpoint "
                    f"(keep_best idle{': all kept' if alone else ''})"
                )
        total_row = db.conn.execute(
            "SELECT coalesce(sum(size), 0) FROM artifacts WHERE root_id = ?", (root_id,)
        ).fetchone()
        totals.total_bytes = int(total_row[0])
        if root_policy.budget is not None:
            removed_by_rules = sum(u.size for units in by_run.values() for u in units if not u.keep)
            totals.over_budget_after = apply_budget(
                pool, root_policy.budget, totals.total_bytes - removed_by_rules
            )
            if totals.over_budget_after:
                plan.warnings.append(
                    f"{root}: still {totals.over_budget_after} bytes over budget; "
                    "everything left is protected"
                )
        for run_id, units in by_run.items():
            run_totals = RunTotals(root, runs[run_id].path)
            for unit in units:
                if unit.keep:
                    run_totals.kept += 1
                    run_totals.bytes_kept += unit.size
                else:
                    run_totals.removed += 1
                    run_totals.bytes_removed += unit.size
            plan.runs.append(run_totals)
            plan.items.extend(units)
            totals.kept += run_totals.kept
            totals.removed += run_totals.removed
            totals.bytes_kept += run_totals.bytes_kept
            totals.bytes_removed += run_totals.bytes_removed
        removed = [u for u in plan.items if u.root == root and not u.keep]
        attach_members(db, root_id, removed)
        plan.roots.append(totals)
        _account_fs(fs_by_dev, root, totals.bytes_removed, disk_freed(root, removed))
    plan.filesystems = list(fs_by_dev.values())
    return plan
