"""Retention on a remote host: planned, applied, restored and purged there, by its artlens.

Writes stay where the files are.  The client never hands a host a plan to trust: the host
plans with its own policy (``artlens retention plan --json`` there, saved there), and
apply names that saved plan by its id, so the host re-checks every item against its own
disk as a local apply does.  Every word sent is validated (plan ids, trash ids, ages);
the host's answer is read within bounds, checked for shape, and only ever shown: the
client writes nothing but the host's mirror, which the pull after each action brings up
to date (the result comes back through the feed).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from store.remote import mirror
from store.remote.config import Remote
from store.remote.transport import RemoteError, Session, shell_noise

PLAN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,80}$")
TRASH_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{5,80}$")
AGE = re.compile(r"^[0-9][0-9A-Za-z. ]{0,19}$")
MAX_ANSWER = 64 << 20
"""Bytes of a host's JSON answer (a plan of 100k items is about 40 MiB)."""
MAX_ROWS = 1_000_000
TIMEOUT = 3600.0
"""A move or purge of many files on a slow disk takes time; the host re-checks each."""


@dataclass(frozen=True)
class Row:
    """One item of a host's report: what it says happened to a path there."""

    root: str
    path: str
    outcome: str
    reason: str
    size: int


@dataclass
class HostReport:
    """A host's answer to apply, restore or purge, and the pull that followed."""

    host: str
    action: str
    applied: bool
    done: list[Row] = field(default_factory=list)
    skipped: list[Row] = field(default_factory=list)
    would: int = 0
    """Items a dry run would act on."""
    bytes_done: int = 0
    plan: str | None = None
    pulled: int | None = None
    """The mirror's last event after the pull; None when the pull failed."""
    pull_error: str | None = None


@dataclass(frozen=True)
class HostPlan:
    """A plan the host made and saved: its id there, and its totals."""

    host: str
    id: str
    bytes_freed: int
    removals: int
    kept: int
    warnings: tuple[str, ...]


def _answer(remote: Remote, args: list[str], *, reports: bool = False) -> dict[str, Any]:
    """Run ``artlens ARGS`` on the host and read its one JSON object.  ``reports``: the
    command is an apply, restore or purge, which exits 1 when it skipped an item: its
    report, with the skipped items, is the answer (an exit 1 naming none is a failure)."""
    with Session(remote.argv(args, words=2), timeout=TIMEOUT) as session:
        raw = session.read(MAX_ANSWER)
        code = session.finish(ok=(0, 1) if reports else (0,))
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            if code:
                raise RemoteError(session.failure("exit status 1")) from None
            raise RemoteError("the host's answer is not JSON" + shell_noise(raw)) from None
        if code and not (isinstance(data, dict) and data.get("skipped")):
            raise RemoteError(session.failure("exit status 1"))
    if not isinstance(data, dict):
        raise RemoteError("the host's answer is not a JSON object")
    return data


def _count(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value < 1 << 62:
        raise RemoteError(f"the host's answer: {what} is not a count")
    return value


def _text(value: Any, what: str, limit: int = 8192) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise RemoteError(f"the host's answer: {what} is not a string")
    return value


def _rows(value: Any, what: str) -> list[Row]:
    if not isinstance(value, list) or len(value) > MAX_ROWS:
        raise RemoteError(f"the host's answer: {what} is not a list")
    rows = []
    for item in value:
        if not isinstance(item, dict):
            raise RemoteError(f"the host's answer: an item of {what} is not an object")
        rows.append(
            Row(
                _text(item.get("root"), "root"),
                _text(item.get("path"), "path"),
                _text(item.get("outcome"), "outcome", 64),
                _text(item.get("reason"), "reason"),
                _count(item.get("size_bytes") or 0, "size_bytes"),
            )
        )
    return rows


def _report(remote: Remote, action: str, data: dict[str, Any], applied: bool) -> HostReport:
    report = HostReport(remote.name, action, applied)
    report.done = _rows(data.get("done", []), "done")
    report.skipped = _rows(data.get("skipped", []), "skipped")
    report.bytes_done = _count(data.get("bytes_done", 0), "bytes_done")
    would = data.get("would_remove", data.get("would_purge", 0))
    report.would = (
        len(_rows(would, "would_remove"))
        if isinstance(would, list)
        else _count(would, "would_purge")
    )
    plan = data.get("plan")
    if plan is not None:
        report.plan = _text(plan, "plan", 100)
    if applied:
        _pull(remote, report)
    return report


def _pull(remote: Remote, report: HostReport) -> None:
    """The result comes back through the feed: the mirror pulls what the host changed."""
    try:
        report.pulled = mirror.pull(remote).last_event
    except RemoteError as exc:
        report.pull_error = str(exc)


def plan(remote: Remote) -> HostPlan:
    """The host plans with its own policy and saves the plan there."""
    data = _answer(remote, ["retention", "plan", "--json"])
    plan_id = _text(data.get("id"), "id", 100)
    if not PLAN_ID.match(plan_id):
        raise RemoteError("the host's answer: not a plan id")
    items = data.get("items")
    if not isinstance(items, list) or len(items) > MAX_ROWS:
        raise RemoteError("the host's answer: items is not a list")
    removals = sum(1 for i in items if isinstance(i, dict) and i.get("keep") is False)
    freed = data.get("bytes_freed")
    if isinstance(freed, float) and math.isfinite(freed):
        freed = int(freed)
    warnings = data.get("warnings") or []
    if not isinstance(warnings, list):
        raise RemoteError("the host's answer: warnings is not a list")
    return HostPlan(
        remote.name,
        plan_id,
        _count(freed, "bytes_freed"),
        removals,
        len(items) - removals,
        tuple(_text(w, "warning", 1000) for w in warnings[:50]),
    )


def apply(remote: Remote, plan_id: str, *, yes: bool) -> HostReport:
    """Apply the host's saved plan ``plan_id`` there (a dry run unless ``yes``)."""
    if not PLAN_ID.match(plan_id):
        raise RemoteError(f"not a plan id: {plan_id[:100]!r}")
    args = ["retention", "apply", plan_id, "--json"] + (["--yes"] if yes else [])
    return _report(remote, "apply", _answer(remote, args, reports=True), yes)


def restore(remote: Remote, ids: list[str]) -> HostReport:
    """Restore trash entries ``ids`` on the host (``["--all"]`` for everything)."""
    if ids == ["--all"]:
        args = ["trash", "restore", "--all", "--json"]
    else:
        bad = [i for i in ids if not TRASH_ID.match(i)]
        if bad or not ids:
            raise RemoteError(f"not trash ids: {', '.join(repr(b[:80]) for b in bad[:3])}")
        args = ["trash", "restore", *ids, "--json"]
    return _report(remote, "restore", _answer(remote, args, reports=True), True)


def purge(remote: Remote, older_than: str, *, yes: bool) -> HostReport:
    """Purge the host's trash older than ``older_than`` there (a dry run unless ``yes``)."""
    if not AGE.match(older_than):
        raise RemoteError(f"not an age: {older_than[:40]!r}")
    args = ["trash", "purge", "--older-than", older_than, "--json"] + (["--yes"] if yes else [])
    return _report(remote, "purge", _answer(remote, args, reports=True), yes)
