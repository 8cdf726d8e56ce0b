"""Saving a plan while the caller prints it.

A plan over a million artifacts takes seconds to encode and write, about as long as
printing it or writing its ``--json``: the command's user waits for both, one after the
other, on a machine with a second core idle.  ``saved_meanwhile`` saves the plan in a
forked child (``store.forked``) while the body runs, then waits for it.  Where a child
cannot be forked, or it fails in any way, the plan is saved here after the body, so the
plan on disk is always this one, written as ``Plan.save`` writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from store import forked
from store.retention.plan import Plan, default_plan_dir

_SAVED = b"saved"


@contextmanager
def saved_meanwhile(plan: Plan, *, beside: bool = True) -> Iterator[Path]:
    """Save ``plan`` to its default place while the body runs; yields that path (set as
    ``plan.path`` from the start: the body may print it).  Raises ``PlanError`` after the
    body when the plan could not be saved.  ``beside=False`` saves after the body, here.

    A body that fails (the reader of a ``| head`` went away) still leaves the plan saved,
    as its id may have been printed; only an interrupt (Ctrl-C) stops the save."""
    target = default_plan_dir() / f"{plan.id}.json"
    plan.path = target
    helper = _start(plan, target) if beside else None
    try:
        yield target
    except KeyboardInterrupt:
        if helper is not None:
            helper.abandon()
        raise
    except BaseException:
        _finish(plan, target, helper)
        raise
    _finish(plan, target, helper)


def _finish(plan: Plan, target: Path, helper: forked.Helper | None) -> None:
    """Wait for the child's save; save here when there was none or it failed."""
    if helper is None or helper.result() != _SAVED:
        plan.save(target)


def _start(plan: Plan, target: Path) -> forked.Helper | None:
    if not forked.can_fork():
        return None

    def job(_counter: Callable[[int], None]) -> bytes:
        plan.save(target)
        return _SAVED

    try:
        return forked.Helper(job)
    except OSError:
        return None
