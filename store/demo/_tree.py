"""Shared pieces of the demo writers: the tree that records mtimes, the result types, curves.

Everything is derived from ``seed`` and ``now`` (contents and mtimes), so two trees written to the
same place are byte-identical.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from store.errors import ArtlensError

HOST = "gpu-node-07"

USER = "ada"

PID = 48213

GIT_COMMIT = "3f9c2a1e7b5d4c8a9e0f1b2c3d4e5f6a7b8c9d0e"

DANGEROUS_COMMAND = "echo this pickle would have run a command"

MINUTE = 60.0

HOUR = 3600.0

DAY = 86400.0


class DemoError(ArtlensError):
    """The demo could not be written (or continued); the message is one line for the user."""


@dataclass(frozen=True)
class DemoRun:
    """One run folder in the demo and the framework that wrote it."""

    path: Path
    framework: str


@dataclass(frozen=True)
class DemoInfo:
    """What ``write_demo`` produced: the runs, the live run's folder and the planted hazards."""

    dest: Path
    runs: tuple[DemoRun, ...]
    live_run: Path
    hazards: Mapping[str, Path] = field(default_factory=dict)


class Tree:
    """Writes files under ``root`` and remembers the mtime each should end up with."""

    def __init__(self, root: Path, now: float, seed: int) -> None:
        self.root = root
        self.now = now
        self.rng = random.Random(seed)
        self.mtimes: dict[bytes, float] = {}
        self.folders: dict[bytes, float] = {}
        self.runs: list[DemoRun] = []
        self.hazards: dict[str, Path] = {}

    def at(self, age: float) -> float:
        """The timestamp ``age`` seconds before ``now``."""
        return self.now - age

    def _path(self, rel: str) -> bytes:
        return os.fsencode(self.root) + b"/" + os.fsencode(rel)

    def write(self, rel: str, data: bytes | str, age: float) -> Path:
        path = self._path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        self.mtimes[path] = self.at(age)
        return self.root / rel

    def json(self, rel: str, value: object, age: float, *, indent: int = 2) -> Path:
        return self.write(rel, json.dumps(value, indent=indent, sort_keys=True) + "\n", age)

    def yaml(self, rel: str, value: object, age: float) -> Path:
        return self.write(rel, yaml.safe_dump(value, default_flow_style=False), age)

    def symlink(self, rel: str, target: str, age: float) -> Path:
        path = self._path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(os.fsencode(target), path)
        self.mtimes[path] = self.at(age)
        return self.root / rel

    def mkdir(self, rel: str, age: float) -> Path:
        """An empty folder, which keeps its own mtime."""
        path = self._path(rel)
        os.makedirs(path, exist_ok=True)
        self.folders[path] = self.at(age)
        return self.root / rel

    def run(self, rel: str, framework: str) -> None:
        self.runs.append(DemoRun(self.root / rel, framework))

    def id_hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(digits * 4):0{digits}x}"

    def id_wandb(self) -> str:
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))

    def floats(self, count: int, scale: float) -> list[float]:
        return [self.rng.gauss(0.0, scale) for _ in range(count)]

    def finish(self) -> None:
        """Apply the recorded mtimes; a folder gets the newest mtime of what it holds."""
        newest: dict[bytes, float] = dict(self.folders)
        for path, mtime in [*self.mtimes.items(), *self.folders.items()]:
            if path not in self.folders:
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            parent = os.path.dirname(path)
            root = os.fsencode(self.root)
            while len(parent) >= len(root):
                newest[parent] = max(newest.get(parent, mtime), mtime)
                if parent == root:
                    break
                parent = os.path.dirname(parent)
        for folder in sorted(newest, key=len, reverse=True):
            os.utime(folder, (newest[folder], newest[folder]))


def stamp(ts: float, pattern: str) -> str:
    return time.strftime(pattern, time.gmtime(ts))


def iso(ts: float) -> str:
    return stamp(ts, "%Y-%m-%dT%H:%M:%S") + f".{int(ts * 1e6) % 1_000_000:06d}"


def curve(rng: random.Random, steps: int, start: float, floor: float, noise: float) -> list[float]:
    """A loss curve: exponential decay towards ``floor`` with multiplicative noise."""
    rate = 4.0 / max(steps, 1)
    return [
        round(floor + (start - floor) * math.exp(-rate * i) * (1 + rng.gauss(0, noise)), 4)
        for i in range(steps)
    ]


def accuracy(rng: random.Random, steps: int, final: float) -> list[float]:
    return [
        round(
            min(
                0.999,
                final - (final - 0.5) * math.exp(-4.0 * (i + 1) / steps) + rng.gauss(0, 0.005),
            ),
            4,
        )
        for i in range(steps)
    ]
