"""A ``@tl.compute`` ingestion with checkpoints, run as a subprocess by
``test_checkpoints_while_eval_runs.py``.

Usage::

    python tests/engine/concurrency/eval_writer.py <url> <creds-json-or-null> <items> <interval>

Creates the dataset (``READY``), then evaluates ``rows_of`` on ``range(<items>)`` with two
worker processes and a checkpoint every ``<interval>`` items, a little slowly so that
readers overlap many checkpoints; ``DONE <checkpoints>`` at the end. Row ``i`` is
``writer_loop.value(i)`` / ``text(i)``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run as a script

import tensorlake as tl
from tests.engine.concurrency.writer_loop import text, value


@tl.compute
def rows_of(item: int, sample_out: Any) -> None:
    time.sleep(0.004)
    sample_out.append({"x": value(item), "t": text(item)})


def main(argv: list[str]) -> None:
    url, creds = argv[1], json.loads(argv[2])
    items, interval = int(argv[3]), int(argv[4])
    ds = tl.empty(url, creds=creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=2048)
        ds.create_tensor("t", htype="text", max_chunk_size=1024)
    ds.commit("schema")
    print("READY", flush=True)
    report = rows_of().eval(
        list(range(items)),
        ds,
        num_workers=2,
        scheduler="processed",
        checkpoint_interval=interval,
        progressbar=False,
    )
    ds.close()
    print(f"DONE {len(report.checkpoints)}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
