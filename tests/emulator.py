"""A storage emulator (fake-gcs-server, Azurite) run as a child process for a test session."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_SECONDS = 60
"""How long an emulator may take to answer (a loaded machine starts Node slowly)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """End a server the test started: politely, then not."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def accepts(port: int) -> bool:
    """Something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def emulator(
    name: str,
    args: list[str],
    ready: Callable[[], bool],
    env: tuple[str, str],
    cwd: Path | None = None,
) -> Iterator[None]:
    """``args`` running until the block ends, once ``ready()``; the environment variable
    ``env`` points the SDK at it meanwhile (and is put back after)."""
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"{name} did not start: {err.strip()[:300]}")
        time.sleep(0.05)  # polling the condition, with the deadline above
    variable, value = env
    saved = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield
    finally:
        stop(process)
        if process.stderr:
            process.stderr.close()
        if saved is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved
