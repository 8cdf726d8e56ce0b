"""Two runs that shoot the UI from the same fixed folder take turns instead of emptying it."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.fixedfolder import fixed_folder


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    entered = threading.Event()

    def second() -> None:
        with fixed_folder(tmp_path / "shots"):
            entered.set()

    with fixed_folder(tmp_path / "shots") as base:
        (base / "picture.svg").write_text("<svg/>")
        thread = threading.Thread(target=second, daemon=True)
        thread.start()
        assert not entered.wait(0.5)  # blocked on the lock, not emptying the folder
        assert (base / "picture.svg").read_text() == "<svg/>"
    assert entered.wait(60)
    thread.join(60)
    assert not (tmp_path / "shots" / "picture.svg").exists()  # emptied once it was its turn
