"""Training on the last checkpoint of an ``eval`` that is still running in another process.

``eval_writer.py`` ingests with checkpoints; meanwhile this process opens the dataset
read-only again and again, at the last checkpoint (the branch's head commit) and at the
branch itself, and iterates the loaders over it (``ds.batches()``, ``ds.pytorch()``):
every row is what the job wrote, never an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorlake as tl
from tests.engine.concurrency import eval_writer, writer_loop

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(eval_writer.__file__).resolve()
ITEMS = {"local": 1500, "s3": 800}


def _columns(samples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Ragged rows batched as lists (torch's default collate stacks equal shapes only)."""
    return {k: [s[k] for s in samples] for k in samples[0]}


def _check_batches(batches: Any, n: int) -> int:
    seen = 0
    for batch in batches:
        for i, x, t in zip(batch["index"], batch["x"], batch["t"]):
            i = int(np.asarray(i).reshape(-1)[0])
            assert np.array_equal(np.asarray(x).reshape(-1), writer_loop.value(i)), i
            got = t if isinstance(t, str) else np.asarray(t).reshape(-1)[0]
            assert got == writer_loop.text(i), (i, got)
            seen += 1
    assert seen == n
    return seen


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_the_last_checkpoint_trains_while_ingestion_continues(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("torch")
    if kind == "local":
        url, creds = str(tmp_path / "ds"), None
    else:
        bucket = request.getfixturevalue("s3_bucket")
        url, creds = f"s3://{bucket}/ds", request.getfixturevalue("s3_creds")
    env = {**os.environ, "TENSORLAKE_GC_GRACE": "300"}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), url, json.dumps(creds), str(ITEMS[kind]), "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith("READY")
    errors: list[str] = []
    checkpoints: set[str] = set()
    epochs = 0
    try:
        while proc.poll() is None:
            try:
                head = tl.load(url, read_only=True, creds=creds)
                last = tl.load(url, read_only=True, creds=creds, version=head.commit_id)
                checkpoints.add(last.commit_id)
                n = len(last)
                if epochs % 2:
                    _check_batches(last.batches(batch_size=16), n)
                else:
                    loader = last.pytorch(
                        batch_size=16, num_workers=0, return_index=True, collate_fn=_columns
                    )
                    _check_batches(loader, n)
                _check_batches(head.batches(batch_size=32), len(head))
                epochs += 1
            except (tl.TensorlakeError, AssertionError) as err:
                errors.append(f"{type(err).__name__}: {err}")
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert errors == [], f"{len(errors)} failed epochs of {epochs + len(errors)}: {errors[:3]}"
    # a loaded machine reads fewer epochs while the job runs; two checkpoints seen means
    # the reader trained on one while the next was being written
    assert len(checkpoints) >= 2, "the reader saw too few checkpoints: it proved nothing"
    final = tl.load(url, read_only=True, creds=creds)
    assert len(final) == ITEMS[kind]
    _check_batches(final.batches(batch_size=64), ITEMS[kind])
