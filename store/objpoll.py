"""Watching object-store roots is polling: re-list live run prefixes often and the whole
root on the reconcile schedule, applying what changed through the same ``ObjectIndexer``.

Bucket notifications are never the truth, so the listing is; what the schedule costs is
counted (requests, bytes) and priced per month from the measured cost of each kind of pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from store.errors import ArtlensError
from store.lock import WriterLock
from store.root.base import RootError
from store.root.objstore import ObjectRoot, Stats

LIVE_EVERY = 30.0
"""Seconds between two listings of a live run's prefix."""
RECONCILE_EVERY = 600.0
"""Seconds between two listings of the whole root (new prefixes show up here)."""

# S3 Standard, us-east-1, list prices of 2024: LIST (and PUT, COPY) $0.005 per 1,000
# requests; GET (and HEAD and the rest) $0.0004 per 1,000.  Transfer out is not counted:
# inside the region it is free, and previews read a few blocks.
LIST_PRICE = 0.005 / 1000
GET_PRICE = 0.0004 / 1000
# GCS Standard (Class A objects.list, Class B reads) and Azure Hot (List, Read) charge the
# same per request.
LIST_OPS = frozenset(
    {"list_objects_v2", "list_object_versions", "list_objects", "objects.list", "list_blobs"}
)
MONTH = 30 * 86400.0


def request_cost(ops: dict[str, int]) -> float:
    """Dollars that requests by operation cost at the assumed prices."""
    return sum(n * (LIST_PRICE if op in LIST_OPS else GET_PRICE) for op, n in ops.items())


@dataclass
class PassCost:
    """The requests of the latest pass of one kind (a whole-root or a live listing)."""

    ops: dict[str, int] = field(default_factory=dict)

    def dollars(self) -> float:
        return request_cost(self.ops)


@dataclass
class PollReport:
    """One pass over one root: what changed, and the requests it took."""

    url: str
    kind: str  # "full" or "live"
    added: int
    changed: int
    removed: int
    requests: int
    nbytes: int
    error: str | None = None


def _delta(before: dict[str, int], stats: Stats) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in stats.ops.items() if n - before.get(op, 0)}


class BucketPoller:
    """Keeps the index's rows of ``urls`` equal to their listings until ``stop``."""

    def __init__(
        self,
        db_path: Path,
        urls: list[str],
        *,
        live_every: float = LIVE_EVERY,
        reconcile_every: float = RECONCILE_EVERY,
        on_pass: Callable[[PollReport], None] | None = None,
        hold_lock: bool = True,
    ) -> None:
        if live_every <= 0 or reconcile_every <= 0:
            raise ArtlensError("polling intervals must be positive")
        self.db_path = db_path
        self.urls = urls
        self.live_every = live_every
        self.reconcile_every = reconcile_every
        self.on_pass = on_pass
        self.hold_lock = hold_lock
        """False beside a ``Watcher`` of this process on the same index: it holds the
        writer lock for both (a second flock from one process would refuse itself)."""
        self.roots: dict[str, ObjectRoot] = {}
        self.full = PassCost()
        self.live = PassCost()
        self._stop = threading.Event()

    # -- what it costs -------------------------------------------------------------

    @property
    def requests(self) -> int:
        return sum(root.stats.requests for root in self.roots.values())

    @property
    def nbytes(self) -> int:
        return sum(root.stats.bytes for root in self.roots.values())

    def monthly_cost(self) -> float:
        """Dollars a month the current schedule costs in requests, from the latest
        measured pass of each kind (an unchanged root costs its listing pages)."""
        return self.full.dollars() * MONTH / self.reconcile_every + (
            self.live.dollars() * MONTH / self.live_every
        )

    def schedule_text(self) -> str:
        return f"live every {self.live_every:g}s, all every {self.reconcile_every:g}s"

    # -- the loop ------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Hold the index's writer lock (unless ``hold_lock`` is False) and poll until
        ``stop`` (a full pass first)."""
        from contextlib import AbstractContextManager, nullcontext

        from store.index.db import open_db
        from store.objscan import ObjectIndexer
        from store.root import open_root

        for url in self.urls:
            root = open_root(url)
            if not isinstance(root, ObjectRoot):
                raise ArtlensError(f"not an object-store root: {url}")
            self.roots[url] = root
        lock: AbstractContextManager[object] = (
            WriterLock(self.db_path, role="watch") if self.hold_lock else nullcontext()
        )
        with lock:
            db = open_db(self.db_path)
            try:
                indexers = {url: ObjectIndexer(db, root) for url, root in self.roots.items()}
                next_full = 0.0
                next_live = time.monotonic() + self.live_every
                while not self._stop.is_set():
                    now = time.monotonic()
                    if now >= next_full:
                        for url, indexer in indexers.items():
                            self._pass(url, indexer, "full", [""])
                        next_full = time.monotonic() + self.reconcile_every
                    elif now >= next_live:
                        for url, indexer in indexers.items():
                            self._pass(url, indexer, "live", self._live_prefixes(indexer))
                        next_live = time.monotonic() + self.live_every
                    self._stop.wait(max(0.0, min(next_full, next_live) - time.monotonic()))
            finally:
                db.close()

    def _live_prefixes(self, indexer: object) -> list[str]:
        """Run folders written to lately (``last_write`` within the runs' live window)."""
        import os

        from store.objscan import ObjectIndexer
        from store.runs import LIVE_SECONDS

        assert isinstance(indexer, ObjectIndexer)
        rows = indexer.db.conn.execute(
            "SELECT path FROM runs WHERE root_id = ? AND last_write > ? LIMIT 1000",
            [indexer.root_id, time.time() - LIVE_SECONDS],
        ).fetchall()
        return [os.fsdecode(bytes(path)) for (path,) in rows if bytes(path)]

    def _pass(self, url: str, indexer: object, kind: str, prefixes: list[str]) -> None:
        from store.objscan import ObjectIndexer

        assert isinstance(indexer, ObjectIndexer)
        stats = self.roots[url].stats
        before_ops, before_req, before_bytes = dict(stats.ops), stats.requests, stats.bytes
        added = changed = removed = 0
        error = None
        for prefix in prefixes:
            if self._stop.is_set():
                break
            try:
                report = indexer.scan(prefix, defer_summaries=True)
                indexer.fill_summaries()
            except (RootError, OSError) as exc:
                error = " ".join(str(exc).split())[:200]
                continue
            added, changed, removed = (
                added + report.added,
                changed + report.changed,
                removed + report.removed,
            )
            if report.added or report.changed:
                indexer.hash_pending()  # verdicts of new models, by ranged inspection
        (self.full if kind == "full" else self.live).ops = _delta(before_ops, stats)
        if self.on_pass is not None:
            self.on_pass(
                PollReport(
                    url,
                    kind,
                    added,
                    changed,
                    removed,
                    stats.requests - before_req,
                    stats.bytes - before_bytes,
                    error,
                )
            )
