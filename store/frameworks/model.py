"""The data types shared by run detection and the per-framework readers."""

from __future__ import annotations

from dataclasses import dataclass, field

from store.safetext import printable_surrogates

STATUSES = ("running", "finished", "failed", "killed", "unknown")


@dataclass(frozen=True)
class DirListing:
    """The entries of one folder, as the scanner saw them."""

    dirs: frozenset[str]
    files: frozenset[str]  # regular files and symlinks


@dataclass(frozen=True)
class RunSpec:
    """One training run found under a root.

    ``path`` is root-relative POSIX ('' = the root).  It is unique per root; for a Comet
    offline run it names the ``.zip`` archive, and for an MLflow SQLite run without an
    artifact folder under the root it is ``<db folder>/mlflow.db#<run_id>`` (no such folder).
    """

    path: str
    framework: str
    name: str
    experiment: str | None
    extra_paths: tuple[str, ...] = ()
    run_key: str | None = None


@dataclass
class MetricSummary:
    """The headline numbers of one metric series."""

    last: float | None
    last_step: int | None
    best: float | None
    best_step: int | None
    n: int
    direction: str | None  # 'min' | 'max' | None


UNREAD_PARTS = "unread_parts"
"""Meta key: the parts of a run (params, metrics) that a file not read whole leaves out."""
CUT_PARAMS = "cut_params"
"""Meta key: ``{"count": N, "at_least": bool}``: params the run's files hold that were not
kept (past the readers' caps; ``count`` a floor with ``at_least``): a diff cannot compare
them.  (A value kept but cut short carries a marker: ``flatten.is_cut``.)"""
REPEATED_KEYS = "repeated_keys"
"""Meta key: the run's params and metrics that depend on which value of a key one of its
files repeats counts (see ``store.frameworks._repeats``)."""


@dataclass
class RunInfo:
    """What a run's own files say about it."""

    params: dict[str, object]
    metrics: dict[str, MetricSummary]
    started: float | None
    ended: float | None
    status: str
    meta: dict[str, object]


Series = dict[str, list[tuple[int, float]]]


@dataclass
class Loaded:
    """A reader's raw result: full series plus metrics known only by their final value."""

    params: dict[str, object] = field(default_factory=dict)
    series: Series = field(default_factory=dict)
    finals: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    status: str = "unknown"
    meta: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unread: set[str] = field(default_factory=set)
    """What a file that could not be read (whole) leaves out: "params", "metrics".  A diff
    then does not take what is missing on this side for removed (``store.rundiff``)."""
    unread_why: dict[str, str] = field(default_factory=dict)
    """Part -> the first warning that marked it read in part (``warn_partial``), to say why."""

    def warn(self, message: str) -> None:
        """Record a one-line problem (newlines folded, length capped, an undecodable byte of
        a path in it as ``\\xNN``: warnings are printed and sent as JSON, as text)."""
        line = _one_line(message)
        if line not in self.warnings and len(self.warnings) < 100:
            self.warnings.append(line)

    def warn_partial(self, message: str, part: str, *more: str) -> None:
        """``warn``, and mark ``part`` (and ``more``: "params", "metrics") as read in part:
        what a file holds but a reader skipped or could not read must not pass for the
        whole (a best, a last value, a diff's "removed" would be wrong answers)."""
        self.warn(message)
        self.unread.update((part, *more))
        for name in (part, *more):
            self.unread_why.setdefault(name, _one_line(message))

    def take_problems(self, other: Loaded) -> None:
        """Carry over another reading's warnings and the parts it read in part (a reader
        that reads a sub-folder into a ``Loaded`` of its own and merges what it keeps)."""
        for message in other.warnings:
            self.warn(message)
        self.unread |= other.unread
        for part, why in other.unread_why.items():
            self.unread_why.setdefault(part, why)


def _one_line(message: str) -> str:
    """A warning as it is kept: newlines folded, an undecodable byte as ``\\xNN``, at most
    300 characters."""
    line = printable_surrogates(" ".join(message.split()))
    return line[:297] + "..." if len(line) > 300 else line
