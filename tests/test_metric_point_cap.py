"""A metric with more points than a run keeps (``MAX_POINTS``): the newest logged stays its
last, and the run says its metrics were read in part; before, the points past the cap were
dropped without a word and "last" was the millionth point's value."""

from __future__ import annotations

from pathlib import Path

from store.frameworks import RunSpec, read_run
from store.frameworks.model import UNREAD_PARTS

RUN = "0b6ca591f9e7449b9352c36b6a7e4d44"
MAX_POINTS = 1_000_000  # store.frameworks._metrics.MAX_POINTS


def test_points_past_the_cap_keep_the_newest_as_last_and_say_so(tmp_path: Path) -> None:
    run = tmp_path / "mlruns" / "1" / RUN
    (run / "metrics").mkdir(parents=True)
    (tmp_path / "mlruns" / "1" / "meta.yaml").write_text("experiment_id: '1'\nname: e\n")
    (run / "meta.yaml").write_text(f"run_id: {RUN}\nrun_name: long\nstatus: 3\n")
    total = MAX_POINTS + 5
    with (run / "metrics" / "loss").open("w") as out:
        out.writelines(f"{1000 + i} 0.5 {i}\n" for i in range(total - 1))
        out.write(f"{1000 + total} 0.125 {total - 1}\n")
    (run / "metrics" / "acc").write_text("1000 0.5 0\n1001 0.75 1\n")
    info = read_run(tmp_path, RunSpec(f"mlruns/1/{RUN}", "mlflow", "long", "e", run_key=RUN))
    loss = info.metrics["loss"]
    assert (loss.last, loss.last_step) == (0.125, total - 1)
    assert info.meta[UNREAD_PARTS] == ["metrics"]
    warnings = info.meta["warnings"]
    assert isinstance(warnings, list)
    assert [w for w in warnings if "metric loss: more than 1,000,000 points" in str(w)]
    assert info.metrics["acc"].last == 0.75 and info.metrics["acc"].n == 2
