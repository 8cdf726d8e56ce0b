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
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import seed
from tests.emulator import accepts, emulator, free_port

pytest.importorskip(
    "azure.storage.blob", reason="azure-storage-blob is not installed (pip install '.[azure]')"
)

from azure.storage.blob import BlobServiceClient

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
    return seed.seed_files(HOSTILE_KEYS)


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


_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    """azurite-blob on 127.0.0.1:<free port>, ``AZURE_STORAGE_CONNECTION_STRING`` set."""
    if "server" in _SHARED:
        yield _SHARED["server"]
        return
    binary = _azurite()
    port = free_port()
    where = tmp_path_factory.mktemp("azurite")
    args = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
    args += ["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )
    variable = ("AZURE_STORAGE_CONNECTION_STRING", connection)
    with emulator("Azurite", args, lambda: accepts(port), variable, cwd=where):
        _SHARED["server"] = AzureServer(connection)
        try:
            yield _SHARED["server"]
        finally:
            _SHARED.clear()


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
