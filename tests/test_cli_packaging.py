"""Packaging metadata: what pip, pipx and uv read from pyproject.toml."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT = Path(__file__).resolve().parent.parent


def _project() -> dict[str, Any]:
    data = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert isinstance(project, dict)
    return project


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = _project()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (PROJECT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_python_has_a_floor_and_no_cap() -> None:
    assert _project()["requires-python"] == ">=3.10"


def test_dev_extras_hold_textual_dev() -> None:
    dev = _project()["optional-dependencies"]["dev"]
    assert any(req.startswith("textual-dev") for req in dev)
