"""The explorer over several hosts: two indexes on this machine act as hosts through the
``--command`` transport, the app follows them under ``App.run_test``.

Every pull runs the real ``artlens feed`` in a child process; a host is taken away by a
flag file its command checks (it then fails as an unreachable ssh host does).
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from textual.pilot import Pilot

from store.diff import diff_files
from store.index import query
from store.index.db import open_db
from store.index.views import counts
from store.remote.config import Remote
from store.rundiff import diff_run_rows
from tests.test_checklist import FIXTURES, index_tree
from tests.test_remote import capped_host, host_command, local_runs, make_host
from tests.test_tui import sync
from tui.app import ArtlensApp
from tui.hosts import Hosts
from tui.screens.explorer import ExplorerScreen
from tui.screens.file_diff import FileDiffScreen
from tui.screens.metrics import MetricsScreen
from tui.screens.run_diff import RunDiffScreen
from tui.widgets.status import StatusLine

FOLLOW = (1.0, 0.3, 0.6)
"""Pull every second; retry an offline host after 0.3 s, then every 0.6 s."""


@pytest.fixture(autouse=True)
def isolated(isolated_cache: Path) -> Iterator[None]:
    yield


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until ``condition`` holds (generous: pulls start processes)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > 60:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def flaky_command(db: Path, down: Path, log: Path) -> str:
    """The host's command, failing like an unreachable ssh host while ``down`` exists;
    every call's arguments are appended to ``log``."""
    script = (
        f'echo "$*" >> {shlex.quote(str(log))}; '
        f"if [ -e {shlex.quote(str(down))} ]; then "
        'echo "ssh: connect to host gpu2 port 22: Connection refused" >&2; exit 255; fi; '
        f'exec {host_command(db)} "$@"'
    )
    return f"sh -c {shlex.quote(script)} host"


def screen_of(app: ArtlensApp) -> ExplorerScreen:
    screen = app.screen
    assert isinstance(screen, ExplorerScreen)
    return screen


def names_by_host(screen: ExplorerScreen) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for run_id, run in screen.runs.items():
        found.setdefault(screen.hosts.name_of(run_id), set()).add(run.name)
    return found


def host_cells(screen: ExplorerScreen) -> list[str]:
    table = screen.table
    return [table.get_cell(row.key, "host").plain for row in table.ordered_rows]


def status(screen: ExplorerScreen) -> str:
    return screen.query_one(StatusLine).render_info().plain


def totals_of(*dbs: Path) -> str:
    """What the status line says of every run and file shown, each index counted."""
    runs = files = 0
    for path in dbs:
        db = open_db(path)
        with closing(db.conn):
            found = counts(db)
        runs, files = runs + found.runs, files + found.artifacts
    return f"{runs}/{runs} runs · {files} files"


@sync
async def test_two_hosts_in_one_explorer_and_a_host_that_goes_away_and_comes_back(
    tmp_path: Path,
) -> None:
    local_root, local_db = make_host(tmp_path, "laptop", "keras")
    _, db_a = make_host(tmp_path, "gpu1", "lightning")
    root_b, db_b = make_host(tmp_path, "gpu2", "hydra")
    down, log_a, log_b = tmp_path / "gpu2-down", tmp_path / "gpu1.log", tmp_path / "gpu2.log"
    remotes = [
        Remote("gpu1", command=flaky_command(db_a, tmp_path / "never", log_a)),
        Remote("gpu2", command=flaky_command(db_b, down, log_b)),
    ]
    app = ArtlensApp(local_db, [local_root], watch=False, remotes=remotes, follow=FOLLOW)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = screen_of(app)
        want = {"local": local_runs(local_db), "gpu1": local_runs(db_a), "gpu2": local_runs(db_b)}
        await until(pilot, lambda: names_by_host(screen) == want, "every host's runs")
        await until(
            pilot, lambda: "gpu1 ✓" in status(screen) and "gpu2 ✓" in status(screen), "hosts online"
        )
        assert {"local", "gpu1", "gpu2"} <= set(host_cells(screen))
        # the totals count what the table shows: the mirrors' runs and files too
        await until(
            pilot, lambda: totals_of(local_db, db_a, db_b) in status(screen), "every host's totals"
        )

        screen.set_filter("host:gpu1")
        await until(pilot, lambda: set(host_cells(screen)) == {"gpu1"}, "the host filter")
        assert screen.table.row_count == len(want["gpu1"])
        screen.set_filter("host:nowhere")
        await pilot.pause()
        assert screen.table.row_count == 0

        # a host that goes away: offline in the status line and on its rows, rows kept
        screen.set_filter("host:gpu2")
        down.touch()
        await until(pilot, lambda: "gpu2 offline" in status(screen), "gpu2 offline")
        await until(
            pilot,
            lambda: bool(host_cells(screen)) and all("offline" in c for c in host_cells(screen)),
            "gpu2's rows marked offline",
        )
        assert names_by_host(screen)["gpu2"] == want["gpu2"]
        assert "gpu1 ✓" in status(screen)
        assert not app._notifications  # an unreachable host is a state, not an error dialog

        # ... and comes back with a new run, picked up without a restart
        day = root_b / "hydra" / "outputs" / "2026-11-27"
        shutil.copytree(day / "14-28-11", day / "15-00-00", symlinks=True)
        index_tree(root_b, db_b)
        assert local_runs(db_b) != want["gpu2"]
        want["gpu2"] = local_runs(db_b)
        down.unlink()
        await until(pilot, lambda: "gpu2 ✓" in status(screen), "gpu2 back")
        await until(
            pilot, lambda: names_by_host(screen).get("gpu2") == want["gpu2"], "gpu2's new run"
        )
        assert not any("offline" in c for c in host_cells(screen))
        screen.set_filter("")
        await until(
            pilot, lambda: totals_of(local_db, db_a, db_b) in status(screen), "gpu2's new totals"
        )


async def open_remote_file(
    pilot: Pilot[None], screen: ExplorerScreen, host: str, run_name: str, name: str
) -> None:
    """Put the runs cursor on ``host``'s ``run_name`` and the tree cursor on its ``name``."""
    await until(pilot, lambda: host in names_by_host(screen), f"{host}'s runs")
    run = next(
        r for i, r in screen.runs.items() if r.name == run_name and screen.hosts.name_of(i) == host
    )
    screen.jump_to_run(run.id)
    await pilot.press("2")
    tree = screen.file_tree

    def found() -> bool:
        tree._typed = ""
        return tree.run_id == run.id and tree.jump_to(name)

    await until(pilot, found, f"{name} in the tree")


@sync
async def test_a_mirrored_file_is_previewed_from_its_host_and_a_large_one_is_not_fetched(
    tmp_path: Path,
) -> None:
    local_root, local_db = make_host(tmp_path, "laptop", "keras")
    copied = FIXTURES / "lightning" / "lightning_logs" / "version_0" / "hparams.yaml"
    shutil.copy(copied, local_root / "keras" / "copied-hparams.yaml")
    index_tree(local_root, local_db)
    root_a = tmp_path / "gpu1" / "outputs"
    run_dir = root_a / "lightning" / "lightning_logs" / "version_0"
    shutil.copytree(FIXTURES / "lightning", root_a / "lightning", symlinks=True)
    with open(run_dir / "big.log", "w") as log_file:  # 9 MiB of text: its ends are fetched
        line = "step {:>9} loss 0.5 " + "x" * 100 + "\n"
        log_file.writelines(line.format(i) for i in range((9 << 20) // len(line) + 1))
        log_file.write("the very last line\n")
    with open(run_dir / "big.ckpt", "wb") as big:
        big.truncate(9 << 20)  # a model file: its inspection may read anywhere, not fetched
    db_a = tmp_path / "gpu1" / "index.db"
    index_tree(root_a, db_a)
    log = tmp_path / "gpu1.log"
    remotes = [Remote("gpu1", command=flaky_command(db_a, tmp_path / "never", log))]
    app = ArtlensApp(local_db, [local_root], watch=False, remotes=remotes, follow=FOLLOW)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = screen_of(app)
        await open_remote_file(pilot, screen, "gpu1", "version_0", "hparams.yaml")
        pane = screen.preview_pane
        await until(pilot, lambda: "!!python/tuple" in pane.plain_text(), "the fetched preview")
        assert "cat --range 0:" in log.read_text()
        assert f"{run_dir}/hparams.yaml" in log.read_text()
        # the same bytes elsewhere, by full hash and size: here, in the local index
        await until(pilot, lambda: "same bytes on other hosts" in pane.plain_text(), "copies")
        drawn = pane.plain_text(width=400)
        assert f"local: {local_root}/keras/copied-hparams.yaml" in drawn

        screen.file_tree._typed = ""
        assert screen.file_tree.jump_to("big.log")
        await until(pilot, lambda: "the very last line" in pane.plain_text(), "the log's end")
        assert "fetched its first and last 256.0K" in pane.plain_text(width=400)
        size = (run_dir / "big.log").stat().st_size
        assert (
            f"cat --range {size - (256 << 10)}:{(256 << 10) + 1} {run_dir}/big.log"
            in log.read_text()
        )
        assert f"cat --range 0:{size}" not in log.read_text()

        screen.file_tree._typed = ""
        assert screen.file_tree.jump_to("big.ckpt")
        await until(pilot, lambda: "not fetched" in pane.plain_text(), "the size note")
        assert "9.0M on gpu1: not fetched" in pane.plain_text(width=400)
        assert "big.ckpt" not in "".join(
            line for line in log.read_text().splitlines() if line.startswith("cat")
        )

        # a file diff across runs of the host: both files fetched, the same diff as here
        screen.file_tree._typed = ""
        assert screen.file_tree.jump_to("hparams.yaml")
        await until(pilot, lambda: "!!python/tuple" in pane.plain_text(), "the preview again")
        fetched = [line for line in log.read_text().splitlines() if "hparams.yaml" in line]
        assert len(fetched) == 1  # shown again from memory: the mirror says it is the same
        await pilot.press("space")
        await open_remote_file(pilot, screen, "gpu1", "version_2", "hparams.yaml")
        await pilot.press("space", "d")
        await until(pilot, lambda: isinstance(app.screen, FileDiffScreen), "the file diff")
        diff_screen = app.screen
        assert isinstance(diff_screen, FileDiffScreen)
        await until(pilot, lambda: diff_screen.diff is not None, "the diff")
        assert diff_screen.label_a.startswith("gpu1:") and diff_screen.diff is not None
        v0, v2 = (run_dir.parent / v / "hparams.yaml" for v in ("version_0", "version_2"))
        local = diff_files(str(v0), str(v2))
        assert diff_screen.diff.error is None and not diff_screen.diff.equal
        assert diff_screen.diff.to_json()["result"] == local.to_json()["result"]
        assert f"{v0}" in log.read_text() and f"{v2}" in log.read_text()
        await pilot.press("escape")

        # metrics of a mirrored run: the mirror's summaries, no curve read from any file
        await until(pilot, lambda: app.screen is screen, "the explorer again")
        v0_run = next(r for r in screen.runs.values() if r.name == "version_0")
        screen.jump_to_run(v0_run.id)
        await pilot.press("1", "m")
        await until(pilot, lambda: isinstance(app.screen, MetricsScreen), "the metrics view")
        metrics = app.screen
        assert isinstance(metrics, MetricsScreen)
        await until(pilot, lambda: bool(metrics.series), "the series")
        (series,) = metrics.series.values()
        run = next(r for r in screen.runs.values() if r.id == series.run_id)
        assert screen.hosts.name_of(run.id) == "gpu1" and run.name == "version_0"
        assert {line.name: line.last for line in series.metrics} == {
            name: m["last"] for name, m in run.metrics.items()
        }
        assert series.metrics and all(line.points == () for line in series.metrics)


@pytest.mark.slow
@sync
async def test_a_run_diff_across_hosts_equals_the_local_one(tmp_path: Path) -> None:
    root_a, db_a = make_host(tmp_path, "gpu1", "lightning")
    root_b, db_b = make_host(tmp_path, "gpu2", "lightning")
    run = "lightning/lightning_logs/version_0"
    (root_a / run / "requirements.txt").write_text("torch==2.3\nnumpy==1.26\n")
    (root_b / run / "requirements.txt").write_text("torch==2.4\nnumpy==1.26\n")
    (root_b / run / "hparams.yaml").write_text("name: tiny\nlr: 0.2\nshape: [4, 2]\n")
    for path in (root_a / run / "requirements.txt", root_b / run / "requirements.txt",
                 root_b / run / "hparams.yaml"):  # fmt: skip
        os.utime(path, (1_767_225_700.0, 1_767_225_700.0))
    index_tree(root_a, db_a)
    index_tree(root_b, db_b)
    local_db = tmp_path / "local.db"  # the same two runs in one local index
    index_tree(root_a, local_db)
    index_tree(root_b, local_db)
    with closing(open_db(local_db, readonly=True)) as db:
        runs = {bytes(r.root): r for r in query.list_runs(db) if r.name == "version_0"}
        here = diff_run_rows(db, runs[os.fsencode(root_a)], runs[os.fsencode(root_b)]).to_json()

    remotes = [
        Remote("gpu1", command=host_command(db_a)),
        Remote("gpu2", command=host_command(db_b)),
    ]
    app = ArtlensApp(local_db, [root_a, root_b], watch=False, remotes=remotes, follow=FOLLOW)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = screen_of(app)
        await until(pilot, lambda: {"gpu1", "gpu2"} <= set(names_by_host(screen)), "both hosts")
        for host in ("gpu1", "gpu2"):
            run_id = next(
                i
                for i, r in screen.runs.items()
                if r.name == "version_0" and screen.hosts.name_of(i) == host
            )
            screen.jump_to_run(run_id)
            await pilot.press("space")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, RunDiffScreen), "the run diff")
        diff_screen = app.screen
        assert isinstance(diff_screen, RunDiffScreen)
        await until(pilot, lambda: diff_screen.result is not None, "the comparison")
        assert diff_screen.result is not None
        across = diff_screen.result.to_json()
        for section in ("equal", "params", "metrics", "env", "artifacts"):
            assert across[section] == here[section], section
        assert across["env"] == [{"name": "torch", "kind": "changed", "old": "2.3", "new": "2.4"}]
        assert across["params"] and not across["equal"]
        assert "gpu1:#" in diff_screen._title(None).plain


def test_explorer_ids_never_alias_another_host_and_back_off_doubles() -> None:
    from store.remote import live

    assert live.decode(live.encode(3, 42) or 0) == (3, 42)
    assert live.encode(1, live.HOST_STRIDE) is None  # a host's huge id is refused, not wrapped
    assert live.encode(1, -1) is None and live.encode(live.MAX_HOSTS + 1, 1) is None
    waits = [live.backoff(n, 5.0, 600.0) for n in range(1, 10)]
    assert waits[:4] == [5.0, 10.0, 20.0, 40.0] and max(waits) == 600.0


def test_any_failure_of_a_pull_is_an_offline_state_and_the_following_goes_on() -> None:
    import threading

    from store.remote import live

    remote = Remote("gpu9", command="false")
    remote.mirror_path.mkdir(parents=True)  # a folder where its mirror goes: sqlite fails
    states: list[live.HostState] = []
    stop, wake = threading.Event(), threading.Event()

    def on_state(state: live.HostState, changed: bool) -> None:
        states.append(state)
        if len(states) == 3:
            stop.set()

    live.follow(remote, on_state, stop, wake, every=0.01, first=0.01, most=0.02)
    assert [s.online for s in states] == [False, False, False]
    assert [s.failures for s in states] == [1, 2, 3] and states[0].last_error


@sync
async def test_ctrl_r_pulls_every_host_at_once(tmp_path: Path) -> None:
    local_root, local_db = make_host(tmp_path, "laptop", "keras")
    root_b, db_b = make_host(tmp_path, "gpu2", "hydra")
    remotes = [Remote("gpu2", command=host_command(db_b))]
    slow = (600.0, 600.0, 600.0)  # no pull but the first one, unless asked
    app = ArtlensApp(local_db, [local_root], watch=False, remotes=remotes, follow=slow)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = screen_of(app)
        await until(pilot, lambda: "gpu2 ✓" in status(screen), "the pull on open")
        # the status says the pull is done; the table rereads the mirror's runs after it
        await until(pilot, lambda: "gpu2" in names_by_host(screen), "the host's runs")
        before = names_by_host(screen)["gpu2"]
        day = root_b / "hydra" / "outputs" / "2026-11-27"
        shutil.copytree(day / "14-28-11", day / "16-00-00", symlinks=True)
        index_tree(root_b, db_b)
        assert local_runs(db_b) != before
        await pilot.press("ctrl+r")
        await until(pilot, lambda: names_by_host(screen)["gpu2"] == local_runs(db_b), "the pull")


def test_a_follower_behind_its_host_pulls_again_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull that stops before it caught up (its feeds used up) is not the host's state:
    the follower says so and goes on at once, not after its quiet interval."""
    import threading

    from store.remote import live, mirror

    root, db = make_host(tmp_path, "gpu1", "lightning")
    remote = Remote("gpu1", command=capped_host(db, 3))
    mirror.pull(remote)
    for i in range(12):
        (root / "lightning" / f"new-{i}.bin").write_bytes(b"x" * i)
    index_tree(root, db)
    monkeypatch.setattr(mirror, "MAX_ROUNDS", 1)
    states: list[live.HostState] = []
    stop, wake = threading.Event(), threading.Event()
    caught_up = threading.Event()

    def on_state(state: live.HostState, changed: bool) -> None:
        states.append(state)
        if state.online and state.last_event >= state.newest:
            caught_up.set()
            stop.set()

    follower = threading.Thread(
        target=live.follow, args=(remote, on_state, stop, wake), kwargs={"every": 3600.0}
    )
    follower.start()
    try:
        assert caught_up.wait(120), states
    finally:
        stop.set()
        wake.set()
        follower.join(60)
    assert states[0].online and states[0].last_event < states[0].newest
    hosts = Hosts([remote])
    hosts.states["gpu1"] = states[0]
    assert hosts.status_text() == ("hosts: gpu1 catching up", False)
    hosts.states["gpu1"] = states[-1]
    assert hosts.status_text() == ("hosts: gpu1 ✓", True)


@sync
async def test_a_host_never_pulled_is_not_called_offline_with_its_last_pull(
    tmp_path: Path,
) -> None:
    """A host whose every pull failed has nothing in its mirror: the status line says it
    was never pulled (no rows of it is not "no runs there"); once a pull succeeded and the
    host goes away again, it is plainly offline, its last pull shown."""
    local_root, local_db = make_host(tmp_path, "laptop", "keras")
    _, db_b = make_host(tmp_path, "gpu2", "hydra")
    down = tmp_path / "gpu2-down"
    down.touch()
    remotes = [Remote("gpu2", command=flaky_command(db_b, down, tmp_path / "gpu2.log"))]
    app = ArtlensApp(local_db, [local_root], watch=False, remotes=remotes, follow=FOLLOW)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = screen_of(app)
        await until(pilot, lambda: "gpu2 offline" in status(screen), "gpu2 offline")
        assert "gpu2 offline, never pulled" in status(screen)
        assert "gpu2" not in names_by_host(screen)
        down.unlink()
        await until(pilot, lambda: "gpu2 ✓" in status(screen), "gpu2 pulled")
        await until(pilot, lambda: "gpu2" in names_by_host(screen), "gpu2's runs")
        down.touch()
        await until(pilot, lambda: "gpu2 offline" in status(screen), "gpu2 offline again")
        assert "never pulled" not in status(screen)
        assert names_by_host(screen)["gpu2"] == local_runs(db_b)
