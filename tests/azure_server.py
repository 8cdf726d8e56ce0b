"""A real Azure Blob emulator on loopback for the az:// tests: Azurite (Node).

Azurite is not a Python package: the tests start ``azurite-blob`` from
``ARTLENS_AZURITE`` (the path of that executable) or from ``PATH``, and skip, saying so,
where neither has it.  To run them::

    npm install --prefix ~/.cache/artlens-azurite azurite
    export ARTLENS_AZURITE=~/.cache/artlens-azurite/node_modules/.bin/azurite-blob
    .venv/bin/pytest tests/test_azure.py

The emulator keeps blobs in memory on 127.0.0.1 (a free port); clients find it through
``AZURE_STORAGE_CONNECTION_STRING`` with Azurite's well-known development account.
Seeding and the round-trip oracle use azure-storage-blob directly, not artlens.
Azurite cannot list names holding control characters (it answers 500; Azure encodes
them), and refuses ``..`` parts (the signed URL is normalised): neither is seeded here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "azure.storage.blob", reason="azure-storage-blob is not installed (pip install '.[azure]')"
)

from azure.storage.blob import BlobServiceClient

FIXTURES = Path(__file__).parent / "fixtures"
SEED_TREES = {
    "mlflow": FIXTURES / "frameworks" / "mlflow-file",
    "lightning": FIXTURES / "frameworks" / "lightning",
}
MALICIOUS = FIXTURES / "pickles" / "builtins_eval_global.pkl"
HOSTILE_KEYS = {
    "hostile/[bold]x.txt": b"markup in a key\n",
    "hostile//double.txt": b"an empty part\n",
    "hostile/%41.txt": b"a name that looks escaped\n",
}

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account (public, the same in every install)."""


def _azurite() -> str:
    named = os.environ.get("ARTLENS_AZURITE") or shutil.which("azurite-blob")
    if not named:
        pytest.skip(
            "Azurite is not installed: npm install azurite, then put azurite-blob on PATH "
            "or set ARTLENS_AZURITE to it (see tests/azure_server.py)"
        )
    return os.path.expanduser(named)


def seed_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for prefix, folder in SEED_TREES.items():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[f"{prefix}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    files["models/evil.pkl"] = MALICIOUS.read_bytes()
    files.update(HOSTILE_KEYS)
    return files


class AzureServer:
    """The running emulator and an SDK client on it."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.service: Any = BlobServiceClient.from_connection_string(connection)

    def new_container(self) -> str:
        name = f"artlens-{uuid.uuid4().hex[:12]}"
        self.service.create_container(name)
        return name

    def put(self, container: str, key: str, body: bytes) -> None:
        self.service.get_blob_client(container, key).upload_blob(body, overwrite=True)

    def seed(self, container: str) -> dict[str, bytes]:
        files = seed_files()
        for key, body in files.items():
            self.put(container, key, body)
        return files

    def keys(self, container: str, prefix: str = "") -> set[str]:
        client = self.service.get_container_client(container)
        return {b.name for b in client.list_blobs(name_starts_with=prefix or None)}

    def contents(self, container: str, prefix: str = "") -> dict[str, bytes]:
        client = self.service.get_container_client(container)
        return {
            b.name: client.get_blob_client(b.name).download_blob().readall()
            for b in client.list_blobs(name_starts_with=prefix or None)
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    """azurite-blob on 127.0.0.1:<free port>, ``AZURE_STORAGE_CONNECTION_STRING`` set."""
    if "server" in _SHARED:
        yield _SHARED["server"]
        return
    binary = _azurite()
    port = _free_port()
    where = tmp_path_factory.mktemp("azurite")
    args = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
    args += ["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    process = subprocess.Popen(args, cwd=where, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"Azurite did not start: {err.strip()[:300]}")
            time.sleep(0.05)
    saved = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = connection
    _SHARED["server"] = AzureServer(connection)
    try:
        yield _SHARED["server"]
    finally:
        _SHARED.clear()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        if saved is None:
            os.environ.pop("AZURE_STORAGE_CONNECTION_STRING", None)
        else:
            os.environ["AZURE_STORAGE_CONNECTION_STRING"] = saved


@pytest.fixture(scope="session")
def azure_seeded(azure_server: AzureServer) -> dict[str, Any]:
    """A seeded container, read-only (tests that change one make it with ``azure_fresh``)."""
    if "seeded" not in _SHARED:
        container = azure_server.new_container()
        _SHARED["seeded"] = {"container": container, "files": azure_server.seed(container)}
    seed: dict[str, Any] = _SHARED["seeded"]
    return seed


@pytest.fixture
def azure_fresh(azure_server: AzureServer) -> Callable[[], str]:
    """A new seeded container for a test that changes it."""

    def make() -> str:
        container = azure_server.new_container()
        azure_server.seed(container)
        return container

    return make
