"""Who answers for a deletion: a root's owners, and the audit log of its trash.

A root's ``.artlens.toml`` may name ``owners = ["alice", "bob"]`` (user names).  Then only
they may ``retention apply`` and ``trash purge`` there; restore stays open to everyone.
This is accountability, not a security boundary: whoever can write the root can edit that
file too.  Every apply, restore and purge appends one line to
``<root>/.artlens-trash/audit.jsonl`` (who, when, plan id, items, bytes).  The log sits in a
folder others may write, so it is validated like the manifest and only ever displayed:
nothing in it drives a file operation.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pwd
import stat
import time
from dataclasses import dataclass
from typing import Any, Protocol

from store.errors import ArtlensError
from store.retention.jsonl import TORN, json_lines
from store.safeparse import load_toml

AUDIT = "audit.jsonl"
OWNERS_FILE = ".artlens.toml"
MAX_AUDIT_BYTES = 64 << 20
MAX_CONFIG_BYTES = 1 << 20
OPS = ("apply", "restore", "purge")


class NotAnOwner(ArtlensError):
    """This user is not among the root's owners; the message names them."""


class _Result(Protocol):
    size: int


class _Report(Protocol):
    @property
    def done(self) -> list[Any]: ...

    @property
    def skipped(self) -> list[Any]: ...

    @property
    def bytes_done(self) -> int: ...


@dataclass(frozen=True)
class AuditRecord:
    ts: float
    op: str
    user: str
    uid: int
    items: int
    bytes: int
    skipped: int
    plan: str | None


def current_user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def owners_of(root_fd: int) -> list[str]:
    """The ``owners`` a root's ``.artlens.toml`` names, read by fd (never through a link).

    Only a missing file names none: one that cannot be read (a link, a FIFO) is an error,
    since "no owners" would let anyone delete."""
    try:
        fd = os.open(
            OWNERS_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=root_fd
        )
    except FileNotFoundError:
        return []
    except OSError as exc:
        why = "not a regular file" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise ArtlensError(f"{OWNERS_FILE}: cannot read owners ({why})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtlensError(f"{OWNERS_FILE}: cannot read owners (not a regular file)")
        data = os.pread(fd, MAX_CONFIG_BYTES + 1, 0)
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ArtlensError(f"{OWNERS_FILE} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        parsed = load_toml(data.decode("utf-8"))
    except ValueError as exc:  # not UTF-8, not TOML, or nested too deeply
        message = " ".join(str(exc).split())[:200]
        raise ArtlensError(f"{OWNERS_FILE}: cannot read owners ({message})") from None
    owners = parsed.get("owners")
    if owners is None:
        return []
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        raise ArtlensError(f"{OWNERS_FILE}: 'owners' must be a list of user names")
    return [o for o in owners if o]


def check_owner(root_fd: int, root: str) -> None:
    """Refuse (``NotAnOwner``, one line) when the root names owners and this user is none."""
    owners = owners_of(root_fd)
    if not owners:
        return
    user = current_user()
    if user not in owners:
        from store.safetext import visible

        names = ", ".join(visible(o) for o in owners[:10])
        raise NotAnOwner(
            f"{visible(root)} is owned by {names} ({OWNERS_FILE}); "
            f"{visible(user)} may restore but not delete there"
        )


def append(trash_fd: int, op: str, report: _Report, *, plan: str | None = None) -> None:
    """One line for one operation, appended and fsynced (O_NOFOLLOW, our own file)."""
    record = {
        "v": 1,
        "ts": time.time(),
        "op": op,
        "user": current_user(),
        "uid": os.geteuid(),
        "plan": plan,
        "items": len(report.done),
        "bytes": report.bytes_done,
        "skipped": len(report.skipped),
    }
    try:
        fd = os.open(
            AUDIT,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
            0o600,
            dir_fd=trash_fd,
        )
    except OSError:
        return  # an unusable log never stops the operation it records
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
            os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
            os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _record(raw: Any) -> AuditRecord:
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise ValueError("not an audit record of this version")
    ts, op, user, uid = raw.get("ts"), raw.get("op"), raw.get("user"), raw.get("uid")
    items, size, skipped, plan = (
        raw.get("items"),
        raw.get("bytes"),
        raw.get("skipped"),
        raw.get("plan"),
    )
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        raise ValueError("'ts' is not a time")
    if op not in OPS:
        raise ValueError("unknown 'op'")
    if not isinstance(user, str) or len(user) > 256:
        raise ValueError("'user' is not a name")
    for name, value in (("uid", uid), ("items", items), ("bytes", size), ("skipped", skipped)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name!r} is not a count")
    if plan is not None and (not isinstance(plan, str) or len(plan) > 256):
        raise ValueError("'plan' is not a plan id")
    assert isinstance(uid, int) and isinstance(items, int)
    assert isinstance(size, int) and isinstance(skipped, int)
    return AuditRecord(float(ts), str(op), user, uid, items, size, skipped, plan)


def read_audit(trash_fd: int) -> tuple[list[AuditRecord], list[str]]:
    """Every valid audit record, oldest first, and one problem line per line skipped."""
    try:
        fd = os.open(
            AUDIT, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=trash_fd
        )
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{AUDIT}: cannot read ({exc.strerror or exc})"]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [], [f"{AUDIT}: not a regular file; not read"]
        data = os.pread(fd, MAX_AUDIT_BYTES, 0)
    finally:
        os.close(fd)
    records: list[AuditRecord] = []
    problems: list[str] = []
    for number, value in json_lines(data):
        try:
            if value is TORN:
                raise ValueError("not JSON (a torn write?)")
            records.append(_record(value))
        except ValueError as exc:
            problems.append(f"{AUDIT} line {number}: {exc}; skipped")
    return records, problems
