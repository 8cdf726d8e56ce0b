"""The index's read side on hostile references."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.errors import ArtlensError
from store.index import query
from store.index.db import open_db
from store.scan import Indexer


def test_a_run_reference_of_superscript_digits_is_no_run_not_a_traceback(tmp_path: Path) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: ``artlens show ²`` must answer
    with the one-line "no run matches", like any other unknown name."""
    run = tmp_path / "root" / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n")
    db = open_db(tmp_path / "index.db")
    try:
        Indexer(db, tmp_path / "root").scan()
        with pytest.raises(ArtlensError, match="no run matches"):
            query.resolve_run(db, "²")
        (run_id,) = [r[0] for r in db.execute("SELECT id FROM runs")]
        assert query.resolve_run(db, str(run_id)).name == "version_0"
    finally:
        db.close()


def test_a_reader_opens_an_index_whose_folder_name_looks_like_a_uri(tmp_path: Path) -> None:
    """Readers open the index by a ``file:`` URI: a ``?``, ``#`` or ``%`` in a folder's name
    cut the path short (another file, or none) unless quoted."""
    folder = tmp_path / "runs #1? 100%41"
    writer = open_db(folder / "index.db")
    writer.execute("INSERT INTO roots (path, display, added_at) VALUES (?, 'x', 0)", [b"/x"])
    writer.close()
    reader = open_db(folder / "index.db", readonly=True)
    try:
        assert [tuple(r) for r in reader.execute("SELECT path FROM roots")] == [(b"/x",)]
    finally:
        reader.close()
