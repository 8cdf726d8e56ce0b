"""Mirrors kept current while the explorer runs, and one id space for every host's rows.

``follow`` pulls one remote again and again on its own thread: every ``every`` seconds
while the host answers, with exponential back-off while it does not (an unreachable host
is a state, reported through ``on_state``, never an exception).  ``wake`` pulls at once
(the explorer's refresh), ``stop`` ends the loop.

The explorer shows the local index's runs and every mirror's in one table, so a row's id
carries its host: ``slot * HOST_STRIDE + id`` (slot 0 is the local index).  A mirror's ids
come from the host, so ids at or past ``HOST_STRIDE`` are refused (``encode`` returns
None) rather than allowed to alias another host's rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from store.remote.config import Remote

if TYPE_CHECKING:  # the mirror (and sqlite-utils) load with the first pull, not the app
    from store.remote.mirror import PullResult

HOST_STRIDE = 1 << 40
MAX_HOSTS = 64
"""Remotes the explorer shows and follows (slots 1..MAX_HOSTS); the rest are left out."""
EVERY = 15.0
"""Seconds between two pulls of a host that answers."""
BACKOFF_FIRST = 5.0
BACKOFF_MAX = 600.0
LIVE_PULL_TIMEOUT = 120.0
"""A pull while the explorer runs gives up after this (the next one resumes)."""
STOP_CHECK = 0.2
"""Seconds between two looks at the stop flag while a pull runs."""


def encode(slot: int, row_id: int) -> int | None:
    """The explorer's id of row ``row_id`` of host ``slot``; None when out of range."""
    if not 0 <= slot <= MAX_HOSTS or not 0 <= row_id < HOST_STRIDE:
        return None
    return slot * HOST_STRIDE + row_id


def decode(explorer_id: int) -> tuple[int, int]:
    """(slot, the host's own id) of an explorer id."""
    return divmod(explorer_id, HOST_STRIDE)


@dataclass(frozen=True)
class HostState:
    """What the explorer says about one followed remote."""

    name: str
    online: bool | None = None
    """None until the first pull of this session ends."""
    failures: int = 0
    last_error: str | None = None
    last_event: int = 0
    newest: int = 0
    """The host's newest event at the last pull: past ``last_event``, the mirror is behind
    (that pull stopped before it caught up) and the next pull starts at once."""
    retry_at: float | None = None
    """When the next pull starts, while the host is offline (time.time())."""
    pulls: int = 0
    never_pulled: bool = False
    """Offline, and no pull of this host has ever succeeded: its mirror holds nothing of
    it (not its state at a last pull)."""


def backoff(failures: int, first: float = BACKOFF_FIRST, most: float = BACKOFF_MAX) -> float:
    """Seconds before the next try after ``failures`` failed pulls in a row."""
    return float(min(most, first * 2 ** min(max(failures - 1, 0), 30)))


def _pull_unless_stopped(
    remote: Remote, stop: threading.Event, timeout: float
) -> PullResult | None:
    """``mirror.pull`` on a daemon thread, left behind when ``stop`` is set (None then): a
    host that hangs never holds up the explorer's exit.  A pull cut short by the exit
    rolls back, as every failed pull does."""
    from store.remote import mirror

    outcome: list[PullResult | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(mirror.pull(remote, timeout=timeout))
        except BaseException as exc:  # handed to the following thread
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"pull {remote.name}", daemon=True).start()
    while not done.wait(STOP_CHECK):
        if stop.is_set():
            return None
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _pulled_before(remote: Remote) -> bool:
    """Whether the mirror holds a pull that succeeded (in this session or an earlier one)."""
    from store.remote import mirror

    try:
        return mirror.status(remote).last_ok is not None
    except Exception:  # an unreadable mirror holds nothing to show either
        return False


def follow(
    remote: Remote,
    on_state: Callable[[HostState, bool], None],
    stop: threading.Event,
    wake: threading.Event,
    *,
    every: float = EVERY,
    first: float = BACKOFF_FIRST,
    most: float = BACKOFF_MAX,
    timeout: float = LIVE_PULL_TIMEOUT,
) -> None:
    """Pull ``remote`` until ``stop`` is set; after each pull call ``on_state(state,
    changed)``, ``changed`` being True when the mirror's rows may differ from before (new
    events, rows rechecked, or the host's state changed).  A pull that stopped behind the
    host is followed by the next one at once."""
    state = HostState(remote.name)
    while not stop.is_set():
        wake.clear()
        try:
            result = _pull_unless_stopped(remote, stop, timeout)
            if result is None:
                return
        except Exception as exc:  # any failure is this host's state: the loop goes on
            from store.lock import WriterBusyError

            if isinstance(exc, WriterBusyError):  # another pull (`remote pull`): not offline
                wake.wait(first)
                continue
            failures = state.failures + 1
            never = not state.online and not _pulled_before(remote)
            wait = backoff(failures, first, most)
            changed = state.online is not False
            state = replace(
                state,
                online=False,
                failures=failures,
                last_error=" ".join(str(exc).split())[:300] or type(exc).__name__,
                retry_at=time.time() + wait,
                pulls=state.pulls + 1,
                never_pulled=never,
            )
        else:
            wait = every if result.last_event >= result.newest else 0.0
            changed = (
                state.online is not True
                or result.last_event != state.last_event
                or bool(result.artifacts or result.runs)
            )
            state = replace(
                state,
                online=True,
                failures=0,
                last_error=None,
                last_event=result.last_event,
                newest=result.newest,
                retry_at=None,
                pulls=state.pulls + 1,
                never_pulled=False,
            )
        if stop.is_set():
            return
        on_state(state, changed)
        wake.wait(wait)
