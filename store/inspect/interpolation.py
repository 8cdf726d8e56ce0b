"""OmegaConf interpolations in the strings a pickle holds.

Lightning pickles a checkpoint's ``hyper_parameters`` as they were given, often an OmegaConf
``DictConfig`` whose state holds the raw strings, and resolving such a config calls the
resolver each ``${name:...}`` names.  Projects register resolvers that run code
(``OmegaConf.register_new_resolver("eval", eval)`` is common), so a checkpoint holding
``${eval:'__import__("os").system("id")'}`` runs it wherever it is loaded in such a
project (Lightning's ``load_from_checkpoint`` unpacks the config into the model, which
resolves it).  Nothing runs on a plain load: such a file is unknown, never dangerous.

A string is read as OmegaConf's grammar reads it (``OmegaConfGrammarLexer.g4``): an
interpolation opens with ``${`` and optional blanks, a resolver name is dotted IDs or
nested interpolations (``ns.${x}``, whose name is only known when resolved), then
optional blanks and ``:``; a node reference (``${model.dim}``) has no colon.  Escaped
``\\${`` is counted too (the worst reading: ``oc.decode`` undoes escapes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HARMLESS = frozenset(
    {
        "oc.env", "env", "oc.select", "oc.dict.keys", "oc.dict.values", "oc.deprecated",
        "hydra", "now", "python_version",
    }
)  # fmt: skip
"""Resolvers OmegaConf (``oc.*``; ``env`` before 2.2) and Hydra (``hydra``, ``now``,
``python_version``) register themselves, which read values, the environment or the clock
and never evaluate their arguments."""
READS_ENVIRONMENT = frozenset({"oc.env", "env"})
PARSES = frozenset({"oc.decode", "oc.create"})
"""Built-ins that parse a string into config when resolved (``oc.decode`` undoes escapes
and resolves the interpolations it finds, ``oc.create`` parses YAML), so the resolvers
they end up calling cannot be read off the file."""
_RUNS_CODE = frozenset({"eval", "exec", "python", "py", "import", "system", "shell", "call"})

MAX_INTERPOLATIONS = 10_000
"""Interpolations examined per pickle stream; past it: unknown."""
MAX_WALKED = 1 << 20
"""Characters walked over nested interpolations in resolver names and over resolvers'
arguments, per stream; past it: unknown."""
_NESTED_WINDOW = 4096
"""Characters looked at to find where a nested interpolation in a resolver name ends."""
SHOWN_VARIABLES = 8

_ARGS_WINDOW = 1 << 16
"""Characters of a resolver's arguments looked at for where the interpolation closes."""

_OPEN = "${"
_VALUE_RUN = re.compile(r"(?:\\[\\()\[\]{}:=, \t]|[A-Za-z0-9_ \t/\-+.%*@,:\[\]\\])*")
"""Characters OmegaConf's value tokens take outside quotes and braces (``ID``, ``INT``,
``FLOAT``, ``WS``, ``UNQUOTED_CHAR``, ``COMMA``, ``COLON``, brackets, and the escapes of
``ESC``, whose braces open nothing); ``$`` is one too, handled apart from ``${``."""
_QUOTE_END = {q: re.compile(rf"(?<!\\){q}") for q in ("'", '"')}
"""The end of a quoted value: its quote character, not after a backslash (ending later
than the lexer may only makes an interpolation more likely to close)."""
_BLANKS = re.compile(r"[ \t]*")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACE = re.compile(r"[{}]")


def _nested_end(text: str, start: int) -> tuple[int | None, int]:
    """Where the interpolation opening at ``start`` (``${``) ends (just past its ``}``),
    None when not within ``_NESTED_WINDOW`` characters; and the characters looked at."""
    depth = 0
    stop = min(len(text), start + _NESTED_WINDOW)
    for match in _BRACE.finditer(text, start + 1, stop):
        depth += 1 if match.group() == "{" else -1
        if depth == 0:
            return match.end(), match.end() - start
    return None, stop - start


@dataclass
class Interpolations:
    """What one pickle stream's strings hold, within its budgets."""

    seen: int = 0
    walked: int = 0
    over: bool = False
    variables: set[str] = field(default_factory=set)

    def reasons(self, text: str) -> list[str]:
        """Reasons (``unknown: ...`` and notes) for the interpolations in ``text``."""
        found: list[str] = []
        at = text.find(_OPEN)
        while at >= 0 and not self.over:
            self.seen += 1
            if self.seen > MAX_INTERPOLATIONS or self.walked > MAX_WALKED:
                self.over = True  # said once: the rest of the stream goes unexamined
                found.append(
                    "unknown: more OmegaConf interpolations than the scan examines "
                    f"({MAX_INTERPOLATIONS}, or {MAX_WALKED} characters): not all examined"
                )
                return found
            reason = self._one(text, at)
            if reason:
                found.append(reason)
            at = text.find(_OPEN, at + 2)
        return found

    def _one(self, text: str, at: int) -> str:
        """The reason for the interpolation opening at ``at``; "" for a node reference or
        a harmless resolver."""
        pos = _BLANKS.match(text, at + 2).end()  # type: ignore[union-attr]
        parts: list[str] = []
        computed = False
        while True:
            if text.startswith(_OPEN, pos):
                end, looked = _nested_end(text, pos)
                self.walked += looked
                if end is None:
                    return (
                        "unknown: holds an OmegaConf interpolation too long to read "
                        "(a resolver name may be computed in it)"
                    )
                computed, pos = True, end
            else:
                ident = _ID.match(text, pos)
                if ident is None:
                    return ""  # not a resolver name: a node reference, or not one at all
                parts.append(ident.group())
                pos = ident.end()
            if not text.startswith(".", pos):
                break
            pos += 1
        pos = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith(":", pos):
            return ""  # ${model.dim}, ${${which}}: a node, selected, never called
        if not self._may_close(text, pos + 1):
            return ""  # OmegaConf fails to parse the string: no resolver is called
        if computed:
            return (
                "unknown: holds an OmegaConf interpolation whose resolver name is itself "
                "an interpolation: which resolver it calls is only known when resolved"
            )
        name = ".".join(parts)
        if name in READS_ENVIRONMENT:
            variable = _ID.match(text, _BLANKS.match(text, pos + 1).end())  # type: ignore[union-attr]
            return self._environment(variable.group() if variable else "")
        if name in HARMLESS:
            return ""
        shown = name if len(name) <= 60 else name[:57] + "..."
        if name in PARSES:
            return (
                f"unknown: holds an OmegaConf ${{{shown}:...}} interpolation: it parses a "
                "string into config when resolved, so the resolvers it calls cannot be read "
                "off the file"
            )
        if name.rsplit(".", 1)[-1].lower() in _RUNS_CODE:
            return (
                f"unknown: holds an OmegaConf ${{{shown}:...}} interpolation: runs code where "
                f"a resolver named '{shown}' is registered"
            )
        return (
            f"unknown: holds an OmegaConf ${{{shown}:...}} interpolation: resolving the "
            f"config calls whatever the loading project registered as '{shown}' (projects "
            "register eval and the like)"
        )

    def _may_close(self, text: str, start: int) -> bool:
        """Whether the arguments from ``start`` may lex as OmegaConf's (``VALUE_MODE``) up
        to the ``}`` that closes the interpolation.  OmegaConf parses the whole string
        before it resolves anything, and a character no token takes (a control byte, a
        line end, ``#``, ``=``, a non-ASCII one outside quotes) fails it: bytes of a
        protocol-2 numpy array (a latin-1 string) that happen to spell ``${x:`` call
        nothing.  Wherever this reading is unsure (a nested interpolation, a quote that
        may run on, the look-ahead spent), the interpolation may close: True."""
        stop = min(len(text), start + _ARGS_WINDOW)
        depth = 0
        pos = start
        while pos < stop:
            unquoted = _VALUE_RUN.match(text, pos, stop)
            pos = unquoted.end()  # type: ignore[union-attr]
            self.walked += pos - unquoted.start()  # type: ignore[union-attr]
            if pos >= stop:
                break
            char = text[pos]
            if char in "'\"":
                close = _QUOTE_END[char].search(text, pos + 1, stop)
                if close is None:
                    return True  # the quote runs past what is looked at
                self.walked += close.end() - pos
                pos = close.end()
            elif text.startswith(_OPEN, pos):
                return True  # nested: its keys lex in another mode
            elif char == "$":
                pos += 1
            elif char == "{":
                depth += 1
                pos += 1
            elif char == "}":
                if depth == 0:
                    return True
                depth -= 1
                pos += 1
            else:
                return False  # no OmegaConf token takes this character
        return stop < len(text)  # the look-ahead ran out; else the string ended unclosed

    def _environment(self, variable: str) -> str:
        """A note (not a verdict) naming the environment variables resolving reads."""
        variable = variable[:60]
        if variable in self.variables:
            return ""
        if not variable or len(self.variables) >= SHOWN_VARIABLES:
            return "reads environment variables when resolved (oc.env)"
        self.variables.add(variable)
        return f"reads environment variable {variable} when resolved (oc.env)"
