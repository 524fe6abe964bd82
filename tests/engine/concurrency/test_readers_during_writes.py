"""Readers in one process while a writer in another flushes and commits the same branch.

The writer (``writer_loop.py``) appends and flushes in a loop, each flush superseding
the open chunks and table segments the previous manifest named; every few flushes it
commits. The reader re-opens the branch head read-only over and over and reads every
row: it must never meet an error (a chunk or segment deleted under it) nor a row other
than what the writer wrote, and the length it sees never shrinks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tensorlake as tl
from tests.engine.concurrency import writer_loop

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(writer_loop.__file__).resolve()
SECONDS = {"local": 4.0, "s3": 6.0}


def _start_writer(url: str, creds: dict | None, seconds: float, commit_every: int) -> Any:
    env = {**os.environ, "TENSORLAKE_GC_GRACE": "300"}  # the default
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), url, json.dumps(creds), str(seconds), str(commit_every)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY"):
        proc.kill()
        raise AssertionError(f"writer did not start: {line!r} {proc.communicate()[1]}")
    return proc


def _finish(proc: Any) -> int:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return int(out.split()[1])


def _target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, Any]:
    if kind == "local":
        return str(tmp_path / "ds"), None
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/ds", request.getfixturevalue("s3_creds")


@pytest.mark.parametrize("kind", ["local", "s3"])
@pytest.mark.parametrize("commit_every", [0, 5])
def test_reader_never_sees_an_error_or_a_torn_state(
    kind: str, commit_every: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, creds = _target(kind, tmp_path, request)
    proc = _start_writer(url, creds, SECONDS[kind], commit_every)
    errors: list[str] = []
    reads, last_len, pinned = 0, 0, 0
    try:
        while proc.poll() is None:
            try:
                ds = tl.load(url, read_only=True, creds=creds)
                n = writer_loop.check_rows(ds)
                assert n >= last_len, f"length went from {last_len} to {n}"
                last_len = n
                reads += 1
                if commit_every and reads % 4 == 0:  # a commit, pinned: read it whole
                    old = tl.load(url, read_only=True, creds=creds, version=ds.commit_id)
                    writer_loop.check_rows(old)
                    pinned += 1
            except (tl.TensorlakeError, AssertionError) as err:
                errors.append(f"{type(err).__name__}: {err}")
    finally:
        rows = _finish(proc)
    assert errors == [], f"{len(errors)} of {reads + len(errors)} reads failed: {errors[:3]}"
    assert reads >= 5, "the reader hardly overlapped the writer: the test proved nothing"
    assert writer_loop.check_rows(tl.load(url, read_only=True, creds=creds)) == rows
    if commit_every:
        assert pinned >= 1
