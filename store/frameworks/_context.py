"""Shared, precomputed views of the scanner's listing for the detectors."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping

from store.frameworks._io import RootLike, basename, display_name, root_name
from store.frameworks.model import DirListing, RunSpec

_EMPTY = DirListing(frozenset(), frozenset())


class DetectContext:
    """The root, its folder listing, and lookups every detector needs."""

    def __init__(self, root: RootLike, listing: Mapping[str, DirListing]) -> None:
        self.root = root
        self.listing = listing
        self.paths: list[str] = sorted(listing)
        self.by_name: dict[str, list[str]] = {}
        for rel in self.paths:
            if rel:
                self.by_name.setdefault(basename(rel), []).append(rel)
        self._names: dict[str, str] = {}

    def has_file_starting(self, rel: str, prefix: str) -> bool:
        """Any file of ``rel`` whose name starts with ``prefix``: one substring search
        instead of a Python test per file (detectors ask this of every folder)."""
        return "\0" + prefix in self._names_of(rel)

    def has_file_ending(self, rel: str, suffix: str) -> bool:
        return suffix + "\0" in self._names_of(rel)

    def _names_of(self, rel: str) -> str:
        """The folder's file names joined by NUL, which no name can hold."""
        names = self._names.get(rel)
        if names is None:
            names = self._names[rel] = "\0" + "\0".join(self.entry(rel).files) + "\0"
        return names

    def folder_run(self, rel: str, framework: str, name: str | None = None) -> RunSpec:
        """A run named after its folder (the root's own name for '') whose experiment is
        the parent folder: how layouts without their own names are shown."""
        parent = rel.rpartition("/")[0]
        return RunSpec(
            path=rel,
            framework=framework,
            name=name if name is not None else display_name(basename(rel) or root_name(self.root)),
            experiment=display_name(basename(parent)) if parent else None,
        )

    def entry(self, rel: str) -> DirListing:
        return self.listing.get(rel, _EMPTY)

    def below(self, rel: str) -> Iterator[str]:
        """Every listed folder strictly below ``rel``."""
        if not rel:
            yield from (p for p in self.paths if p)
            return
        prefix = rel + "/"
        start = bisect.bisect_left(self.paths, prefix)
        for path in self.paths[start:]:
            if not path.startswith(prefix):
                break
            yield path
