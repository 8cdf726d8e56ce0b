"""The live watcher: follows file events into the index, reconciling on any sign of loss."""

from __future__ import annotations

from store.watch.batch import FolderBatcher
from store.watch.watcher import (
    EVENT_FILTER,
    WATCH_LIMIT_HINT,
    BatchReport,
    Watcher,
    WatchError,
)

__all__ = [
    "EVENT_FILTER",
    "WATCH_LIMIT_HINT",
    "BatchReport",
    "FolderBatcher",
    "WatchError",
    "Watcher",
]
