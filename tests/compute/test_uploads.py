"""Chunks that worker processes still store: commits wait for them, failures fail the eval."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest

import tensorlake as tl
from benchmarks.harness import slow_proxy
from tensorlake.engine.format import keys, records, segments
from tests.compute.transforms import fail_on


def _chunk_keys_of_commit(storage, commit_id: str) -> list[str]:
    stored = records.read_commit(storage, commit_id).manifest
    manifest = segments.ManifestStore(storage).load(stored)
    return [
        keys.chunk_key(name, int(i))
        for name, state in manifest.tensors.items()
        for i in state.table.column("ids")
    ]


def test_a_checkpoint_waits_for_the_uploads_of_worker_processes(
    s3_server, s3_bucket, s3_creds, monkeypatch
):
    """Workers go on with their next block while their chunks upload, and report them
    stored; a checkpoint's branch pointer moves only once every chunk it names is
    stored. Here each chunk upload takes 0.4 s longer than anything else."""
    direct = tl.storage.from_url(f"s3://{s3_bucket}/uploads", creds=s3_creds)
    named_missing = []
    real_write_head = records.write_head

    def write_head(storage, branch, commit_id):
        keys = _chunk_keys_of_commit(direct, commit_id)
        named_missing.extend(k for k in keys if not direct.exists(k))
        real_write_head(storage, branch, commit_id)

    monkeypatch.setattr(records, "write_head", write_head)
    slow_chunks = lambda method, path: 0.4 if method == "PUT" and "/chunks/" in path else 0.0  # noqa: E731
    with slow_proxy(urlsplit(s3_server).port, slow_chunks) as endpoint:
        ds = tl.empty(direct.url, creds={**s3_creds, "endpoint_url": endpoint})
        ds.create_tensor("x", dtype="int64")
        ds.commit("schema")
        report = fail_on(bad=-1).eval(
            range(160), ds, num_workers=2, checkpoint_interval=40, progressbar=False
        )
        assert len(report.checkpoints) == 4 and not named_missing
        assert ds.x.numpy().ravel().tolist() == list(range(160))


def test_a_chunk_upload_that_fails_in_a_worker_fails_the_eval_at_the_checkpoint_before(
    s3_server, s3_bucket, s3_creds, monkeypatch
):
    refusing = threading.Event()  # set once the first checkpoint is stored
    real_write_head = records.write_head

    def write_head(storage, branch, commit_id):
        real_write_head(storage, branch, commit_id)
        if records.read_commit(storage, commit_id).commit.extra.get("samples_processed"):
            refusing.set()

    monkeypatch.setattr(records, "write_head", write_head)
    refuse = lambda method, path: refusing.is_set() and method == "PUT" and "/chunks/" in path  # noqa: E731
    with slow_proxy(urlsplit(s3_server).port, 0.0, refuse) as endpoint:
        url, creds = f"s3://{s3_bucket}/refused", {**s3_creds, "endpoint_url": endpoint}
        ds = tl.empty(url, creds=creds)
        ds.create_tensor("x", dtype="int64")
        ds.commit("schema")
        with pytest.raises(tl.StorageError, match="could not store the chunks of the block"):
            fail_on(bad=-1).eval(
                range(400), ds, num_workers=2, checkpoint_interval=40, progressbar=False
            )
        k = ds.commits[0]["samples_processed"]
        assert k >= 40 and k % 40 == 0 and ds.x.numpy().ravel().tolist() == list(range(k))
        assert ds.gc() == {"chunks": 0, "segments": 0, "commits": 0, "staging": 0, "temp_files": 0}
