"""Pausing Python's cycle collector while millions of acyclic objects are made.

A scan's rows, a plan's units or a loaded plan hold no cycles, yet every collection the
allocations trigger walks them all: a tenth of a scan over a million files, half of the
load of a 500,000-removal plan.  Reference counting still frees everything.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, kept: bool = False) -> Iterator[None]:
    """The collector paused inside, and left as it was found after, on errors too.

    ``kept``: what was made inside outlives the block (a plan handed to its caller).  It
    goes straight to the oldest generation (``age_young_objects``); otherwise the first
    allocation after the pause ran a young collection through all of it.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if kept:
            age_young_objects()
        if collecting:
            gc.enable()


def age_young_objects() -> None:
    """Hand every young object to the oldest generation.

    With the collector paused, every object made is still counted as young.  ``freeze``
    then ``unfreeze`` moves them to the oldest generation in O(1); they stay collectable
    and are looked at by the next full collection, as any long-lived object is.  When
    something else froze the heap (the explorer does), they join it and are handed back
    with it.
    """
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    if not frozen_before:
        gc.unfreeze()
