"""The explorer served to a browser (``textual serve``), driven by a real headless Chromium
through Playwright: the page connects, the app draws, a key typed in the page reaches the
app (``p`` pins the selected run, which lands in the user state file), and ``q`` quits it.

Run it with ``pytest -m slow tests/test_web.py``.  Skipped, with the reason, when Playwright
is not installed or no Chromium is found (neither Playwright's own download nor a
``chromium`` on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.emulator import free_port, stop

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
DEADLINE = 90.0
"""Seconds for the server, the browser and the app to come up on a loaded machine."""


def _chromium() -> str:
    """A Chromium executable Playwright can drive, else ``pytest.skip`` saying why."""
    try:
        from playwright.sync_api import sync_playwright  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        bundled = p.chromium.executable_path
    if Path(bundled).exists():
        return str(bundled)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"no Chromium: Playwright's ({bundled}) is not downloaded (playwright install "
        "chromium) and none is on PATH (chromium, chromium-browser, google-chrome)"
    )


def _wait_for(check: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """``textual serve`` of ``artlens ROOT`` on a free port: (url, root, its environment)."""
    root = tmp_path / "lightning"
    shutil.copytree(FIXTURES / "lightning", root)
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    env = dict(os.environ)
    env.update(
        ARTLENS_STATE=str(tmp_path / "state.db"),
        ARTLENS_CACHE=str(tmp_path / "cache"),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
    )
    env.pop("NO_COLOR", None)
    port = free_port()
    command = f"{sys.executable} -m tui.cli open --no-watch --db {db_path} {root}"
    script = (
        "import sys; from textual_serve.server import Server; "
        f"Server(sys.argv[1], host='127.0.0.1', port={port}, title='artlens').serve()"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script, command],
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        assert server.poll() is None, "textual serve exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        _wait_for(up, "textual serve to answer")
        yield url, root, env
    finally:
        stop(server)


@pytest.mark.slow  # a browser and a server start: about 20 s
def test_explorer_in_a_headless_browser(
    served: tuple[str, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    executable = _chromium()
    from playwright.sync_api import sync_playwright  # type: ignore[import-not-found,unused-ignore]

    from store.userstate import UserState

    url, root, env = served
    monkeypatch.setenv("ARTLENS_STATE", env["ARTLENS_STATE"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            # the page hides its intro once the app's first bytes arrive over the websocket
            page.wait_for_function(
                "document.body.classList.contains('-first-byte')", timeout=DEADLINE * 1000
            )
            assert page.locator(".textual-terminal").count() == 1
            assert not page.locator("body.-closed").count()  # the app did not exit

            def pinned() -> bool:
                with UserState() as state:
                    return bool(state.pins(str(root)))

            page.locator(".textual-terminal").click()
            deadline = time.monotonic() + DEADLINE
            while not pinned():
                assert time.monotonic() < deadline, "a key typed in the browser never pinned"
                page.keyboard.press("p")  # pins the run under the cursor (once runs show)
                waited = time.monotonic() + 10
                while not pinned() and time.monotonic() < waited:
                    page.wait_for_timeout(100)
            page.keyboard.press("q")  # and the app quits from the browser: the page says so
            page.wait_for_selector("body.-closed", state="attached", timeout=DEADLINE * 1000)
        finally:
            browser.close()
