"""A bucket URL whose endpoint nothing listens on fails within seconds with one line, for
each store: the SDKs' own retries waited 34 s (gcsfs) and 86 s (azure-storage-blob), and
botocore's connection error was a traceback.  The real CLI runs in a subprocess, pointed
at a loopback port that was just free (bound, then closed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.objstore

DEADLINE = 20.0
"""Seconds the whole CLI may take, start-up included, on a loaded machine (it takes about
2 s here); the old behaviour took 34 s or more."""

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_ENDPOINT_ENV = (
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
)


def _closed_port() -> int:
    """A loopback port nothing listens on: bound by us, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _store_env(scheme: str, port: int) -> dict[str, str]:
    endpoint = f"http://127.0.0.1:{port}"
    if scheme == "gs":
        return {"STORAGE_EMULATOR_HOST": endpoint}
    if scheme == "s3":
        return {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/devstoreaccount1;"
    )
    return {"AZURE_STORAGE_CONNECTION_STRING": connection}


@pytest.mark.parametrize(
    ("scheme", "sdk"), [("gs", "gcsfs"), ("s3", "s3fs"), ("az", "azure.storage.blob")]
)
def test_an_unreachable_endpoint_fails_fast_in_one_line(
    scheme: str, sdk: str, tmp_path: Path
) -> None:
    pytest.importorskip(sdk, reason=f"{sdk} is not installed (pip install '.[dev]')")
    env = {k: v for k, v in os.environ.items() if k not in _ENDPOINT_ENV}
    env.update(_store_env(scheme, _closed_port()))
    env["ARTLENS_CACHE"] = str(tmp_path / "cache")
    env["ARTLENS_STATE"] = str(tmp_path / "state.db")
    env["ARTLENS_CONFIG"] = str(tmp_path / "config")
    command = [sys.executable, "-m", "tui.cli", "index", f"{scheme}://b/p"]
    command += ["--db", str(tmp_path / "i.db")]
    result = subprocess.run(  # TimeoutExpired past the deadline: the test fails
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=DEADLINE
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{scheme}://b/p" in lines[0] and "failed" in lines[0], lines[0]
