"""artlens store: everything below the UI (index, scanning, runs, hashing, inspection).

This package never imports Textual or Rich, so the CLI, the TUI and scripts share it.
"""

__version__ = "0.1.0"

from store import _lean_imports

_lean_imports.install()
