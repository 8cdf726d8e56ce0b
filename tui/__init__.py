"""artlens user interfaces: the Textual explorer (``tui.app``) and the CLI (``tui.cli``).

Importing this package imports nothing heavy: the CLI must start fast for headless use.
"""
