"""Retention policies: what to keep, from ``.artlens.toml``, the user config or CLI flags.

Keep rules are a union, as in restic/borg ``forget``: a checkpoint is kept when ANY rule
keeps it, and the plan names every rule that did.  A policy with no rule at all removes
nothing.  Files that do not validate fail with one line naming the file and the line, so a
typo never turns into "keep nothing".
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import platformdirs

from store.errors import ArtlensError
from store.frameworks import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from store.metric_direction import direction_of
from store.retention.globs import GlobSet, compile_globs
from store.safefile import NotRegularFileError, absent, read_capped, users_own
from store.safeparse import NestingError, load_toml

POLICY_FILE = ".artlens.toml"
INVALID_POLICY = "invalid policy file"
"""The source of a policy whose file could not be used: it keeps everything, and its pins
are unknown, so the files it holds are kept in every root that holds them too."""
Mode = Literal["min", "max"]

_MAX_SIZE = (1 << 63) - 1
"""The largest size a saved plan (and the index) can hold: 8 EiB."""
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?b?)\s*$", re.I)
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.I)
_AGE_UNITS = {"w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_RULE_KEYS = frozenset({"keep_last", "keep_best", "metric", "mode", "keep_within"})
_TOP_KEYS = _RULE_KEYS | {"budget", "pin", "protect_live_newest", "rule"}
_SELECTOR_KEYS = frozenset({"match", "framework"})


class PolicyError(ArtlensError):
    """A policy that cannot be used; ``str()`` is one line naming the file and line."""


def parse_size(text: str | int) -> int:
    """Bytes in ``"500G"``, ``"1.5TiB"``, ``"200MB"`` or a plain number.

    A bare unit letter and ``XiB`` are binary (as du and ncdu print them); ``XB`` is decimal.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a size: {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"negative size: {text}")
        if text > _MAX_SIZE:
            raise ValueError(f"not a size: {str(text)[:40]} is too large (below 8 EiB)")
        return text
    match = _SIZE.match(str(text))
    if match is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 500G, 1.5TiB, 200MB)")
    number, unit, suffix = float(match.group(1)), match.group(2).lower(), match.group(3).lower()
    if not unit and not number.is_integer():  # 0.5 bytes: 0, a budget that removes all
        raise ValueError(
            f"not a size: {str(text).strip()[:40]!r} (bytes are whole: give a unit, e.g. 0.5G)"
        )
    power = "kmgtpe".find(unit) + 1 if unit else 0
    base = 1000 if suffix == "b" and unit else 1024
    size = number * base**power
    if not math.isfinite(size) or size > _MAX_SIZE:
        raise ValueError(f"not a size: {str(text).strip()[:40]!r} is too large (below 8 EiB)")
    return int(size)


def parse_age(text: str | int | float) -> float:
    """Seconds in ``"7d"``, ``"12h"``, ``"2w"``, ``"1d12h"``, ``"90m"`` or plain seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not an age: {text!r}")
    if isinstance(text, (int, float)):
        try:
            seconds = float(text)
        except OverflowError:  # a TOML integer has no bound
            raise ValueError(f"not an age: {str(text)[:40]} is too large") from None
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"not an age: {text!r}")
        return seconds
    compact = str(text).strip().replace(" ", "")
    parts = _AGE_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not an age: {text!r} (use e.g. 7d, 12h, 2w, 1d12h)")
    total = sum(float(n) * _AGE_UNITS[u.lower()] for n, u in parts)
    if not math.isfinite(total):
        raise ValueError(f"not an age: {compact[:40]!r} is too large")
    return total


MAX_KEEP_WITHIN = 100 * 52 * 7 * 86400.0
"""The longest ``keep_within`` (100 years of weeks, 5200w): past it an age says "keep
forever", which a pin says, and its expiry is no date a plan can show."""


def keep_within_problem(seconds: float) -> str | None:
    """Why ``seconds`` is no ``keep_within`` (one line), or None.  Under a second it keeps
    nothing by age: alone it would make the plan remove every unit no other rule keeps,
    and beside ``keep_best`` it turns off keep_best's guard (a run with no metric value
    keeps all): never the answer to a typo such as ``"0d"``."""
    if seconds < 1:
        return (
            "keeps nothing by age (give 1s or more, e.g. 7d; to keep nothing by age, leave "
            "keep_within out)"
        )
    if seconds > MAX_KEEP_WITHIN:
        return "is too long (at most 5200w, 100 years; pin what is kept forever)"
    return None


def format_age(seconds: float) -> str:
    """The shortest exact form of an age, for reasons like "younger than 7d"."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def metric_mode(metric: str) -> Mode | None:
    """Whether lower or higher is better, from the metric's name; None when unsure."""
    return direction_of(metric)


@dataclass(frozen=True)
class KeepRules:
    """The per-run keep rules; None means "this rule is not used"."""

    keep_last: int | None = None
    keep_best: int | None = None
    metric: str | None = None
    mode: Mode | None = None
    keep_within: float | None = None
    """Seconds: anything younger than this is kept."""

    def any_rule(self) -> bool:
        return any(v is not None for v in (self.keep_last, self.keep_best, self.keep_within))

    def merged(self, override: KeepRules) -> KeepRules:
        """These rules with every key the override sets replaced."""
        changes = {k: v for k, v in override.__dict__.items() if v is not None}
        return replace(self, **changes)


@dataclass(frozen=True)
class Rule:
    """Overrides for the runs a glob (run folder) or a framework selects."""

    rules: KeepRules
    match: str | None = None
    framework: str | None = None
    matcher: GlobSet | None = field(default=None, compare=False, repr=False)

    def selects(self, run_path: str, framework: str) -> bool:
        if self.framework is not None and self.framework != framework:
            return False
        if self.matcher is not None:
            return self.matcher.matches(run_path) or self.matcher.matches(run_path + "/")
        return True


@dataclass(frozen=True)
class Policy:
    """Everything the planner needs for one root."""

    rules: KeepRules = KeepRules()
    budget: int | None = None
    """Bytes: remove the oldest unprotected checkpoints until the root fits."""
    pin: tuple[str, ...] = ()
    protect_live_newest: bool = True
    overrides: tuple[Rule, ...] = ()
    source: str = "defaults"
    """Where the policy came from: a file path, 'flags' or 'defaults'."""

    def for_run(self, run_path: str, framework: str) -> KeepRules:
        """The rules for one run: later overrides win over earlier ones and the base."""
        rules = self.rules
        for override in self.overrides:
            if override.selects(run_path, framework):
                rules = rules.merged(override.rules)
        return rules

    def removes_anything(self) -> bool:
        return (
            self.rules.any_rule()
            or self.budget is not None
            or any(o.rules.any_rule() for o in self.overrides)
        )

    def describe(self) -> str:
        """One line for plans, logs and the retention_actions table."""
        parts: list[str] = []
        r = self.rules
        if r.keep_last is not None:
            parts.append(f"keep_last={r.keep_last}")
        if r.keep_best is not None:
            parts.append(f"keep_best={r.keep_best} {r.metric} ({r.mode or '?'})")
        if r.keep_within is not None:
            parts.append(f"keep_within={format_age(r.keep_within)}")
        if self.budget is not None:
            parts.append(f"budget={self.budget}B")
        if self.pin:
            parts.append(f"pin={list(self.pin)}")
        if not self.protect_live_newest:
            parts.append("protect_live_newest=false")
        if self.overrides:
            parts.append(f"{len(self.overrides)} rule override(s)")
        return f"{', '.join(parts) or 'no rules'} [{self.source}]"


def from_flags(
    *,
    keep_last: int | None = None,
    keep_best: int | None = None,
    metric: str | None = None,
    mode: str | None = None,
    older_than: str | float | None = None,
    keep_within_budget: str | int | None = None,
    pin: tuple[str, ...] = (),
) -> Policy:
    """The policy CLI flags describe (``--older-than AGE`` keeps what is younger than AGE)."""
    table: dict[str, Any] = {}
    if keep_last is not None:
        table["keep_last"] = keep_last
    if keep_best is not None:
        table["keep_best"] = keep_best
    if metric is not None:
        table["metric"] = metric
    if mode is not None:
        table["mode"] = mode
    if older_than is not None:
        table["keep_within"] = older_than
    if keep_within_budget is not None:
        table["budget"] = keep_within_budget
    if pin:
        table["pin"] = list(pin)
    try:
        return _build(table, "flags", _no_lines)
    except PolicyError as exc:
        message = str(exc).removeprefix("?: ")
        if message.startswith("keep_within: "):  # the flag's name, not the file key's
            message = "--older-than: " + message.removeprefix("keep_within: ")
        raise PolicyError(f"invalid flags: {message}") from None


def _no_lines(_: str, __: int | None = None) -> int | None:
    return None


ROOT_FILE_KEYS = frozenset({"retention", "checklist", "owners", "runs"})
"""What a root's ``.artlens.toml`` may hold at its top level: retention, ``artlens check``'s
checklist, the owners who may delete, and generic run detection."""


def load_policy_file(
    path: Path,
    *,
    table_path: tuple[str, ...] = ("retention",),
    top_keys: frozenset[str] | None = None,
) -> Policy:
    """The policy in one TOML file; an empty policy when the file has no retention table.

    ``top_keys``: the only keys the file may hold at its top level (a root's own file): a
    ``[retension]`` typo, or ``[[rule]]`` and ``keep_last`` written outside ``[retention]``,
    would otherwise be read as no policy (or another file's) without a word."""
    try:
        text = ""
        text = _read_capped(path).decode("utf-8")
        data = load_toml(text)
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except NestingError as exc:
        raise PolicyError(f"{path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(_toml_error(path, str(exc), text)) from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if top_keys is not None and isinstance(data, dict):
        _check_top_keys(path, data, text, top_keys)
    table: Any = data
    for part in table_path:
        if not isinstance(table, dict) or part not in table:
            return Policy(source=str(path))
        table = table[part]
    finder = _LineFinder(text, table_path)
    if not isinstance(table, dict):
        line = finder.table_line()
        raise PolicyError(f"{path}:{line or '?'}: [{'.'.join(table_path)}] must be a table")
    try:
        return _build(table, str(path), finder.line_of)
    except PolicyError as exc:
        raise PolicyError(f"{path}:{exc}") from None


def load_policy(root: Path, *, user_config: Path | None = None) -> Policy:
    """The policy for ``root``: its ``.artlens.toml``, else the user config's
    ``[root."<path>"]`` section, else the user config's ``[retention]``, else no rules."""
    root_file = root / POLICY_FILE
    if not absent(root_file):  # a FIFO or a link there is an error, not "no policy"
        policy = load_policy_file(root_file, top_keys=ROOT_FILE_KEYS)
        if policy.source == str(root_file) and policy != Policy(source=str(root_file)):
            return policy
    config = Path(
        users_own(user_config or Path(platformdirs.user_config_dir("artlens")) / "config.toml")
    )
    if absent(config):
        return Policy()
    try:
        data = load_toml(_read_capped(config).decode("utf-8"))
    except (OSError, ValueError):
        data = None  # load_policy_file below reports the precise error
    roots = data.get("root", {}) if isinstance(data, dict) else {}
    if isinstance(roots, dict):
        named = [name for name in roots if _names_root(name, root)]
        if len(named) > 1:
            shown = " and ".join(f'[root."{name[:200]}"]' for name in named[:2])
            raise PolicyError(f"{config}: {shown} both name {root}: keep one")
        for name in named:
            section = roots[name]
            if isinstance(section, dict) and "retention" in section:
                return load_policy_file(config, table_path=("root", name, "retention"))
            return load_policy_file(config, table_path=("root", name))
    return load_policy_file(config)


def _names_root(name: str, root: Path) -> bool:
    """Whether a ``[root."<name>"]`` section is about ``root``: the same path, or the same
    folder by another path (a link to it, or it opened through a link).  By its path
    alone, a root opened as ``/mnt/exp`` (a link to ``/data/exp``) took the user's global
    ``[retention]`` (keep_last 1) in place of its own (keep_last 10)."""
    where = os.path.abspath(os.path.expanduser(name))
    if where == os.path.abspath(root) or os.path.realpath(where) == os.path.realpath(root):
        return True
    try:
        one, other = os.stat(where), os.stat(root)
    except (OSError, ValueError):
        return False
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def _check_top_keys(path: Path, data: dict[str, Any], text: str, known: frozenset[str]) -> None:
    for name in data:
        if name in known:
            continue
        line = _top_line(text, name)
        where = f"{path}:{line if line is not None else '?'}"
        if name in _TOP_KEYS:
            table = "[[retention.rule]]" if name == "rule" else "[retention]"
            raise PolicyError(f"{where}: {name!r} is outside [retention] (write it in {table})")
        shown = repr(name[:80]) + ("..." if len(name) > 80 else "")
        raise PolicyError(
            f"{where}: unknown key {shown} at the top of {POLICY_FILE}"
            f" (known: {', '.join(sorted(known))})"
        )


def _top_line(text: str, name: str) -> int | None:
    """The first line that sets the top-level key ``name`` or opens a table under it."""
    finder = _LineFinder(text, ())
    line = finder.line_of(name)
    for number, row in enumerate(finder.lines, 1):
        if line is not None and number >= line:
            break
        match = _LineFinder._HEADER.match(row)
        if match and finder._header_parts(match.group(2))[:1] == (name,):
            return number
    return line


MAX_POLICY_BYTES = 1 << 20


def _read_capped(path: Path) -> bytes:
    """At most ``MAX_POLICY_BYTES`` of a regular file (never a FIFO or a device)."""
    try:
        data, cut = read_capped(path, MAX_POLICY_BYTES)
    except NotRegularFileError:
        raise OSError(0, "not a regular file") from None
    if cut:
        raise OSError(0, f"larger than {MAX_POLICY_BYTES} bytes")
    return data


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _toml_error(path: Path, message: str, text: str) -> str:
    """``file:line: message`` from tomllib's "(at line L, column C)" or "(at end of document)"."""
    message = _one_line(message)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if where:
        return f"{path}:{where.group(1)}: {message[: where.start()]} (column {where.group(2)})"
    end = re.search(r"\s*\(at end of document\)$", message)
    if end:
        last = max(1, len(text.rstrip("\n").splitlines()))
        return f"{path}:{last}: {message[: end.start()]} (at end of file)"
    return f"{path}: {message}"


class _LineFinder:
    """Finds the line of a key inside a table, for semantic errors tomllib cannot see."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str, table_path: tuple[str, ...]) -> None:
        self.lines = text.splitlines()
        self.table = table_path

    def _header_parts(self, header: str) -> tuple[str, ...]:
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', header)
        return tuple(a or b or c for a, b, c in parts)

    def table_line(self) -> int | None:
        for number, line in enumerate(self.lines, 1):
            match = self._HEADER.match(line)
            if match and self._header_parts(match.group(2)) == self.table:
                return number
        return None

    def line_of(self, key_name: str, rule_index: int | None = None) -> int | None:
        """The line where ``key_name`` is set in the table (or in its n-th ``rule``)."""
        current: tuple[str, ...] = ()
        rule_seen = -1
        wanted = (*self.table, "rule") if rule_index is not None else self.table
        assign = re.compile(rf"^\s*(\"?){re.escape(key_name)}\1\s*=")
        dotted = re.compile(rf"^\s*{re.escape(key_name)}\s*[.=]")
        for number, line in enumerate(self.lines, 1):
            match = self._HEADER.match(line)
            if match:
                current = self._header_parts(match.group(2))
                if match.group(1) == "[[" and current == wanted:
                    rule_seen += 1
                continue
            in_table = current == wanted and (rule_index is None or rule_seen == rule_index)
            if in_table and (assign.match(line) or dotted.match(line)):
                return number
        return None


def _build(
    table: Mapping[str, Any],
    source: str,
    line_of: Any,
) -> Policy:
    def fail(key_name: str, message: str, rule_index: int | None = None) -> PolicyError:
        line = line_of(key_name, rule_index)
        return PolicyError(f"{line if line is not None else '?'}: {message}")

    for name in table:
        if name not in _TOP_KEYS:
            known = ", ".join(sorted(_TOP_KEYS))
            raise fail(name, f"unknown key {name!r} in [retention] (known: {known})")
    rules = _keep_rules(table, fail, None)
    budget: int | None = None
    if "budget" in table:
        try:
            budget = parse_size(table["budget"])
        except ValueError as exc:
            raise fail("budget", f"budget: {exc}") from None
    pins_raw = table.get("pin", [])
    if isinstance(pins_raw, str):
        pins_raw = [pins_raw]
    if not isinstance(pins_raw, list) or not all(isinstance(p, str) for p in pins_raw):
        raise fail("pin", "pin must be a list of globs")
    protect = table.get("protect_live_newest", True)
    if not isinstance(protect, bool):
        raise fail("protect_live_newest", "protect_live_newest must be true or false")
    overrides: list[Rule] = []
    rule_list = table.get("rule", [])
    if not isinstance(rule_list, list):
        raise fail("rule", "rule must be an array of tables ([[retention.rule]])")
    for index, entry in enumerate(rule_list):
        if not isinstance(entry, dict):
            raise fail("rule", "each [[retention.rule]] must be a table")
        for name in entry:
            if name not in _RULE_KEYS | _SELECTOR_KEYS:
                raise fail(name, f"unknown key {name!r} in [[retention.rule]]", index)
        match = entry.get("match")
        framework = entry.get("framework")
        if match is not None and not isinstance(match, str):
            raise fail("match", "match must be a glob string", index)
        if framework is not None and not isinstance(framework, str):
            raise fail("framework", "framework must be a string", index)
        if framework is not None and registry.get(framework) is None:
            # a misspelt name selects no run: its rule would silently never apply, and the
            # base rules (often stricter) would remove what the rule was written to keep
            known = ", ".join(sorted(registry.names()))
            raise fail("framework", f"unknown framework {framework!r} (known: {known})", index)
        if match is None and framework is None:
            raise fail("keep_last", "a [[retention.rule]] needs match = GLOB or framework = NAME")
        override = _keep_rules(entry, fail, index)
        base_metric = override.metric or rules.metric
        if override.keep_best is not None and base_metric is None:
            raise fail("keep_best", "keep_best needs metric = NAME", index)
        overrides.append(
            Rule(override, match, framework, compile_globs([match]) if match else None)
        )
    return Policy(rules, budget, tuple(pins_raw), protect, tuple(overrides), source)


def _keep_rules(table: Mapping[str, Any], fail: Any, rule_index: int | None) -> KeepRules:
    counts: dict[str, int | None] = {}
    for name in ("keep_last", "keep_best"):
        value = table.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise fail(name, f"{name} must be a whole number, not {value!r}", rule_index)
        if value is not None and value < 0:
            raise fail(name, f"{name} must not be negative ({value})", rule_index)
        counts[name] = value
    metric = table.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise fail("metric", "metric must be a metric name", rule_index)
    mode = table.get("mode")
    if mode is not None and mode not in ("min", "max"):
        raise fail("mode", f'mode must be "min" or "max", not {mode!r}', rule_index)
    if counts["keep_best"] is not None and rule_index is None and metric is None:
        raise fail("keep_best", "keep_best needs metric = NAME", rule_index)
    if metric is not None and mode is None:
        mode = metric_mode(metric)
        if mode is None:
            raise fail(
                "metric",
                f'cannot tell whether {metric!r} is better low or high: add mode = "min" or "max"',
                rule_index,
            )
    keep_within: float | None = None
    if "keep_within" in table:
        try:
            keep_within = parse_age(table["keep_within"])
        except ValueError as exc:
            raise fail("keep_within", f"keep_within: {exc}", rule_index) from None
        problem = keep_within_problem(keep_within)
        if problem is not None:
            given = str(table["keep_within"])[:40]
            raise fail("keep_within", f"keep_within: {given!r} {problem}", rule_index)
    return KeepRules(counts["keep_last"], counts["keep_best"], metric, mode, keep_within)
