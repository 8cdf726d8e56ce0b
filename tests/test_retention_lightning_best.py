"""Lightning's own record of its best checkpoint keeps it, as the HF Trainer's does.

``ModelCheckpoint(monitor=..., save_top_k=2, save_last=True)`` writes ``last.ckpt`` and the
top-k files; every one holds the callback's state (``best_model_path``, ``best_k_models``,
``dirpath``, ``last_model_path``).  ``--keep-last 1`` kept ``last.ckpt`` and removed the
monitored best, where an HF run's ``best_model_checkpoint`` is always kept.  The state is
read statically (never unpickled) from the newest checkpoint's ``data.pkl``; its paths are
the training machine's, mapped onto the run by name in the folder the state file was saved
to, and only when the state proves that folder is the one its best lies in.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_retention_support import index_tree, new_db, write

from store.demo import _formats as fmt
from store.retention import candidates
from store.retention.candidates import candidates_for_root
from store.retention.plan import make_plan
from store.retention.policy import from_flags
from tui.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks" / "lightning"
MONITOR_KEY = (
    "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0,"
    " 'every_n_epochs': 1, 'train_time_interval': None}"
)
TRAINED_AT = "/home/ada/proj/lightning_logs/version_1/checkpoints"
NAMES = ["epoch=3-step=8.ckpt", "epoch=5-step=12.ckpt", "epoch=7-step=16.ckpt"]
BEST = "epoch=5-step=12.ckpt"
REASON = "trainer's best_model_path (ModelCheckpoint monitoring val_loss)"


def lightning_state(
    *,
    best: str = f"{TRAINED_AT}/{BEST}",
    dirpath: str = TRAINED_AT,
    top_k: tuple[str, ...] = (f"{TRAINED_AT}/{BEST}", f"{TRAINED_AT}/epoch=7-step=16.ckpt"),
    last: str = f"{TRAINED_AT}/last.ckpt",
    monitor: str | None = "val_loss",
    callback_key: str = MONITOR_KEY,
    padding: str = "",
) -> bytes:
    """A ``.ckpt`` as Lightning 2.x writes it: a torch zip of ``dump_checkpoint``'s dict,
    its ModelCheckpoint state under ``callbacks`` (scores are one-element tensors)."""
    keys = iter(str(n) for n in range(100))

    def score(value: float) -> fmt.TensorRef:
        return fmt.TensorRef(next(keys), fmt.Tensor.of((), [value]))

    weight = fmt.TensorRef(next(keys), fmt.Tensor.of((2, 2), [0.1, 0.2, 0.3, 0.4]))
    state: dict[str, object] = {
        "monitor": monitor,
        "best_model_score": score(0.25),
        "best_model_path": best,
        "current_score": score(0.5),
        "dirpath": dirpath,
        "best_k_models": {path: score(0.25 + n / 4) for n, path in enumerate(top_k)},
        "kth_best_model_path": top_k[-1] if top_k else "",
        "kth_value": score(0.5),
        "last_model_path": last,
    }
    checkpoint = {
        "epoch": 7,
        "global_step": 16,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": fmt.OrderedDictOf({"layer.weight": weight}),
        "loops": {"fit_loop": {"state_dict": {}}},
        "callbacks": {callback_key: state},
        "optimizer_states": [],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 0.1, "notes": padding},
    }
    return fmt.torch_zip(checkpoint, serialization_id="0" * 19)


def lightning_run(root: Path, run: str = "lightning_logs/version_1", **state: Any) -> Path:
    """A run's ``checkpoints/``: three top-k-named files and ``last.ckpt``, older first."""
    folder = root / run / "checkpoints"
    for age, name in zip((400, 300, 200), NAMES, strict=True):
        write(folder / name, lightning_state(**state), age=age)
    write(folder / "last.ckpt", lightning_state(**state), age=100)
    write(root / run / "metrics.csv", b"epoch,step,val_loss\n", age=100)
    return folder


def plan_of(tmp_path: Path, root: Path, runs: dict[str, tuple[str, str]], **flags: Any) -> Any:
    db = new_db(tmp_path)
    index_tree(db, root, runs)
    try:
        return make_plan(db, [root], from_flags(**flags), time.time())
    finally:
        db.conn.close()


def kept(plan: Any) -> dict[str, list[str]]:
    return {item.name: item.reasons for item in plan.items if item.keep}


LIGHTNING = {"lightning_logs/version_1": ("lightning", "finished")}


def test_keep_last_keeps_the_monitored_best_of_real_lightning_output(tmp_path: Path) -> None:
    """Lightning 2.6.6's own files: ``best_model_path`` is ``./lightning_logs/...``."""
    root = tmp_path / "root"
    shutil.copytree(FIXTURES, root)
    runs = {f"lightning_logs/version_{v}": ("lightning", "finished") for v in range(3)}
    plan = plan_of(tmp_path, root, runs, keep_last=1)
    assert {item.path for item in plan.items if item.keep} == {
        f"lightning_logs/version_{v}/checkpoints/{name}"
        for v, best in ((0, "epoch3-val0.0592"), (1, "epoch3-val0.0829"), (2, "epoch3-val0.1993"))
        for name in ("last.ckpt", f"{best}.ckpt")
    }
    reasons = {item.path: item.reasons for item in plan.items}
    assert reasons["lightning_logs/version_0/checkpoints/epoch3-val0.0592.ckpt"] == [REASON]
    assert reasons["lightning_logs/version_0/checkpoints/last.ckpt"] == ["latest 1"]
    assert plan.warnings == []


def test_keep_last_keeps_the_best_the_state_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lightning_run(root)
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {BEST: [REASON], "last.ckpt": ["latest 1"]}
    # top-k alone is no reason: ModelCheckpoint(save_top_k=-1) lists every file it wrote
    assert [item.name for item in plan.removals] == ["epoch=3-step=8.ckpt", "epoch=7-step=16.ckpt"]


def test_the_reason_is_printed_and_in_json(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root = tmp_path / "root"
    lightning_run(root)
    db = tmp_path / "cli.db"
    runner = CliRunner()
    done = runner.invoke(main, ["index", str(root), "--db", str(db)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    args = ["retention", "plan", "--keep-last", "1", "--db", str(db)]
    printed = runner.invoke(main, args, catch_exceptions=False)
    assert printed.exit_code == 0, printed.output
    line = next(line for line in printed.stdout.splitlines() if BEST in line)
    assert line.split()[0] == "keep" and line.endswith(REASON)
    listed = json.loads(runner.invoke(main, [*args, "--json"], catch_exceptions=False).stdout)
    reasons = {item["path"].rsplit("/", 1)[-1]: item["reasons"] for item in listed["items"]}
    assert reasons[BEST] == [REASON]


def test_a_subclass_of_model_checkpoint_is_read_by_its_state(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lightning_run(root, callback_key="BestOnly{'monitor': 'val_loss', 'mode': 'min'}")
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {BEST: [REASON], "last.ckpt": ["latest 1"]}


def test_a_moved_run_keeps_its_best(tmp_path: Path) -> None:
    """The run was copied from the training machine to another folder and name: its best
    is found by its name in the folder the state file lies in."""
    root = tmp_path / "root"
    lightning_run(root, "archive/2024/baseline")
    runs = {"archive/2024/baseline": ("lightning", "finished")}
    plan = plan_of(tmp_path, root, runs, keep_last=1)
    assert kept(plan) == {BEST: [REASON], "last.ckpt": ["latest 1"]}


def test_a_run_the_policy_keeps_whole_reads_no_state(tmp_path: Path) -> None:
    """Nothing to protect, nothing read: keep-last 4 keeps all four (and no policy all)."""
    root = tmp_path / "root"
    lightning_run(root)
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=4)
    assert set(kept(plan)) == {*NAMES, "last.ckpt"}
    assert kept(plan)[BEST] == ["latest 4"]
    plan = plan_of(tmp_path / "again", root, LIGHTNING, keep_last=3)
    assert kept(plan)[BEST] == ["latest 3", REASON]


def test_the_highest_step_is_read_without_last_ckpt(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = lightning_run(root, last="")
    (folder / "last.ckpt").unlink()
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {BEST: [REASON], "epoch=7-step=16.ckpt": ["latest 1"]}


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not a zip at all",
        b"PK\x03\x04" + b"\0" * 200,  # a zip's magic, nothing after it
        "truncated",
        "no data.pkl",
        "dangerous",
        "not a dict",
    ],
)
def test_an_unreadable_last_ckpt_plans_as_before(tmp_path: Path, garbage: bytes | str) -> None:
    root = tmp_path / "root"
    folder = lightning_run(root)
    good = lightning_state()
    if garbage == "truncated":
        data = good[: len(good) // 2]
    elif garbage == "no data.pkl":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("archive/other.pkl", b"\x80\x02}.")
        data = buffer.getvalue()
    elif garbage == "dangerous":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("archive/data.pkl", fmt.dangerous_pickle("true"))
        data = buffer.getvalue()
    elif garbage == "not a dict":
        data = fmt.torch_zip([f"{TRAINED_AT}/{BEST}"], serialization_id="0" * 19)
    else:
        assert isinstance(garbage, bytes)
        data = garbage
    write(folder / "last.ckpt", data, age=100)
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {"last.ckpt": ["latest 1"]}
    assert plan.warnings == []


@pytest.mark.parametrize(
    "state",
    [
        # a best outside the folder the state was saved to: another run's, or another disk
        {"best": f"/scratch/other/checkpoints/{BEST}"},
        # resumed into a new dirpath: Lightning reloads the old best_model_path as it was
        {
            "best": f"/home/ada/proj/lightning_logs/version_0/checkpoints/{BEST}",
            "top_k": (f"{TRAINED_AT}/epoch=7-step=16.ckpt",),
        },
        # nothing in the state names the file it was read from: its folder is unproven
        {"last": "", "top_k": ()},
        # no monitor: best_model_path is only the newest save
        {"monitor": None},
        # a best of no file beside it
        {"best": f"{TRAINED_AT}/epoch=4-step=10.ckpt"},
        {"best": f"{TRAINED_AT}/../checkpoints/{BEST}"},
        {"best": ""},
    ],
)
def test_a_best_the_run_cannot_be_shown_to_hold_protects_nothing(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    root = tmp_path / "root"
    lightning_run(root, **state)
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {"last.ckpt": ["latest 1"]}


def test_a_path_the_reader_cuts_short_names_nothing(tmp_path: Path) -> None:
    """Strings past 1000 characters are cut: this best's first 1000 are the path of
    another file beside it (whose name is the head of the best's)."""
    trained_at = "/" + "d" * (1000 - len(BEST) - len("/checkpoints") - 2) + "/checkpoints"
    best = f"{trained_at}/{BEST}"
    assert len(best) == 1000
    root = tmp_path / "root"
    lightning_run(
        root,
        best=best + "-v1.ckpt",
        dirpath=trained_at,
        top_k=(best + "-v1.ckpt",),
        last=f"{trained_at}/last.ckpt",
    )
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {"last.ckpt": ["latest 1"]}


def test_a_state_too_large_to_read_quickly_is_not_read(tmp_path: Path) -> None:
    """Weights are never read; a ``data.pkl`` over the cap is not read either."""
    root = tmp_path / "root"
    lightning_run(root, padding="x" * (candidates.MAX_STATE_PICKLE_BYTES + 1))
    plan = plan_of(tmp_path, root, LIGHTNING, keep_last=1)
    assert kept(plan) == {"last.ckpt": ["latest 1"]}


def test_one_state_file_is_read_per_run(tmp_path: Path) -> None:
    """Only the newest checkpoint is read: an older one naming another best is not."""
    root = tmp_path / "root"
    folder = lightning_run(root)
    write(
        folder / NAMES[0],
        lightning_state(best=f"{TRAINED_AT}/{NAMES[0]}", top_k=(f"{TRAINED_AT}/{NAMES[0]}",)),
        age=400,
    )
    db = new_db(tmp_path)
    root_id = index_tree(db, root, LIGHTNING)
    (units,) = candidates_for_root(db, root_id, str(root)).values()
    assert [u.name for u in units if u.trainer_best] == [BEST]
    db.conn.close()


def test_runs_past_the_time_budget_are_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    runs = {}
    for n in range(3):
        lightning_run(root, f"lightning_logs/version_{n}")
        runs[f"lightning_logs/version_{n}"] = ("lightning", "finished")
    monkeypatch.setattr(candidates, "STATE_SECONDS", 0.0)
    plan = plan_of(tmp_path, root, runs, keep_last=1)
    assert [item.name for item in plan.items if item.keep] == ["last.ckpt"] * 3
    (warning,) = plan.warnings
    assert "state of 3 Lightning run(s) was not read" in warning
