"""One object-store root per URL for the whole process: the explorer's previews and its
polling read through the same root, so its request and byte counters are the session's."""

from __future__ import annotations

import threading

from store.root.base import Root

_lock = threading.Lock()
_roots: dict[str, Root] = {}


def shared_root(url: str) -> Root:
    """The process's root for ``url`` (opened on first use; opening makes no request)."""
    from store.root import open_root

    key = url.rstrip("/")
    with _lock:
        root = _roots.get(key)
        if root is None:
            root = _roots[key] = open_root(key)
        return root


def opened() -> list[Root]:
    """Every root handed out so far (their counters add up to this session's cost)."""
    with _lock:
        return list(_roots.values())


def counted() -> tuple[int, int]:
    """(requests, bytes) through every root handed out so far (local roots count none)."""
    requests = nbytes = 0
    for root in opened():
        stats = getattr(root, "stats", None)
        if stats is not None:
            requests += stats.requests
            nbytes += stats.bytes
    return requests, nbytes
