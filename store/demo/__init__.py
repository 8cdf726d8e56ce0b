"""The demo tree behind ``artlens demo``: realistic training outputs and one run still writing."""

from __future__ import annotations

from store.demo._live import simulate_training
from store.demo._tree import DANGEROUS_COMMAND, DemoError, DemoInfo, DemoRun
from store.demo._write import LIVE_RUN, write_demo

__all__ = [
    "DANGEROUS_COMMAND",
    "LIVE_RUN",
    "DemoError",
    "DemoInfo",
    "DemoRun",
    "simulate_training",
    "write_demo",
]
