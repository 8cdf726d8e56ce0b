"""Runs recognised by what their files are, wherever they were copied and renamed to.

The runs are the libraries' own output (``tests/fixtures/frameworks``), copied the way
people move results around: under a custom experiment and run folder, or an output dir
under another name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from store.frameworks import RunSpec, detect_runs, read_run
from tests.test_frameworks import listing_of, warnings_of, write
from tests.test_rundiff import age, index
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
LIGHTNING = FIXTURES / "lightning" / "lightning_logs"
HF_OUT = FIXTURES / "hf-trainer" / "out"

pytestmark = pytest.mark.skipif(not LIGHTNING.exists(), reason="real fixtures not generated")


def runs_of(root: Path) -> dict[str, RunSpec]:
    return {spec.path: spec for spec in detect_runs(root, listing_of(root))}


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)


def test_lightning_runs_under_custom_folders(tmp_path: Path) -> None:
    copy_tree(LIGHTNING / "version_0", tmp_path / "resnet_sweep" / "lr_0.1")
    copy_tree(LIGHTNING / "version_2", tmp_path / "resnet_sweep" / "tb run")
    runs = runs_of(tmp_path)
    assert set(runs) == {"resnet_sweep/lr_0.1", "resnet_sweep/tb run"}
    csv_run = runs["resnet_sweep/lr_0.1"]
    assert (csv_run.framework, csv_run.name, csv_run.experiment) == (
        "lightning",
        "lr_0.1",
        "resnet_sweep",
    )
    info = read_run(tmp_path, csv_run)
    assert info.params == {"lr": 0.1, "name": "tiny", "shape": [4, 2]}
    assert info.metrics["val_loss"].last == pytest.approx(0.05919954180717468)
    assert warnings_of(info) == []
    tb_run = runs["resnet_sweep/tb run"]
    assert tb_run.framework == "lightning"
    tb_info = read_run(tmp_path, tb_run)
    assert tb_info.params["lr"] == pytest.approx(0.0333333333)
    assert tb_info.metrics["val_loss"].last == pytest.approx(0.1992603987455368)


def test_csv_and_events_disagree_csv_wins_with_a_warning(tmp_path: Path) -> None:
    run = tmp_path / "exp" / "mine"
    copy_tree(LIGHTNING / "version_2", run)
    # the CSVLogger's file of the same run, one value edited after the fact
    write(
        run,
        {
            "metrics.csv": (
                "epoch,step,train_loss,val_loss\n"
                "0,1,0.601672887802124,\n0,1,,0.3385887145996094\n"
                "3,7,0.3579278290271759,\n3,7,,0.25\n"
            )
        },
    )
    spec = runs_of(tmp_path)["exp/mine"]
    assert spec.framework == "lightning"
    info = read_run(tmp_path, spec)
    assert info.metrics["val_loss"].last == 0.25
    warnings = warnings_of(info)
    assert len(warnings) == 1, warnings
    assert "val_loss" in warnings[0] and "metrics.csv" in warnings[0]
    assert "event files" in warnings[0] and "0.19926" in warnings[0]
    assert "epoch" not in info.metrics and "hp_metric" not in info.metrics


def test_hf_trainer_output_dir_under_another_name(tmp_path: Path) -> None:
    copy_tree(HF_OUT, tmp_path / "finetunes" / "bert-lr3e-5")
    runs = runs_of(tmp_path)
    assert set(runs) == {"finetunes/bert-lr3e-5"}
    spec = runs["finetunes/bert-lr3e-5"]
    assert (spec.framework, spec.name, spec.experiment) == (
        "hf-trainer",
        "bert-lr3e-5",
        "finetunes",
    )
    info = read_run(tmp_path, spec)
    assert info.params["trainer.train_batch_size"] == 4
    assert info.metrics["eval_loss"].last_step == 6
    assert warnings_of(info) == []


def test_hparams_alone_is_not_a_lightning_run(tmp_path: Path) -> None:
    write(tmp_path, {"proj/a/hparams.yaml": "lr: 1\n", "proj/a/model.pt": "x"})
    assert {s.framework for s in runs_of(tmp_path).values()} == {"generic"}


WANDB = FIXTURES / "wandb" / "wandb"


def test_wandb_run_folder_renamed_keeps_its_id_and_project(tmp_path: Path) -> None:
    from store.index import query
    from store.index.db import open_db

    src = next(p for p in sorted(WANDB.iterdir()) if p.name.startswith("offline-run-"))
    run_id = src.name.rsplit("-", 1)[1]
    copy_tree(src, tmp_path / "root" / "keep" / "best-run")
    runs = runs_of(tmp_path / "root")
    spec = runs["keep/best-run"]
    assert (spec.framework, spec.run_key) == ("wandb", run_id)
    age(tmp_path / "root")
    index(tmp_path / "root", tmp_path / "index.db", hash_files=False)
    db = open_db(tmp_path / "index.db", readonly=True)
    try:
        (row,) = query.list_runs(db)
    finally:
        db.conn.close()
    assert row.framework == "wandb"
    assert row.experiment == "artlens-fixtures"  # the project in the run record


MLFLOW = FIXTURES / "mlflow-file"


@pytest.mark.skipif(not MLFLOW.exists(), reason="real fixtures not generated")
@sync
async def test_mlflow_logged_model_is_part_of_its_run_in_the_tree(tmp_path: Path) -> None:
    """MLflow 3 keeps a logged model in ``<experiment>/models/m-<id>/``, outside the run's
    folder: the explorer's tree shows it under its run, labelled with where it lives."""
    root = tmp_path / "root"
    copy_tree(MLFLOW, root)
    age(root)
    index(root, tmp_path / "index.db", hash_files=False)
    app = ArtlensApp(tmp_path / "index.db", [root], watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        run = next(r for r in screen.runs.values() if r.name == "run-0")
        screen.jump_to_run(run.id)
        await settle(pilot)
        tree = screen.file_tree
        outside = [c for c in tree.root.children if c.data is not None and c.data.outside]
        assert len(outside) == 1
        label = str(outside[0].label)
        model = "m-cae920a0d59746a18e862a712a69bcf6"
        assert f"logged model {model}/" in label
        assert label.endswith(f"in mlruns/989847461378923471/models/{model}")
        assert tree.root.children[-1] is outside[0]  # after the run's own files
        outside[0].expand()
        await settle(pilot)
        names = [str(c.label).split()[0] for c in outside[0].children]
        assert names == ["artifacts/", "metrics/", "params/", "tags/", "meta.yaml"]


def test_disagreement_warning_in_runs_json_run_diff_and_run_detail(tmp_path: Path) -> None:
    """The warning naming both sources reaches every place a person looks."""
    from click.testing import CliRunner
    from rich.console import Console

    from store.index import query
    from store.index.db import open_db
    from store.rundiff import diff_run_rows
    from tui.cli import main
    from tui.widgets.run_detail import load_run_detail, run_detail_sections

    root = tmp_path / "root"
    copy_tree(LIGHTNING / "version_2", root / "exp" / "edited")
    copy_tree(LIGHTNING / "version_2", root / "exp" / "plain")
    write(
        root / "exp" / "edited",
        {"metrics.csv": "epoch,step,val_loss\n3,7,0.25\n"},
    )
    age(root)
    db_path = tmp_path / "index.db"
    index(root, db_path, hash_files=False)
    out = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert out.exit_code == 0, out.output
    listed = {r["name"]: r for r in json.loads(out.stdout)}
    (warning,) = listed["edited"]["warnings"]
    assert "metrics.csv" in warning and "event files" in warning
    assert listed["plain"]["warnings"] == []
    db = open_db(db_path, readonly=True)
    try:
        runs = {r.name: r for r in query.list_runs(db)}
        notes: list[str] = []
        diff_run_rows(db, runs["plain"], runs["edited"], notes)
        detail = load_run_detail(db, runs["edited"], note=None, pinned=False)
    finally:
        db.conn.close()
    assert f"edited: {warning}" in notes
    console = Console(width=200, record=True)
    for section in run_detail_sections(detail, 0.0):
        console.print(section)
    shown = console.export_text()
    assert "warnings" in shown and "in metrics.csv but" in shown


def test_trainer_state_wins_over_event_files_with_a_warning(tmp_path: Path) -> None:
    copy_tree(HF_OUT, tmp_path / "out")
    state_file = tmp_path / "out" / "checkpoint-6" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    last_eval = [e for e in state["log_history"] if "eval_loss" in e][-1]
    assert last_eval["step"] == 6
    last_eval["eval_loss"] = 0.5
    state_file.write_text(json.dumps(state))
    spec = runs_of(tmp_path)["out"]
    info = read_run(tmp_path, spec)
    assert info.metrics["eval_loss"].last == 0.5
    (warning,) = warnings_of(info)
    assert "eval_loss at step 6 is 0.5 in trainer_state.json but 0.693798" in warning
    assert "event files" in warning
