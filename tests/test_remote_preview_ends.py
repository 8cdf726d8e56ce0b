"""Previews of a remote host's large files: fetched as their two ends, which must be
the file's ends on the host now, not where the mirror's size says they were."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.remote.config import Remote
from tests.test_checklist import FIXTURES, index_tree
from tests.test_remote import make_host
from tests.test_remote_explorer import FOLLOW, flaky_command, open_remote_file, screen_of, until
from tests.test_tui import sync
from tui.app import ArtlensApp


@pytest.fixture(autouse=True)
def isolated(isolated_cache: Path) -> Iterator[None]:
    yield


@sync
async def test_a_large_remote_file_that_grew_since_the_pull_does_not_show_its_old_end(
    tmp_path: Path,
) -> None:
    """A remote file over the whole-fetch size is previewed from its two ends; its last
    bytes are read at the mirror's size.  Once the file grew on the host, the bytes there
    are no longer its end: the preview says the file changed since the last pull instead
    of showing the old end as the file's end (as a file fetched whole already did)."""
    local_root, local_db = make_host(tmp_path, "laptop", "keras")
    root_a = tmp_path / "gpu1" / "outputs"
    run_dir = root_a / "lightning" / "lightning_logs" / "version_0"
    shutil.copytree(FIXTURES / "lightning", root_a / "lightning", symlinks=True)
    big = run_dir / "train.log"
    with open(big, "w") as log_file:  # 9 MiB of text: its ends are fetched
        line = "step {:>9} loss 0.5 " + "x" * 100 + "\n"
        log_file.writelines(line.format(i) for i in range((9 << 20) // len(line) + 1))
        log_file.write("the last line at the pull\n")
    db_a = tmp_path / "gpu1" / "index.db"
    index_tree(root_a, db_a)
    with open(big, "a") as log_file:  # grows on the host after its index (and the pull)
        log_file.write("a line written after the pull\n")
    log = tmp_path / "gpu1.log"
    remotes = [Remote("gpu1", command=flaky_command(db_a, tmp_path / "never", log))]
    app = ArtlensApp(local_db, [local_root], watch=False, remotes=remotes, follow=FOLLOW)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = screen_of(app)
        await open_remote_file(pilot, screen, "gpu1", "version_0", "train.log")
        pane = screen.preview_pane

        def shown() -> bool:
            drawn = pane.plain_text(width=400)
            return "changed since the last pull" in drawn or "the last line at the pull" in drawn

        await until(pilot, shown, "the preview")
        drawn = pane.plain_text(width=400)
        assert "the last line at the pull" not in drawn, drawn[-300:]
        assert "the file has more than the" in drawn
