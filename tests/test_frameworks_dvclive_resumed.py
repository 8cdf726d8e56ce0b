"""DVCLive's ``Live(resume=True)`` appends to ``plots/metrics/*.tsv`` (no header again) from
the step after the last one it logged; a training that reloads an older checkpoint and sets
``live.step`` back appends rows over steps the dead session logged.  Nothing in the file
tells which rows are current: all are kept (last stays the highest step's, as before), and
the metrics are marked read in part, with the file and line said."""

from __future__ import annotations

from pathlib import Path

from store.frameworks import read_run
from store.frameworks.model import UNREAD_PARTS
from tests.test_frameworks import only, warnings_of, write


def tsv(rows: list[tuple[int, float]]) -> str:
    return "".join(f"{1700000000 + i}\t{step}\t{value}\n" for i, (step, value) in enumerate(rows))


def test_a_dvclive_step_set_back_on_resume_is_doubt(tmp_path: Path) -> None:
    dead = [(0, 1.0), (1, 0.6), (2, 0.1), (3, 0.05)]
    resumed = [(2, 0.5), (3, 0.45), (4, 0.4)]  # reloaded the step-1 checkpoint
    write(
        tmp_path,
        {
            "proj/dvclive/metrics.json": '{"loss": 0.4, "step": 4}',
            "proj/dvclive/params.yaml": "lr: 0.01\n",
            "proj/dvclive/plots/metrics/loss.tsv": "timestamp\tstep\tloss\n" + tsv(dead + resumed),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "dvclive"))
    loss = info.metrics["loss"]
    assert (loss.last_step, loss.last, loss.n) == (4, 0.4, 7)
    assert info.meta[UNREAD_PARTS] == ["metrics"]
    said = [w for w in warnings_of(info) if "loss.tsv" in w]
    assert len(said) == 1 and "line 6" in said[0] and "from 3 to 2" in said[0], said


def test_a_dvclive_resume_that_continues_is_whole(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "proj/dvclive/metrics.json": '{"loss": 0.4, "step": 4}',
            "proj/dvclive/plots/metrics/loss.tsv": "timestamp\tstep\tloss\n"
            + tsv([(0, 1.0), (1, 0.6), (1, 0.55), (2, 0.5), (3, 0.4)]),
        },
    )
    info = read_run(tmp_path, only(tmp_path, "dvclive"))
    assert UNREAD_PARTS not in info.meta
    assert warnings_of(info) == []
