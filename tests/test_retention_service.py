"""The retention use-cases (``store.retention.service``) on real Lightning output and a real
index: what the CLI and the retention view both call."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.index.db import open_db
from store.lock import WriterBusyError, WriterLock
from store.retention import service
from store.retention.policy import PolicyError, from_flags
from store.retention.trash import TRASH_DIR, TrashRefused

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
EPOCH2 = "lightning_logs/version_0/checkpoints/epoch2-val0.0854.ckpt"


@pytest.fixture
def lightning(lightning_index: tuple[Path, Path]) -> tuple[Path, Path]:
    return lightning_index


def test_broken_policy_is_an_error_line_or_raises_when_strict(
    lightning: tuple[Path, Path],
) -> None:
    root, db_path = lightning
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 'many'\n")
    db = open_db(db_path, readonly=True)
    try:
        planned = service.make(db)
        assert len(planned.errors) == 1 and ".artlens.toml" in planned.errors[0]
        assert planned.policies[str(root)].source == service.INVALID_POLICY
        assert all(item.keep for item in planned.plan.items)  # a broken file keeps everything
        usage, _dups = service.usage(db)
        assert usage and usage[0].root == str(root)
        assert planned.to_json()["roots"][0]["has_rules"] is False
        with pytest.raises(PolicyError):
            service.make(db, [str(root)], strict=True)
    finally:
        db.close()


def test_pin_keeps_and_apply_falls_back_to_files_only_beside_a_writer(
    lightning: tuple[Path, Path],
) -> None:
    root, db_path = lightning
    adhoc = from_flags(keep_last=1)
    assert service.toggle_pin(str(root), EPOCH2) == (
        f"pinned {EPOCH2}: retention keeps it",
        True,
    )
    db = open_db(db_path, readonly=True)
    try:
        planned = service.make(db, adhoc=adhoc)
    finally:
        db.close()
    by_path = {item.path: item for item in planned.plan.items}
    assert by_path[EPOCH2].keep and "pinned" in "; ".join(by_path[EPOCH2].reasons)
    removals = planned.plan.removals
    assert removals
    busy: list[WriterBusyError] = []
    with WriterLock(db_path, role="watch"):
        done = service.apply(planned.plan, db_path, role="test", on_busy=busy.append)
    assert len(busy) == 1 and not done.index_updated
    assert {i.path for i in done.report.done} == {i.path for i in removals}
    assert not (root / removals[0].path).exists()
    assert (root / TRASH_DIR).is_dir()
    back = service.restore_items(db_path, {str(root): "all"}, role="test")
    assert back.index_updated and len(back.report.done) == len(removals)
    assert (root / removals[0].path).exists()
    assert service.unpin(str(root), EPOCH2) is True
    assert service.pin_entries([str(root)]) == []


def test_trash_listing_of_an_unsafe_trash_is_a_problem_line_or_refused(
    lightning: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = lightning
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / TRASH_DIR).symlink_to(elsewhere)
    trashes = service.read_trashes([str(root)], audit=True)
    assert trashes.entries == () and len(trashes.problems) == 1
    assert trashes.problems[0].startswith(f"{root}: ") and "\n" not in trashes.problems[0]
    with pytest.raises(TrashRefused):
        service.read_trashes([str(root)], refuse=True)
