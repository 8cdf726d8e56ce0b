"""A TensorBoard run restarted from a checkpoint logs again from an earlier step: what the
dead session logged from that step on is orphaned, and TensorBoard drops it (its
``EventAccumulator``'s purge: a ``SessionLog.START`` at step S drops every point read
before at steps >= S; a tag going back drops its own points at or after the step).

A crashed session wrote steps 0..1000 into one event file; the resumed one (from the
checkpoint at 600) wrote 600..900 into a new file beside it.  Both were merged and sorted
by step, so the run's ``loss`` was last at step 1000, the dead session's, with its best
and 16 points where the surviving run has 10.

Event files are written here byte by byte (TFRecord frames of ``Event`` protobufs), with
a CRC of their own, as torch's ``SummaryWriter`` writes them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from store.demo._formats import _length_delimited, _varint, tfrecord
from store.frameworks.tfevents import read_scalars, read_scalars_dir
from tests.test_frameworks_cut_logs import only_run, said

pytestmark = pytest.mark.usefixtures("isolated_cache")
T0 = 1_700_000_000.0


def _event(wall: float, step: int, body: bytes) -> bytes:
    return tfrecord(b"\x09" + struct.pack("<d", wall) + b"\x10" + _varint(step) + body)


def version(wall: float) -> bytes:
    return _event(wall, 0, _length_delimited(3, b"brain.Event:2"))


def start(wall: float, step: int) -> bytes:
    """``SessionLog(status=START)`` at ``step``: what ``SummaryWriter(purge_step=step)``
    writes first."""
    return _event(wall, step, _length_delimited(7, b"\x08\x01"))


def scalar(wall: float, step: int, tag: str, value: float) -> bytes:
    entry = _length_delimited(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
    return _event(wall, step, _length_delimited(5, _length_delimited(1, entry)))


def loss_at(step: int, session: int) -> float:
    """The dead session's loss falls lower (its best is at 1000, the surviving run's at
    500); the resumed one's differs at every step, so a value says which session it came
    from."""
    return 1.0 / (step + 10) if session == 0 else 2.0 / (step + 10)


def session(wall: float, steps: Iterable[int], session_no: int, tag: str = "loss") -> list[bytes]:
    return [scalar(wall + step, step, tag, loss_at(step, session_no)) for step in steps]


def write(folder: Path, name: str, records: Iterable[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"events.out.tfevents.{name}").write_bytes(b"".join(records))


def metric(run: dict[str, Any], name: str = "loss") -> tuple[Any, ...]:
    got = run["metrics"][name]
    return (got["last_step"], got["last"], got["n"], got["best_step"])


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


RESUMED = 10  # steps 0..500 of the dead session, 600..900 of the resumed one


def test_a_resumed_run_in_a_new_file_drops_the_dead_sessions_later_steps(
    tmp_path: Path,
) -> None:
    """torch's SummaryWriter (file_version 2) writes no START unless told: the step going
    back is the restart; the dead session's 600..1000 are gone from last, best and n."""
    logs = tmp_path / "root" / "tb" / "run1"
    write(logs, f"{int(T0)}.host.100.0", [version(T0), *session(T0, range(0, 1001, 100), 0)])
    later = T0 + 5000
    alive = [version(later), *session(later, range(600, 901, 100), 1)]
    write(logs, f"{int(later)}.host.200.0", alive)
    run = only_run(tmp_path / "root")
    assert metric(run) == (900, f32(loss_at(900, 1)), RESUMED, 500), run
    assert run["metrics_complete"] is True, run["warnings"]
    assert said(run, "restarted from step 600 (its steps going back)"), run["warnings"]


def test_a_session_start_drops_every_tags_later_steps(tmp_path: Path) -> None:
    """``SummaryWriter(purge_step=600)``: a START at 600 drops the dead session's points at
    600 and later of every tag, also those the new session has not logged again yet."""
    logs = tmp_path / "root" / "tb" / "run1"
    dead = [version(T0), *session(T0, range(0, 1001, 100), 0)]
    dead += session(T0, (300, 700), 0, "val_loss")
    write(logs, f"{int(T0)}.host.100.0", dead)
    later = T0 + 5000
    alive = [version(later), start(later, 600), *session(later, range(600, 901, 100), 1)]
    write(logs, f"{int(later)}.host.200.0", alive)
    run = only_run(tmp_path / "root")
    assert metric(run) == (900, f32(loss_at(900, 1)), RESUMED, 500), run
    assert metric(run, "val_loss") == (300, f32(loss_at(300, 0)), 1, 300), run
    assert run["metrics_complete"] is True, run["warnings"]
    assert said(run, "restarted from step 600 (at a SessionLog START)"), run["warnings"]


def test_a_run_rolled_back_in_its_own_file_drops_the_rolled_back_steps(tmp_path: Path) -> None:
    """A trainer that reloads a checkpoint in the same process (a loss spike) logs on into
    the same file from the earlier step."""
    logs = tmp_path / "root" / "tb" / "run1"
    records = [version(T0), *session(T0, range(0, 1001, 100), 0)]
    records += session(T0 + 5000, range(600, 901, 100), 1)
    write(logs, f"{int(T0)}.host.100.0", records)
    run = only_run(tmp_path / "root")
    assert metric(run) == (900, f32(loss_at(900, 1)), RESUMED, 500), run
    assert run["metrics_complete"] is True, run["warnings"]


def test_two_restarts_keep_each_sessions_surviving_steps(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    write(folder, "1.host", [version(T0), *session(T0, range(0, 11), 0)])
    write(folder, "2.host", [version(T0 + 100), *session(T0 + 100, range(6, 10), 1)])
    write(folder, "3.host", [version(T0 + 200), *session(T0 + 200, range(8, 13), 0)])
    read = read_scalars_dir(folder)
    assert [step for step, _, _ in read["loss"]] == list(range(13))
    assert [wall for _, wall, _ in read["loss"]][6:] == [
        T0 + 100 + 6,
        T0 + 100 + 7,
        *(T0 + 200 + step for step in range(8, 13)),
    ]
    assert not read.unread


def test_files_named_out_of_order_are_played_in_the_order_they_were_written(
    tmp_path: Path,
) -> None:
    """The dead session's file sorts after the resumed one's by name (another host, a
    copy): the wall times, not the names, say which came first."""
    folder = tmp_path / "run"
    write(folder, "9.host", [version(T0), *session(T0, range(0, 11), 0)])
    write(folder, "1.host", [version(T0 + 100), *session(T0 + 100, range(6, 10), 1)])
    read = read_scalars_dir(folder)
    assert [step for step, _, _ in read["loss"]] == list(range(10))
    assert read["loss"][-1][2] == f32(loss_at(9, 1))
    assert not read.unread


def test_two_writers_at_once_are_kept_whole_and_said(tmp_path: Path) -> None:
    """Two processes logging the same tag into one folder at the same time (two ranks):
    a step going back is not a restart there, and which is current cannot be told; the
    run says its metrics are not whole rather than pick one."""
    logs = tmp_path / "root" / "tb" / "run1"
    write(logs, f"{int(T0)}.host.100.0", [version(T0), *session(T0, range(0, 11), 0)])
    write(logs, f"{int(T0)}.host.101.0", [version(T0 + 0.5), *session(T0 + 0.5, range(0, 11), 1)])
    run = only_run(tmp_path / "root")
    assert run["metrics"]["loss"]["n"] == 22, run
    assert run["metrics"]["loss"]["last_step"] == 10, run
    assert run["metrics_complete"] is False, run["warnings"]
    assert said(run, "which points are current cannot be told"), run["warnings"]


def test_a_restart_in_one_file_read_alone(tmp_path: Path) -> None:
    """``read_scalars`` (one file) drops the same way, a START included."""
    path = tmp_path / "events.out.tfevents.1.host"
    records = [version(T0), *session(T0, range(0, 11), 0), *session(T0, range(0, 11), 0, "lr")]
    records += [start(T0 + 100, 4), *session(T0 + 100, range(4, 7), 1)]
    path.write_bytes(b"".join(records))
    read = read_scalars(path)
    assert [step for step, _, _ in read["loss"]] == list(range(7))
    assert [step for step, _, _ in read["lr"]] == list(range(4))
    assert not read.unread


def test_many_restarts_and_tags_are_read_in_one_pass(tmp_path: Path) -> None:
    """A file of alternating points and STARTs over many tags (hostile, or a crash loop):
    each START finds only the tags it cuts; the answer is the last session's."""
    path = tmp_path / "events.out.tfevents.1.host"
    records = [version(T0)]
    records += [scalar(T0, 0, f"tag{n}", 1.0) for n in range(2000)]
    for n in range(3000):
        records += [scalar(T0 + n, 5, "loss", float(n)), start(T0 + n + 0.5, 5)]
    records.append(scalar(T0 + 4000, 5, "loss", -1.0))
    path.write_bytes(b"".join(records))
    read = read_scalars(path)
    assert read["loss"] == [(5, T0 + 4000, -1.0)]
    assert len(read) == 2001


def test_a_resumed_hf_trainer_run_drops_the_dead_sessions_logged_steps(tmp_path: Path) -> None:
    """The Trainer logs each start into ``runs/<%b%d_%H-%M-%S>_<host>/``: the dead session
    (Nov30) logged to step 1000 after its last save at 600, the resumed one (Dec01, which
    sorts first) to 900 with no save since.  What trainer_state.json misses comes from the
    events: the resumed session's 700..900, not the dead one's 700..1000."""
    out = tmp_path / "root" / "out"
    history = [{"step": s, "loss": loss_at(s, 0)} for s in range(100, 601, 100)]
    state = {"global_step": 600, "max_steps": 2000, "log_history": history}
    (out / "checkpoint-600").mkdir(parents=True)
    (out / "checkpoint-600" / "trainer_state.json").write_text(json.dumps(state))
    (out / "checkpoint-600" / "training_args.bin").write_bytes(b"\x80\x04N.")
    dead = out / "runs" / "Nov30_10-00-00_host"
    alive = out / "runs" / "Dec01_10-00-00_host"
    write(dead, f"{int(T0)}.host.1.0", [version(T0), *session(T0, range(100, 1001, 100), 0)])
    later = T0 + 86_400
    write(
        alive, f"{int(later)}.host.2.0", [version(later), *session(later, range(700, 1000, 100), 1)]
    )
    run = only_run(tmp_path / "root")
    assert metric(run) == (900, f32(loss_at(900, 1)), 9, 600), run
    assert run["metrics_complete"] is True, run["warnings"]
