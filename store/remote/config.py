"""Where remotes are configured and mirrored.

The list of remotes is user configuration (``platformdirs.user_config_dir('artlens')/
remotes.json``, or ``$ARTLENS_CONFIG/remotes.json``); the mirrors are rebuildable caches
beside the local indexes (``store.locate.cache_dir()/mirrors/NAME.db``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import platformdirs

from store.errors import ArtlensError
from store.locate import cache_dir
from store.safeparse import load_json

ENV_CONFIG = "ARTLENS_CONFIG"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
"""A remote's name is also a file name and a ``name:`` prefix: no slash, no colon."""
_HOST = re.compile(r"^[A-Za-z0-9_.\[\]:%-]{1,255}$")
_USER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG)
    return Path(override) if override else Path(platformdirs.user_config_dir("artlens"))


def mirrors_dir() -> Path:
    return cache_dir() / "mirrors"


@dataclass(frozen=True)
class Remote:
    """One configured host: an ssh URL or a local command that speaks for it."""

    name: str
    url: str | None = None
    command: str | None = None

    @property
    def mirror_path(self) -> Path:
        return mirrors_dir() / f"{self.name}.db"

    @property
    def where(self) -> str:
        return self.url if self.url is not None else f"command: {self.command}"

    def argv(self, args: list[str], *, words: int = 1) -> list[str]:
        """The local command line that runs ``artlens ARGS`` on the host (``--db`` of an
        ssh URL goes after the first ``words`` of ARGS: ``retention apply`` is two)."""
        if self.command is not None:
            return [*shlex.split(self.command), *args]
        assert self.url is not None
        user, host, port, db = parse_ssh_url(self.url)
        remote = ["artlens", *args]
        if db:
            remote[1 + words : 1 + words] = ["--db", db]
        target = f"{user}@{host}" if user else host
        ssh = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if port:
            ssh += ["-p", str(port)]
        # ssh hands the remote side one shell command line: quote every word
        return [*ssh, "--", target, " ".join(shlex.quote(a) for a in remote)]


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ArtlensError(
            f"bad remote name {name[:60]!r}: letters, digits, '.', '_' and '-' (up to 40)"
        )
    return name


def parse_ssh_url(url: str) -> tuple[str | None, str, int | None, str | None]:
    """(user, host, port, index path) of ``ssh://[user@]host[:port][/path/to/index]``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ArtlensError(f"bad port in {url[:200]!r}") from None
    host = parts.hostname or ""
    if parts.scheme != "ssh" or not _HOST.match(host) or host.startswith("-"):
        raise ArtlensError(f"not an ssh://[user@]host[:port][/path] URL: {url[:200]!r}")
    user = unquote(parts.username) if parts.username else None
    if user is not None and not _USER.match(user):
        raise ArtlensError(f"bad user name in {url[:200]!r}")
    if parts.query or parts.fragment or parts.password:
        raise ArtlensError(f"unexpected parts in {url[:200]!r}")
    path = unquote(parts.path) or None
    if path == "/":
        path = None
    return user, host, port, path


def _path() -> Path:
    return config_dir() / "remotes.json"


def load() -> list[Remote]:
    """The configured remotes; a missing file is none, a broken one an error."""
    try:
        text = _path().read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        data = load_json(text)
        entries = data["remotes"]
        remotes = [
            Remote(check_name(name), e.get("url"), e.get("command")) for name, e in entries.items()
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArtlensError(f"{_path()}: not a remotes file ({exc})") from None
    return sorted(remotes, key=lambda r: r.name)


def save(remotes: list[Remote]) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "remotes": {
            r.name: {k: v for k, v in (("url", r.url), ("command", r.command)) if v is not None}
            for r in remotes
        }
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def get(name: str) -> Remote:
    for remote in load():
        if remote.name == name:
            return remote
    raise ArtlensError(f"no remote named {name[:60]!r} (see `artlens remote list`)")
