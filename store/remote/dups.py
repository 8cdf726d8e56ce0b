"""The same bytes on several hosts: files whose full content hash is equal across indexes.

Only files hashed in full (``hash_state = 'done'``, a 32-hex xxh3-128) count, on every
side: a pending, skipped or failed hash never makes a claim.  Two files are the same
content when hash and size are both equal; a hash whose sizes disagree between hosts (a
host lying, or a collision) is reported as a warning, never as a copy.  Everything is
bounded: hashes read per host, groups listed, copies per host.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from store import paths
from store.remote.hosts import Host, opened

MAX_HASHES = 2_000_000
"""Distinct hashes read from one host (past it, the host's answer is partial: said so)."""
MAX_GROUPS = 1000
MAX_COPIES = 20
"""Copies listed per host and group (the count is exact)."""
_HASH = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Copy:
    host: str
    path: bytes
    """Absolute on its host."""


@dataclass
class CrossGroup:
    """One content (hash and size) found on two or more hosts."""

    hash: str
    size: int
    counts: dict[str, int] = field(default_factory=dict)
    """Files with this content, per host."""
    copies: list[Copy] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "algorithm": "xxh3-128",
            "size_bytes": self.size,
            "hosts": sorted(self.counts),
            "files": dict(sorted(self.counts.items())),
            "copies": [_copy_json(c) for c in self.copies],
        }


def _copy_json(copy: Copy) -> dict[str, Any]:
    path, path_b64 = paths.json_path(copy.path)
    return {"host": copy.host, "path": path, "path_b64": path_b64}


@dataclass
class CrossDuplicates:
    groups: list[CrossGroup]
    warnings: list[str]


def _hashes(host: Host, min_size: int, warnings: list[str]) -> dict[str, tuple[int, int]]:
    """hash -> (size, files) of the host's fully hashed files."""
    found: dict[str, tuple[int, int]] = {}
    with opened(host) as db:
        rows = db.conn.execute(
            "SELECT hash, min(size), max(size), count(*) FROM artifacts"
            " WHERE hash_state = 'done' AND hash IS NOT NULL AND ftype = 'file' AND size >= ?"
            " GROUP BY hash",
            [min_size],
        )
        for digest, low, high, count in rows:
            if len(found) >= MAX_HASHES:
                warnings.append(f"{host.name}: more than {MAX_HASHES} contents: the rest not read")
                break
            if not isinstance(digest, str) or not _HASH.match(digest):
                continue
            if low != high:
                warnings.append(f"{host.name}: hash {digest[:16]} with several sizes: not a copy")
                continue
            found[digest] = (int(low), int(count))
    return found


def across_hosts(found: list[Host], *, min_size: int = 1) -> CrossDuplicates:
    """Contents held by two or more of ``found`` (by full hash and size), most bytes
    first; within one host, ``artlens du`` lists duplicates."""
    warnings: list[str] = []
    by_host = {host.name: _hashes(host, min_size, warnings) for host in found}
    seen: dict[str, CrossGroup] = {}
    sizes_disagree: set[str] = set()
    for name, hashes in by_host.items():
        for digest, (size, count) in hashes.items():
            group = seen.get(digest)
            if group is None:
                seen[digest] = CrossGroup(digest, size, {name: count})
            elif group.size != size:
                sizes_disagree.add(digest)
            else:
                group.counts[name] = count
    for digest in sorted(sizes_disagree)[:20]:
        warnings.append(f"hash {digest[:16]} has different sizes on different hosts: not a copy")
    groups = [g for d, g in seen.items() if len(g.counts) > 1 and d not in sizes_disagree]
    groups.sort(key=lambda g: (-g.size * (sum(g.counts.values()) - 1), g.hash))
    if len(groups) > MAX_GROUPS:
        warnings.append(f"{len(groups)} contents on several hosts: the first {MAX_GROUPS} listed")
        groups = groups[:MAX_GROUPS]
    hosts_by_name = {h.name: h for h in found}
    for name in by_host:
        wanted = [g for g in groups if name in g.counts]
        if not wanted:
            continue
        with opened(hosts_by_name[name]) as db:
            roots = {
                rid: bytes(path) for rid, path in db.conn.execute("SELECT id, path FROM roots")
            }
            for group in wanted:
                for root_id, rel in db.conn.execute(
                    "SELECT root_id, path FROM artifacts WHERE hash = ? AND hash_state = 'done'"
                    " AND ftype = 'file' ORDER BY root_id, path LIMIT ?",
                    [group.hash, MAX_COPIES],
                ):
                    root = roots.get(root_id)
                    if root is not None:
                        full = root.rstrip(b"/") + b"/" + bytes(rel) if rel else root
                        group.copies.append(Copy(name, full))
    return CrossDuplicates(groups, warnings)


def display(copy: Copy) -> str:
    return f"{copy.host}:{paths.display(os.fsdecode(copy.path))}"
