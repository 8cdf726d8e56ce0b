"""Where an index lives.

By default on a local disk: a per-user cache folder, one index per set of roots (SQLite on
NFS locks badly and can corrupt).  A small registry remembers which index covers which
roots, so commands run without arguments find the index for the folder you are in.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from store.safeparse import load_json

ENV_DB = "ARTLENS_DB"
ENV_CACHE = "ARTLENS_CACHE"


def cache_dir() -> Path:
    override = os.environ.get(ENV_CACHE)
    return Path(override) if override else Path(platformdirs.user_cache_dir("artlens"))


def _registry_path() -> Path:
    return cache_dir() / "indexes.json"


def normalise_roots(roots: Sequence[Path | str]) -> list[Path]:
    return sorted({Path(os.path.abspath(r)) for r in roots})


def default_db(roots: Sequence[Path | str]) -> Path:
    """The index for exactly this set of roots."""
    normal = normalise_roots(roots)
    digest = hashlib.sha1(b"\0".join(os.fsencode(r) for r in normal)).hexdigest()[:12]
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in normal[0].name)[:40] or "root"
    return cache_dir() / f"{slug}-{digest}.db"


def _load_registry() -> dict[str, dict[str, object]]:
    try:
        data = load_json(_registry_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(db: Path, roots: Sequence[Path | str]) -> None:
    """Record that ``db`` indexes ``roots`` (best effort: the registry is a convenience)."""
    registry = _load_registry()
    entry = registry.get(str(db), {})
    known = entry.get("roots") if isinstance(entry, dict) else None
    merged = set(known) if isinstance(known, list) else set()
    merged.update(os.fsdecode(os.fsencode(r)) for r in normalise_roots(roots))
    registry[str(db)] = {"roots": sorted(merged), "last_used": time.time()}
    path = _registry_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(registry, indent=1), encoding="utf-8", errors="surrogateescape")
        os.replace(tmp, path)
    except OSError:
        pass


def find_db(cwd: Path | None = None) -> Path | None:
    """The index covering ``cwd`` (deepest root), else the one used last, else None."""
    here = os.path.abspath(cwd or Path.cwd())
    best: tuple[int, float, str] | None = None
    latest: tuple[float, str] | None = None
    for db, entry in _load_registry().items():
        if not isinstance(entry, dict) or not Path(db).exists():
            continue
        used = float(entry.get("last_used", 0) or 0)  # type: ignore[arg-type]
        if latest is None or used > latest[0]:
            latest = (used, db)
        roots = entry.get("roots")
        for root in roots if isinstance(roots, list) else []:
            if here == root or here.startswith(str(root).rstrip("/") + "/"):
                candidate = (len(str(root)), used, db)
                if best is None or candidate > best:
                    best = candidate
    if best is not None:
        return Path(best[2])
    return Path(latest[1]) if latest else None


def resolve_db(db: str | Path | None, roots: Sequence[Path | str] = ()) -> Path | None:
    """--db, then $ARTLENS_DB, then the index of ``roots``, then the index covering cwd."""
    if db:
        return Path(db).expanduser()
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    if roots:
        return default_db(roots)
    return find_db()
