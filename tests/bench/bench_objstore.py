"""Object-store benchmark on a local S3 server (moto on 127.0.0.1): list and index a bucket
of N objects beside boto3's paginator on the same bucket, and inspect a big model object
beside what downloading it would fetch.

Run:  python tests/bench/bench_objstore.py [--objects 100000] [--big-mib 1024] [--verdicts]

The bucket holds a Lightning-style tree: runs of ``hparams.yaml``, ``metrics.csv`` and
checkpoints (N objects in all), put straight into moto's in-process store (uploading 100k
objects over HTTP would time the upload, not us).  Everything measured goes over HTTP:

- anchor: boto3's ``list_objects_v2`` paginator over the whole bucket (what ``aws s3 ls
  --recursive`` does): requests, response bytes, seconds;
- ``artlens index`` as the CLI runs it (``ObjectIndexer``: prefix pages, run detection, run
  summaries through ranged reads), and with ``--verdicts`` also the verdict pass (a 1 KiB
  sniff of each object, inspection of the model files): requests, object bytes, seconds;
- a warm re-index of the unchanged bucket;
- inspecting a ``--big-mib`` safetensors object (a small header, then zeros) through
  ranged reads: requests and bytes fetched, beside its size (what a download fetches).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.index.db import open_db
from store.inspect import inspect_at
from store.objscan import ObjectIndexer
from store.root.objstore import ObjectRoot

FILES_PER_RUN = 10
"""hparams.yaml, metrics.csv and 8 checkpoints."""


def start_server() -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    os.environ.pop("AWS_PROFILE", None)
    return server


def backend() -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def fill(bucket: str, objects: int) -> int:
    """Put ``objects`` keys in Lightning-style runs; returns the runs made."""
    store = backend()
    runs = max(1, objects // FILES_PER_RUN)
    made = 0
    for run in range(runs):
        base = f"team/exp{run // 100}/lightning_logs/version_{run}"
        files = {
            f"{base}/hparams.yaml": f"lr: {0.001 * (run % 7 + 1)}\nbatch_size: 32\n".encode(),
            f"{base}/metrics.csv": b"epoch,step,train_loss\n"
            + b"".join(f"{e},{e * 10},{1 / (e + 1):.4f}\n".encode() for e in range(20)),
        }
        for epoch in range(FILES_PER_RUN - 2):
            files[f"{base}/checkpoints/epoch={epoch}-step={epoch * 10}.ckpt"] = b"PK\x05\x06" + (
                b"\0" * 18
            )
        for key, body in files.items():
            if made >= objects:
                break
            store.put_object(bucket, key, body)
            made += 1
    return runs


def paginator_anchor(bucket: str) -> dict[str, float]:
    import boto3

    client = boto3.client("s3")
    sizes: list[int] = []

    def count(http_response: Any, **_: Any) -> None:
        sizes.append(len(http_response.content))

    client.meta.events.register("after-call.s3.ListObjectsV2", count)
    start = time.perf_counter()
    keys = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += len(page.get("Contents", []))
    return {
        "keys": keys,
        "requests": len(sizes),
        "bytes": sum(sizes),
        "seconds": time.perf_counter() - start,
    }


def index(url: str, db_path: Path, *, verdicts: bool) -> dict[str, float]:
    root = ObjectRoot(url)
    db = open_db(db_path)
    try:
        start = time.perf_counter()
        indexer = ObjectIndexer(db, root)
        report = indexer.scan(defer_summaries=True)
        indexer.fill_summaries()
        if verdicts:
            indexer.hash_pending()
        seconds = time.perf_counter() - start
    finally:
        db.close()
    return {
        "objects": report.files,
        "runs": report.runs,
        "unchanged": report.unchanged,
        "requests": root.stats.requests,
        "bytes": root.stats.bytes,
        "seconds": seconds,
    }


def big_object(bucket: str, mib: int) -> dict[str, float]:
    """A safetensors object of ``mib`` MiB shaped like a model (a header naming 256 F32
    tensors, then their bytes, zeros here)."""
    tensors = 256
    per = mib * 1024 * 1024 // 4 // tensors
    header_fields = {
        f"model.layers.{i}.weight": {
            "dtype": "F32",
            "shape": [per],
            "data_offsets": [i * per * 4, (i + 1) * per * 4],
        }
        for i in range(tensors)
    }
    header = json.dumps({"__metadata__": {"format": "pt"}, **header_fields}).encode()
    header += b" " * (-len(header) % 8)
    body = struct.pack("<Q", len(header)) + header + bytes(tensors * per * 4)
    backend().put_object(bucket, "models/big.safetensors", body)
    size = len(body)
    del body
    root = ObjectRoot(f"s3://{bucket}")
    start = time.perf_counter()
    found = inspect_at(root, "models/big.safetensors")
    return {
        "size": size,
        "verdict": found.verdict,  # type: ignore[dict-item]
        "requests": root.stats.requests,
        "bytes": root.stats.bytes,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument(
        "--verdicts", action="store_true", help="Also time the verdict pass (a GET per object)."
    )
    args = parser.parse_args()
    server = start_server()
    try:
        from store.root.objstore import _s3fs

        _s3fs().call_s3("create_bucket", Bucket="bench-index")
        _s3fs().call_s3("create_bucket", Bucket="bench-big")
        start = time.perf_counter()
        runs = fill("bench-index", args.objects)
        print(f"bucket: {args.objects} objects in {runs} runs ({time.perf_counter() - start:.1f}s)")
        anchor = paginator_anchor("bench-index")
        print(
            f"boto3 paginator (anchor):      {anchor['keys']:>7} keys  "
            f"{anchor['requests']:>6} requests  {anchor['bytes'] / 1e6:>8.2f} MB  "
            f"{anchor['seconds']:>7.2f}s"
        )
        with tempfile.TemporaryDirectory() as tmp:
            passes = [("artlens index (no verdicts)", False, "a.db")]
            if args.verdicts:
                passes.append(("artlens index (+ verdicts)", True, "b.db"))
            passes.append(("artlens index (warm, same)", False, "a.db"))
            for label, verdicts, name in passes:
                got = index("s3://bench-index", Path(tmp) / name, verdicts=verdicts)
                print(
                    f"{label:<30} {got['objects']:>7} objs  {got['requests']:>6} requests  "
                    f"{got['bytes'] / 1e6:>8.2f} MB  {got['seconds']:>7.2f}s  "
                    f"({got['runs']} runs, {got['unchanged']} unchanged)"
                )
        if args.big_mib:
            big = big_object("bench-big", args.big_mib)
            print(
                f"inspect {big['size'] / 2**20:.0f} MiB safetensors: verdict {big['verdict']}, "
                f"{big['requests']} requests, {big['bytes'] / 1024:.0f} KiB fetched "
                f"({big['bytes'] / big['size'] * 100:.4f}% of a download), "
                f"{big['seconds']:.2f}s"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
